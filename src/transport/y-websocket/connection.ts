import type { WebSocket } from "ws";
import type { DisconnectReason, SessionPeer } from "../../engine/peer.js";
import { ErrorCodes, isOpStreamError } from "../../errors.js";
import type { Logger } from "../../logging/logger.js";
import type { OpStreamMetrics } from "../../metrics.js";
import type { DocumentHandle } from "../../router/document-handle.js";
import { onExpiry, type Access } from "../authorization.js";
import { AwarenessGuard, type AwarenessRefusal, type AwarenessRefusalListener } from "../awareness-guard.js";
import { CloseCodes, DISCONNECT_CLOSE_CODES, type CloseCode } from "../close-codes.js";
import { closeForHandleError } from "../handle-errors.js";
import { missedPing } from "../socket-wiring.js";
import {
  KEEP_ALIVE_FRAME,
  SyncStep,
  YMessageType,
  decodeMessage,
  encodeAwareness,
  encodeSyncStep1,
  encodeSyncStep2,
  encodeUpdate,
  frameErrorReason,
  type YMessage,
} from "./messages.js";

/** Limits a connection enforces (the transport's options). */
export interface ConnectionLimits {
  /** Close a client whose unsent bytes pass this. */
  readonly maxBufferedBytes: number;
  /** Frames buffered while the document loads. */
  readonly maxPendingFrames: number;
  /** Bytes of the frames buffered while the document loads. */
  readonly maxPendingBytes: number;
  /** Largest awareness state (JSON bytes) the client may set. */
  readonly maxAwarenessStateBytes: number;
}

/** What the authorizer granted the connection (decided once, before the upgrade). */
export interface ConnectionGrant {
  readonly access: Exclude<Access, "deny">;
  /** ms since the epoch; Infinity for never. */
  readonly expiresAt: number;
}

/**
 * One y-websocket client: decodes its frames into handle calls and encodes what the
 * session sends it. It is the session's {@link SessionPeer}.
 */
export class YWebsocketConnection implements SessionPeer, AwarenessRefusalListener {
  /** `performance.now()` of the last frame sent (for keep-alive). */
  lastSentAt = performance.now();
  /** Whether a pong arrived since the last ping. */
  alive = true;
  /** Whether a frame arrived since the last liveness check. */
  heard = false;
  /** The transport's rate limiter, stopped as the server starts closing the socket (so it is read again). */
  rateLimiter: { stop(): void } | undefined;
  private handle: DocumentHandle | undefined;
  private pending: Uint8Array[] | undefined = [];
  private pendingBytes = 0;
  private closed = false;
  private readonly access: ConnectionGrant["access"];
  private readonly awareness: AwarenessGuard;
  private readonly cancelExpiry: () => void;

  constructor(
    readonly id: string,
    private readonly ws: WebSocket,
    readonly docId: string,
    grant: ConnectionGrant,
    private readonly limits: ConnectionLimits,
    private readonly metrics: OpStreamMetrics,
    private readonly logger: Logger,
  ) {
    this.access = grant.access;
    this.awareness = new AwarenessGuard(limits.maxAwarenessStateBytes, this);
    // The decision holds for the connection's life, up to the grant's end (a token's exp).
    this.cancelExpiry = onExpiry(grant.expiresAt, () =>
      this.close(CloseCodes.ACCESS_EXPIRED, "access expired: reconnect with a fresh token"),
    );
  }

  /** Counts and logs an awareness entry the guard dropped. */
  awarenessRefused(reason: AwarenessRefusal, clientId: number): void {
    this.metrics.awarenessRefused.inc({ reason });
    this.logger.debug({ docId: this.docId, peerId: this.id, clientId, reason }, "awareness entry refused");
  }

  /** Called once the router has attached this peer: sends the opening sync step 1 and awareness. */
  async attach(handle: DocumentHandle): Promise<void> {
    this.handle = handle;
    if (this.closed) {
      handle.leave();
      return;
    }
    this.send(encodeSyncStep1(await handle.stateVector()));
    const states = handle.awarenessStates();
    if (states) this.sendAwareness(states);
    const pending = this.pending ?? [];
    this.pending = undefined;
    for (const frame of pending) this.receive(frame);
  }

  /** Handles one binary frame from the client. */
  receive(frame: Uint8Array): void {
    if (this.closed) return;
    if (this.pending) {
      this.pendingBytes += frame.byteLength;
      if (this.pending.length >= this.limits.maxPendingFrames) {
        this.close(
          CloseCodes.TOO_MANY_PENDING,
          "too many frames before the document loaded",
          "too-many-pending",
        );
      } else if (this.pendingBytes > this.limits.maxPendingBytes) {
        this.close(
          CloseCodes.TOO_MANY_PENDING,
          "too many bytes before the document loaded",
          "too-many-pending-bytes",
        );
      } else this.pending.push(frame);
      return;
    }
    let message: YMessage;
    try {
      message = decodeMessage(frame);
    } catch (error) {
      const reason = isOpStreamError(error, ErrorCodes.INVALID_FRAME) ? frameErrorReason(error) : "truncated";
      const code = reason === "unknown-type" ? CloseCodes.UNSUPPORTED_DATA : CloseCodes.INVALID_FRAME;
      this.close(code, error instanceof Error ? error.message : "invalid frame", reason);
      return;
    }
    this.dispatch(message);
  }

