import type { IncomingMessage } from "node:http";
import type { WebSocket } from "ws";
import { ErrorCodes, isOpStreamError } from "../../errors.js";
import type { Logger } from "../../logging/logger.js";
import type { OpStreamMetrics } from "../../metrics.js";
import type { DocumentJoiner } from "../tenancy.js";
import type { Authorizer } from "../authorization.js";
import { originFields, type ClientOrigin } from "../client-address.js";
import { CloseCodes, type CloseCode } from "../close-codes.js";
import { HocuspocusDocumentPeer, type DocumentPeerContext } from "./document-peer.js";
import { missedPing } from "../socket-wiring.js";
import {
  EMPTY_AWARENESS_UPDATE,
  PING_FRAME,
  PONG_FRAME,
  decodeFrame,
  documentNameOf,
  encode,
  hocuspocusFrameErrorReason,
  maxRoutingKeyLength,
  type HocuspocusFrame,
} from "./messages.js";
import type { RefusalLog } from "../refusal-log.js";
import { RefusedKeys } from "./refused-keys.js";
import type { StatelessHandler } from "./stateless.js";

/** What a Hocuspocus connection needs; the transport provides it. */
export interface HocuspocusConnectionDependencies {
  readonly router: DocumentJoiner;
  /** The tenant of this socket (with a tenant resolver); documents are namespaced under it. */
  readonly tenant?: string;
  readonly authorizer: Authorizer;
  readonly statelessHandlers: readonly StatelessHandler[];
  readonly metrics: OpStreamMetrics;
  readonly logger: Logger;
  /** Where the socket comes from (logged with its refusals). */
  readonly origin: ClientOrigin;
  /** Where its refused documents and its auth timeout are logged. */
  readonly refusals: RefusalLog;
  /** Close a client whose unsent bytes pass this. */
  readonly maxBufferedBytes: number;
  /** Frames queued on the socket, all documents together, before their documents are open. */
  readonly maxPendingFrames: number;
  /** Bytes of those frames. */
  readonly maxPendingBytes: number;
  readonly maxDocumentNameLength: number;
  /** Largest awareness state (JSON bytes) a client may set. */
  readonly maxAwarenessStateBytes: number;
  /** Bytes of refused routing keys the socket remembers (their frames are dropped), oldest forgotten first. */
  readonly maxRefusedKeyBytes: number;
  /** Documents on the socket at once, in any state (waiting for Auth, authorizing, open); 0 = no limit. */
  readonly maxDocumentsPerSocket: number;
  /** Close the socket with 4010 when no document was authorized this long after it opened; 0 = never. */
  readonly authTimeoutMs: number;
}

const DIALECT = "hocuspocus";

/**
 * One `HocuspocusProviderWebsocket`: many documents multiplexed on one socket,
 * each frame addressed by the routing key the client chose (the document name,
 * or `name\0sessionId`), which every answer repeats exactly. Each document is
 * authorized on its own Auth message before it is joined.
 */
export class HocuspocusConnection {
  /** `performance.now()` of the last frame sent (for keep-alive). */
  lastSentAt = performance.now();
  /** Whether a pong arrived since the last ping. */
  alive = true;
  /** Whether a frame arrived since the last liveness check. */
  heard = false;
  /** The transport's rate limiter, stopped as the server starts closing the socket (so it is read again). */
  rateLimiter: { stop(): void } | undefined;
  private readonly documents = new Map<string, HocuspocusDocumentPeer>();
  /**
   * Keys the server refused (denied) or closed (deleted): their frames are dropped
   * until a new Auth. Made on the first refusal: most sockets never have one.
   */
  private refused: RefusedKeys | undefined;
  /** Until a document of the socket is authorized: then gone for good. */
  private authTimer: NodeJS.Timeout | undefined;
  private pendingFrames = 0;
  private pendingBytes = 0;
  private peerCount = 0;
  /** A provider that sent its version (v4 and later) answers Ping frames; older ones cannot parse them. */
  private understandsPing = false;
  private lastKey: string | undefined;
  private closed = false;
  private readonly context: DocumentPeerContext;

