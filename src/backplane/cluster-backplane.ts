import { randomUUID } from "node:crypto";
import { ErrorCodes, OpStreamError } from "../errors.js";
import { createDefaultLogger } from "../logging/logger.js";
import type { OpStreamMetrics } from "../metrics.js";
import type {
  ChannelHandler,
  ChannelMessage,
  IBackplane,
  RequestHandler,
  RequestOptions,
  Subscription,
} from "./backplane.js";
import type { BackplaneLogger } from "./backplane-logger.js";
import { DocumentSubscriptions } from "./document-subscriptions.js";
import { laneOf } from "./fnv1a.js";
import {
  RpcFrameKind,
  decodeChannelMessage,
  decodeRpcFrame,
  encodeChannelMessage,
  encodeRpcFrame,
  type RpcFrame,
  type RpcRequest,
  type RpcResponse,
} from "./envelope.js";
import { PendingRequests } from "./pending-requests.js";
import { nodeGone, unsent } from "./request-errors.js";

/** Options every {@link ClusterBackplane} takes. */
export interface ClusterBackplaneOptions {
  /** This node's id, unique in the cluster. @default a random UUID */
  nodeId?: string;
  /** Prepended to channel names: `<prefix>doc:<docId>` and `<prefix>node:<nodeId>`. @default "opstream:" */
  channelPrefix?: string;
  /** How long a request waits for its answer; a per-call `timeoutMs` overrides it. @default 5000 */
  requestTimeoutMs?: number;
  /** Counts `rpcTimeouts`. @default none (not counted) */
  metrics?: Pick<OpStreamMetrics, "rpcTimeouts" | "rpcSeconds" | "rpcInFlight" | "backplanePublishSeconds">;
  /** Where delivery and connection problems are reported. @default the default pino logger */
  logger?: BackplaneLogger;
  /**
   * How many RPC channels (lanes) each node listens on. A request with a `key` goes
   * on the lane the key hashes to, and its answer comes back on the same lane of the
   * caller; every node of a cluster must use the same count. @default 1
   */
  nodeLanes?: number;
}

/**
 * A request unanswered for this long makes the backplane check that its target is
 * still on the backplane (one listener count per target, not per request); a
 * target that left fails its requests with NODE_GONE instead of their timeouts.
 */
export const LIVENESS_PROBE_MS = 250;

export const CLUSTER_BACKPLANE_DEFAULTS: Readonly<{ channelPrefix: string; requestTimeoutMs: number }> =
  Object.freeze({
    channelPrefix: "opstream:",
    requestTimeoutMs: 5000,
  });

/**
 * The protocol half of a cluster backplane (socket.io's `ClusterAdapter` split):
 * request ids, correlation and timeouts, self-filtering, the handler registry,
 * envelope encoding, and ref-counted document subscriptions. A subclass moves
 * bytes only: publish to a channel, subscribe/unsubscribe a channel, close.
 *
 * Each node listens on its own channel `<prefix>node:<nodeId>` for requests and
 * for the responses to its own requests; subclasses call {@link listen} once
 * their connections exist.
 */
export abstract class ClusterBackplane implements IBackplane {
  readonly nodeId: string;
  protected readonly logger: BackplaneLogger;
  private readonly channelPrefix: string;
  private readonly requestTimeoutMs: number;
  private readonly handlers = new Map<string, RequestHandler>();
  private readonly pending: PendingRequests;
  private readonly metrics: ClusterBackplaneOptions["metrics"];
  private readonly documents: DocumentSubscriptions;
  private listening: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  /** Targets whose liveness check is under way. */
  private readonly probing = new Set<string>();
  /** How many RPC channels each node listens on (see {@link ClusterBackplaneOptions.nodeLanes}). */
  private readonly nodeLanes: number;

  private readonly frameHandlers: {
    [K in RpcFrameKind]: (frame: Extract<RpcFrame, { kind: K }>, lane: number) => void;
  } = {
    [RpcFrameKind.Request]: (request, lane) => void this.answer(request, lane),
    [RpcFrameKind.Response]: (response) => this.pending.settle(response),
  };

  protected constructor(options: ClusterBackplaneOptions) {
    this.nodeId = options.nodeId ?? randomUUID();
    this.channelPrefix = options.channelPrefix ?? CLUSTER_BACKPLANE_DEFAULTS.channelPrefix;
    this.requestTimeoutMs = options.requestTimeoutMs ?? CLUSTER_BACKPLANE_DEFAULTS.requestTimeoutMs;
    this.logger = options.logger ?? createDefaultLogger();
    this.metrics = options.metrics;
    this.pending = new PendingRequests(options.metrics);
    this.nodeLanes = options.nodeLanes ?? 1;
    this.documents = new DocumentSubscriptions(
      {
        subscribe: (docId) =>
          this.subscribeChannel(this.documentChannel(docId), (bytes) => this.deliver(docId, bytes)),
        unsubscribe: (docId) => this.unsubscribeChannel(this.documentChannel(docId)),
      },
      this.logger,
    );
  }