  private dispatch(message: YMessage): void {
    const handle = this.handle;
    if (!handle) return;
    switch (message.type) {
      case YMessageType.Sync:
        if (message.step === SyncStep.Step1) {
          handle.syncStep1(message.stateVector).then(
            (update) => this.send(encodeSyncStep2(update)),
            (error: unknown) => this.onHandleError(error),
          );
        } else if (this.access === "readonly") {
          // Read-only clients change nothing; y-websocket has no refusal frame. A SyncStep2
          // holding nothing new (a viewer's opening sync) refuses nothing, so it is not counted.
          const held =
            message.step === SyncStep.Step2 ? handle.contains(message.update) : Promise.resolve(false);
          held.then(
            (contained) => {
              if (!contained) this.metrics.updatesRejected.inc({ reason: "readonly" });
            },
            (error: unknown) => this.onHandleError(error),
          );
        } else {
          handle.apply(message.update).catch((error: unknown) => this.onHandleError(error));
        }
        return;
      case YMessageType.Awareness:
        try {
          // Read-only connections may set awareness too: viewers appear in presence lists.
          const allowed = this.awareness.filter(message.update);
          if (allowed) handle.applyAwareness(allowed);
        } catch (error) {
          this.onHandleError(error, "invalid-awareness");
        }
        return;
      case YMessageType.QueryAwareness: {
        const states = handle.awarenessStates();
        if (states) this.sendAwareness(states);
        return;
      }
    }
  }

  private onHandleError(error: unknown, badInputReason = "invalid-update"): void {
    const { code, reason, badInput } = closeForHandleError(error, badInputReason);
    if (badInput) {
      this.logger.warn(
        { err: error, docId: this.docId, peerId: this.id },
        "invalid input; closing the connection",
      );
    }
    this.close(code, reason, badInput);
  }

  sendUpdate(update: Uint8Array): void {
    this.send(updateFrame(update));
  }

  sendAwareness(update: Uint8Array): void {
    this.awareness.sent(update);
    this.send(encodeAwareness(update));
  }

  sendSyncStep1(stateVector: Uint8Array): void {
    this.send(encodeSyncStep1(stateVector));
  }

  /** Sends the keep-alive frame if nothing was sent for `idleMs`. */
  keepAlive(idleMs: number, now: number): void {
    if (now - this.lastSentAt >= idleMs) this.send(KEEP_ALIVE_FRAME);
  }

  /** The liveness check of a ping period ({@link missedPing}): a dead socket is terminated. */
  ping(): void {
    if (!missedPing(this, this.ws)) return;
    this.metrics.closes.inc({ dialect: "y-websocket", code: "terminated" });
    this.ws.terminate();
    this.detach();
  }

  disconnect(reason: DisconnectReason): void {
    this.handle = undefined; // the session has already forgotten this peer
    this.close(DISCONNECT_CLOSE_CODES[reason], reason);
  }

  /** Closes the socket with `code`; `badInput` counts it as refused input. */
  close(code: CloseCode, reason: string, badInput?: string): void {
    if (this.closed) return;
    if (badInput) this.metrics.badFrames.inc({ dialect: "y-websocket", reason: badInput });
    this.metrics.closes.inc({ dialect: "y-websocket", code: String(code) });
    this.closed = true;
    this.rateLimiter?.stop();
    this.ws.close(code, reason.slice(0, 120));
    this.detach();
  }

  /** The socket has closed (either side): leave the document. */
  detach(): void {
    this.closed = true;
    this.cancelExpiry();
    this.pending = undefined;
    this.handle?.leave();
    this.handle = undefined;
  }

  private send(frame: Uint8Array): void {
    if (this.closed || this.ws.readyState !== this.ws.OPEN) return;
    // A client that cannot keep up must not grow our memory or stall the document.
    if (this.ws.bufferedAmount > this.limits.maxBufferedBytes) {
      this.close(CloseCodes.SLOW_CONSUMER, "send buffer full: client too slow", "slow-consumer");
      return;
    }
    this.lastSentAt = performance.now();
    this.ws.send(frame, (error) => {
      if (error) this.logger.debug({ err: error, peerId: this.id }, "send failed on a closing socket");
    });
  }
}

/**
 * The fan-out hands one update to every peer of its document in a row, so the
 * last frame is kept and reused: each update is framed once, not once per peer.
 * Frames are never mutated after encoding (ws does not mask server frames).
 */
let lastUpdate: Uint8Array | undefined;
let lastFrame: Uint8Array = new Uint8Array(0);
function updateFrame(update: Uint8Array): Uint8Array {
  if (update !== lastUpdate) {
    lastFrame = encodeUpdate(update);
    lastUpdate = update;
  }
  return lastFrame;
}