  constructor(
    readonly id: string,
    private readonly ws: WebSocket,
    request: IncomingMessage,
    private readonly deps: HocuspocusConnectionDependencies,
  ) {
    this.context = {
      request,
      router: deps.router,
      ...(deps.tenant === undefined ? {} : { tenant: deps.tenant }),
      authorizer: deps.authorizer,
      statelessHandlers: deps.statelessHandlers,
      metrics: deps.metrics,
      logger: deps.logger,
      maxDocumentNameLength: deps.maxDocumentNameLength,
      maxAwarenessStateBytes: deps.maxAwarenessStateBytes,
      send: (frame) => this.send(frame),
      reserve: (bytes) => this.reserve(bytes),
      release: (count, bytes) => {
        this.pendingFrames -= count;
        this.pendingBytes -= bytes;
      },
      close: (code, reason, badInput) => this.close(code, reason, badInput),
      forget: (peer, refused) => this.forget(peer, refused),
      authorized: () => this.stopAuthTimer(),
      refused: (reason, docId) => this.logRefusal("document refused", reason, docId),
    };
    if (deps.authTimeoutMs > 0) {
      // A socket that never authenticates would hold its connection slot (and per-IP share) forever.
      this.authTimer = setTimeout(() => {
        this.logRefusal("connection refused", "auth-timeout", undefined);
        this.close(CloseCodes.AUTH_TIMEOUT, "no document authorized in time", "auth-timeout");
      }, deps.authTimeoutMs);
      this.authTimer.unref();
    }
  }

  /** Handles one binary frame from the client. */
  receive(data: Uint8Array): void {
    if (this.closed) return;
    let frame: HocuspocusFrame;
    try {
      frame = decodeFrame(data, maxRoutingKeyLength(this.deps.maxDocumentNameLength));
    } catch (error) {
      const reason = isOpStreamError(error, ErrorCodes.INVALID_FRAME)
        ? hocuspocusFrameErrorReason(error)
        : "truncated";
      const code = reason === "unknown-type" ? CloseCodes.UNSUPPORTED_DATA : CloseCodes.INVALID_FRAME;
      this.close(code, error instanceof Error ? error.message : "invalid frame", reason);
      return;
    }
    if (frame.kind === "ping") return this.send(PONG_FRAME);
    if (frame.kind === "pong") return;
    const { key, message } = frame;
    this.lastKey = key;
    if (message.type === "auth") {
      if (message.version !== undefined) this.understandsPing = true;
      this.refused?.delete(key);
    } else if (this.refused?.has(key)) {
      // The provider keeps sending edits of a document it was refused or that was closed: drop them.
      if (message.type === "update" || message.type === "sync-step-2") {
        this.deps.metrics.updatesRejected.inc({ reason: "denied" });
      }
      return;
    }
    let peer = this.documents.get(key);
    if (message.type === "auth" && !peer?.counted && this.atDocumentCap())
      return this.refuseDocument(key, peer);
    if (!peer) {
      if (message.type === "close") return;
      peer = new HocuspocusDocumentPeer(`${this.id}/${++this.peerCount}`, key, this.context);
      this.documents.set(key, peer);
    }
    peer.receive(message, data.byteLength);
  }

  /**
   * Sends real traffic if nothing was sent for `idleMs` (the stock provider drops
   * a socket after 30 s without a message): a Ping to providers that answer it,
   * else an empty awareness update on a document of the socket.
   */
  keepAlive(idleMs: number, now: number): void {
    if (now - this.lastSentAt < idleMs) return;
    if (this.understandsPing) return this.send(PING_FRAME);
    const key = this.documents.keys().next().value ?? this.lastKey;
    if (key !== undefined) this.send(encode.awareness(key, EMPTY_AWARENESS_UPDATE));
  }

  /** The liveness check of a ping period ({@link missedPing}): a dead socket is terminated. */
  ping(): void {
    if (!missedPing(this, this.ws)) return;
    this.deps.metrics.closes.inc({ dialect: DIALECT, code: "terminated" });
    this.ws.terminate();
    this.detach();
  }