  /**
   * Publishes `bytes` on `channel`; resolves once the medium took them, with how
   * many subscribers it reached (0: nobody listens).
   */
  protected abstract publishBytes(channel: string, bytes: Uint8Array): Promise<number>;
  /** How many subscribers `channel` has now. */
  protected abstract countListeners(channel: string): Promise<number>;
  /** Subscribes `channel`, delivering each message to `onBytes`; resolves once messages flow. */
  protected abstract subscribeChannel(channel: string, onBytes: (bytes: Uint8Array) => void): Promise<void>;
  /** Stops delivering `channel`. */
  protected abstract unsubscribeChannel(channel: string): Promise<void>;
  /** Releases the medium's connections. Called once, after pending requests were rejected. */
  protected abstract closeTransport(): Promise<void>;

  /**
   * Whether a message on `docId`'s channel can reach a node other than `origin`
   * (the only ones that would keep it). A medium that knows its subscribers without
   * a round trip (the in-process bus) answers false when nobody else listens, so a
   * lone node's publish skips the encoding: the single-node hot path does no work
   * for the backplane. Keyed by document, not channel, so that asking costs no
   * string building. This default answers true: Redis cannot know without asking.
   */
  protected reachesOthers(_docId: string, _origin: string): boolean {
    return true;
  }

  /**
   * Registers a listener called after the medium reconnected and every channel is
   * subscribed again: messages published meanwhile are lost (pub/sub is
   * at-most-once), so relays resync. Returns a function that removes it. A medium
   * that never loses messages keeps this default, which never calls the listener.
   */
  onResubscribed(_listener: () => void): () => void {
    return () => undefined;
  }

  /** Resolves once this node's RPC channels are subscribed (requests to it can be answered). */
  ready(): Promise<void> {
    return this.listening ?? Promise.reject(new Error("ClusterBackplane.listen() was never called"));
  }

  /** Subscribes this node's RPC channels; subclasses call it once, at the end of their constructor. */
  protected listen(): void {
    if (this.listening) return;
    const lanes = Array.from({ length: this.nodeLanes }, (_, lane) =>
      this.subscribeChannel(this.nodeChannel(this.nodeId, lane), (bytes) => this.onNodeFrame(bytes, lane)),
    );
    this.listening = Promise.all(lanes).then(() => undefined);
    this.listening.catch((error: unknown) =>
      this.logger.error({ err: error, nodeId: this.nodeId }, "backplane could not subscribe its RPC channel"),
    );
  }

  async subscribe(docId: string, handler: ChannelHandler): Promise<Subscription> {
    this.assertOpen("subscribe");
    return this.documents.add(docId, handler);
  }

  publish(docId: string, message: ChannelMessage): Promise<void> {
    if (this.closing) return Promise.reject(this.closedError("publish"));
    // Not async, so that a publish nobody else hears costs no more than a lookup.
    if (!this.reachesOthers(docId, message.origin)) return Promise.resolve();
    return this.publishMessage(this.documentChannel(docId), message);
  }

  private async publishMessage(channel: string, message: ChannelMessage): Promise<void> {
    const stop = this.metrics?.backplanePublishSeconds.startTimer();
    try {
      await this.publishBytes(channel, encodeChannelMessage(message));
    } finally {
      stop?.();
    }
  }

  /** Whether something listens on `nodeId`'s RPC channel; rejects when the medium does not answer. */
  async isNodeAlive(nodeId: string): Promise<boolean> {
    if (nodeId === this.nodeId) return true;
    return (await this.countListeners(this.nodeChannel(nodeId))) > 0;
  }

  /**
   * Sends a request to `nodeId`. It fails with NODE_GONE as soon as the node is
   * known to have left: at once when the publish reached nobody, or at the next
   * liveness check ({@link LIVENESS_PROBE_MS}) when it left while the request waited.
   */
  sendRequest(
    nodeId: string,
    type: string,
    payload: Uint8Array,
    options: RequestOptions = {},
  ): Promise<Uint8Array> {
    if (this.closing) return Promise.reject(this.closedError("sendRequest"));
    const { id, answer } = this.pending.open(nodeId, type, options.timeoutMs ?? this.requestTimeoutMs);
    const request: RpcRequest = { kind: RpcFrameKind.Request, id, type, from: this.nodeId, payload };
    const stop = this.metrics?.rpcSeconds.startTimer({ type });
    this.metrics?.rpcInFlight.inc();
    this.publishBytes(
      this.nodeChannel(nodeId, laneOf(options.key, this.nodeLanes)),
      encodeRpcFrame(request),
    ).then(
      (receivers) => {
        if (receivers === 0) this.pending.fail(id, nodeGone(nodeId, type));
      },
      (error: unknown) => this.pending.fail(id, unsent(nodeId, type, error)),
    );
    this.probeTimer ??= setInterval(() => this.probeTargets(), LIVENESS_PROBE_MS).unref();
    if (this.metrics) {
      const settled = (): void => {
        stop?.();
        this.metrics?.rpcInFlight.dec();
      };
      answer.then(settled, settled);
    }
    return answer;
  }

