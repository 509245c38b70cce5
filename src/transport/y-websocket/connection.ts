import type { WebSocket } from "ws";
import type { DisconnectReason, SessionPeer } from "../../engine/peer.js";
import { ErrorCodes, isOpStreamError } from "../../errors.js";
import type { Logger } from "../../logging/logger.js";
import type { OpStreamMetrics } from "../../metrics.js";
import type { DocumentHandle } from "../../router/document-handle.js";
import type { Access } from "../authorization.js";
import { CloseCodes, DISCONNECT_CLOSE_CODES, type CloseCode } from "../close-codes.js";
import { closeForHandleError } from "../handle-errors.js";
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
}

/**
 * One y-websocket client: decodes its frames into handle calls and encodes what the
 * session sends it. It is the session's {@link SessionPeer}.
 */
export class YWebsocketConnection implements SessionPeer {
  /** `performance.now()` of the last frame sent (for keep-alive). */
  lastSentAt = performance.now();
  /** Whether a pong arrived since the last ping. */
  alive = true;
  private handle: DocumentHandle | undefined;
  private pending: Uint8Array[] | undefined = [];
  private closed = false;

  constructor(
    readonly id: string,
    private readonly ws: WebSocket,
    readonly docId: string,
    private readonly access: Access,
    private readonly limits: ConnectionLimits,
    private readonly metrics: OpStreamMetrics,
    private readonly logger: Logger,
  ) {}

  /** Called once the router has attached this peer: sends the opening sync step 1 and awareness. */
  async attach(handle: DocumentHandle): Promise<void> {
    this.handle = handle;
    if (this.closed) {
      handle.leave();
      return;
    }
    this.send(encodeSyncStep1(await handle.stateVector()));
    const states = handle.awarenessStates();
    if (states) this.send(encodeAwareness(states));
    const pending = this.pending ?? [];
    this.pending = undefined;
    for (const frame of pending) this.receive(frame);
  }

  /** Handles one binary frame from the client. */
  receive(frame: Uint8Array): void {
    if (this.closed) return;
    if (this.pending) {
      if (this.pending.length >= this.limits.maxPendingFrames) {
        this.close(
          CloseCodes.TOO_MANY_PENDING,
          "too many frames before the document loaded",
          "too-many-pending",
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
          // Read-only clients change nothing; y-websocket has no refusal frame.
          this.metrics.updatesRejected.inc({ reason: "readonly" });
        } else {
          handle.apply(message.update).catch((error: unknown) => this.onHandleError(error));
        }
        return;
      case YMessageType.Awareness:
        try {
          handle.applyAwareness(message.update);
        } catch (error) {
          this.onHandleError(error, "invalid-awareness");
        }
        return;
      case YMessageType.QueryAwareness: {
        const states = handle.awarenessStates();
        if (states) this.send(encodeAwareness(states));
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
    this.send(encodeUpdate(update));
  }

  sendAwareness(update: Uint8Array): void {
    this.send(encodeAwareness(update));
  }

  /** Sends the keep-alive frame if nothing was sent for `idleMs`. */
  keepAlive(idleMs: number, now: number): void {
    if (now - this.lastSentAt >= idleMs) this.send(KEEP_ALIVE_FRAME);
  }

  /** Pings the socket; one that did not answer the previous ping is dead and terminated. */
  ping(): void {
    if (!this.alive) {
      this.metrics.closes.inc({ dialect: "y-websocket", code: "terminated" });
      this.ws.terminate();
      this.detach();
      return;
    }
    this.alive = false;
    this.ws.ping();
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
    this.ws.close(code, reason.slice(0, 120));
    this.detach();
  }

  /** The socket has closed (either side): leave the document. */
  detach(): void {
    this.closed = true;
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