  /** Closes the socket with `code`; `badInput` counts it as refused input. */
  close(code: CloseCode, reason: string, badInput?: string): void {
    if (this.closed) return;
    if (badInput) this.deps.metrics.badFrames.inc({ dialect: DIALECT, reason: badInput });
    this.deps.metrics.closes.inc({ dialect: DIALECT, code: String(code) });
    this.closed = true;
    this.rateLimiter?.stop();
    this.ws.close(code, reason.slice(0, 120));
    this.detach();
  }

  /** The socket has closed (either side): leave every document. */
  detach(): void {
    this.closed = true;
    this.stopAuthTimer();
    const peers = [...this.documents.values()];
    this.documents.clear();
    this.refused = undefined;
    for (const peer of peers) peer.detach();
  }

  /**
   * Whether the socket holds `maxDocumentsPerSocket` documents from their Auth on
   * (authorizing, joining or open), so the cap also bounds the authorizations one
   * socket has in flight. Documents whose frames wait for their Auth are bounded
   * by `maxPendingFrames` instead: each holds at least one queued frame.
   */
  private atDocumentCap(): boolean {
    const max = this.deps.maxDocumentsPerSocket;
    if (max <= 0) return false;
    let counted = 0;
    for (const peer of this.documents.values()) if (peer.counted) counted += 1;
    return counted >= max;
  }

  /**
   * One document more than the cap: its Auth is denied and counted, and its key
   * remembered as refused like any denial, so the provider's later frames for it
   * are dropped rather than queued (the socket's other documents carry on).
   */
  private refuseDocument(key: string, waiting: HocuspocusDocumentPeer | undefined): void {
    this.deps.metrics.joinsRefused.inc({ reason: "socket-limit" });
    this.logRefusal("document refused", "socket-limit", documentNameOf(key));
    if (waiting) return waiting.refuse("too-many-documents");
    this.send(encode.permissionDenied(key, "too-many-documents"));
    this.rememberRefused(key);
  }

  /** Counts a frame (of `bytes`) that waits for its document's Auth and load; closes the socket past the caps. */
  private reserve(bytes: number): boolean {
    if (this.pendingFrames >= this.deps.maxPendingFrames) {
      this.close(
        CloseCodes.TOO_MANY_PENDING,
        "too many frames before their documents opened",
        "too-many-pending",
      );
      return false;
    }
    if (this.pendingBytes + bytes > this.deps.maxPendingBytes) {
      this.close(
        CloseCodes.TOO_MANY_PENDING,
        "too many bytes before their documents opened",
        "too-many-pending-bytes",
      );
      return false;
    }
    this.pendingFrames += 1;
    this.pendingBytes += bytes;
    return true;
  }

  private forget(peer: HocuspocusDocumentPeer, refused: boolean): void {
    if (this.documents.get(peer.key) === peer) this.documents.delete(peer.key);
    if (refused) this.rememberRefused(peer.key);
  }

  private rememberRefused(key: string): void {
    if (this.closed) return;
    // Bounded by count and bytes: each entry cost an Auth frame, but a socket lives long.
    this.refused ??= new RefusedKeys(this.deps.maxPendingFrames, this.deps.maxRefusedKeyBytes);
    this.refused.add(key);
  }

  /** Logs a refusal on this socket (rate-limited; the caller counts it). */
  private logRefusal(message: string, reason: string, docId: string | undefined): void {
    const fields = { dialect: DIALECT, peerId: this.id, docId, ...originFields(this.deps.origin) };
    this.deps.refusals.refused(message, reason, fields);
  }

  private stopAuthTimer(): void {
    clearTimeout(this.authTimer);
    this.authTimer = undefined;
  }

  private send(frame: Uint8Array): void {
    if (this.closed || this.ws.readyState !== this.ws.OPEN) return;
    // A client that cannot keep up must not grow our memory or stall its documents.
    if (this.ws.bufferedAmount > this.deps.maxBufferedBytes) {
      this.close(CloseCodes.SLOW_CONSUMER, "send buffer full: client too slow", "slow-consumer");
      return;
    }
    this.lastSentAt = performance.now();
    this.ws.send(frame, (error) => {
      if (error) this.deps.logger.debug({ err: error, peerId: this.id }, "send failed on a closing socket");
    });
  }
}