  /**
   * Checks the targets of requests unanswered for {@link LIVENESS_PROBE_MS}: those
   * that left the backplane fail their requests with NODE_GONE. Runs only while
   * requests wait.
   */
  private probeTargets(): void {
    if (this.pending.size === 0 || this.closing) {
      clearInterval(this.probeTimer);
      this.probeTimer = undefined;
      return;
    }
    for (const nodeId of this.pending.waitedOnLongerThan(LIVENESS_PROBE_MS)) {
      if (nodeId === this.nodeId || this.probing.has(nodeId)) continue;
      this.probing.add(nodeId);
      this.isNodeAlive(nodeId)
        .then(
          (alive) => {
            if (!alive) this.pending.failNode(nodeId, (type) => nodeGone(nodeId, type));
          },
          // The medium is not answering: the requests' own timeouts decide.
          () => undefined,
        )
        .finally(() => this.probing.delete(nodeId));
    }
  }

  registerRequestHandler(type: string, handler: RequestHandler): () => void {
    this.handlers.set(type, handler);
    return () => {
      if (this.handlers.get(type) === handler) this.handlers.delete(type);
    };
  }

  /** Rejects every pending request with SHUTTING_DOWN, drops subscriptions, then closes the medium. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    clearInterval(this.probeTimer);
    this.pending.rejectAll((nodeId, type) => this.closedError(`request "${type}" to node "${nodeId}"`));
    this.documents.clear();
    this.handlers.clear();
    await this.closeTransport();
  }

  protected documentChannel(docId: string): string {
    return `${this.channelPrefix}doc:${docId}`;
  }

  /** The RPC channel of `nodeId`'s `lane` (lane 0 also tells whether the node is on the backplane). */
  protected nodeChannel(nodeId: string, _lane = 0): string {
    return `${this.channelPrefix}node:${nodeId}`;
  }

  private deliver(docId: string, bytes: Uint8Array): void {
    let message: ChannelMessage;
    try {
      message = decodeChannelMessage(bytes);
    } catch (error) {
      this.logger.warn({ err: error, docId }, "backplane dropped an undecodable channel message");
      return;
    }
    if (message.origin === this.nodeId) return;
    for (const handler of this.documents.handlersOf(docId)) {
      try {
        handler(message);
      } catch (error) {
        this.logger.error({ err: error, docId, type: message.type }, "backplane channel handler threw");
      }
    }
  }

  private onNodeFrame(bytes: Uint8Array, lane: number): void {
    let frame: RpcFrame;
    try {
      frame = decodeRpcFrame(bytes);
    } catch (error) {
      this.logger.warn({ err: error, nodeId: this.nodeId }, "backplane dropped an undecodable RPC frame");
      return;
    }
    const handle = this.frameHandlers[frame.kind] as (frame: RpcFrame, lane: number) => void;
    handle(frame, lane);
  }

  /**
   * Runs the handler for `request` and publishes its answer on the caller's channel.
   * Error rule: a coded OpStreamError travels as it is (code and message), so the
   * caller can act on it (NOT_OWNER: re-resolve and retry). Any other throw is a bug
   * or an unexpected failure in the handler; it travels as NO_HANDLER with the text
   * "remote handler failed: <message>", because the catalogue has no code for
   * "the remote failed". Callers cannot tell it from a missing handler; which of
   * them retry NO_HANDLER (bounded), and why, is decided in router/retry-policy.ts.
   */
  private async answer(request: RpcRequest, lane: number): Promise<void> {
    const handler = this.handlers.get(request.type);
    let response: RpcResponse;
    if (!handler) {
      response = failure(
        request.id,
        ErrorCodes.NO_HANDLER,
        `Node "${this.nodeId}" has no handler for "${request.type}" requests.`,
      );
    } else {
      try {
        response = {
          kind: RpcFrameKind.Response,
          id: request.id,
          ok: true,
          payload: await handler(request.payload, request.from),
        };
      } catch (error) {
        if (error instanceof OpStreamError) {
          response = failure(request.id, error.code, error.message);
        } else {
          this.logger.error(
            { err: error, type: request.type, from: request.from },
            "backplane request handler failed",
          );
          response = failure(
            request.id,
            ErrorCodes.NO_HANDLER,
            `remote handler failed: ${errorMessage(error)}`,
          );
        }
      }
    }
    if (this.closing) return;
    try {
      // On the lane it came on: the caller's answers about one key stay in order.
      await this.publishBytes(this.nodeChannel(request.from, lane), encodeRpcFrame(response));
    } catch (error) {
      // The caller will time out; say why on this side.
      this.logger.warn(
        { err: error, type: request.type, to: request.from },
        "backplane could not send a response",
      );
    }
  }

  private assertOpen(operation: string): void {
    if (this.closing) throw this.closedError(operation);
  }

  private closedError(operation: string): OpStreamError {
    return new OpStreamError(
      ErrorCodes.SHUTTING_DOWN,
      `The backplane of node "${this.nodeId}" is closed: ${operation} was refused.`,
      { nodeId: this.nodeId },
    );
  }
}

function failure(id: number, code: string, message: string): RpcResponse {
  return { kind: RpcFrameKind.Response, id, ok: false, code, message };
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
