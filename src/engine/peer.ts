/** Why the engine disconnects a peer; the transport maps each to a close code. */
export type DisconnectReason =
  /** The lease was lost: this node no longer owns the document (retryable). */
  | "step-down"
  /** The host is shutting down (retryable, on another node or later). */
  | "shutdown"
  /** The store failed; unacknowledged edits stay with the client (retryable). */
  | "storage-failure"
  /** The document was deleted. */
  | "deleted"
  /** The peer sent an update Yjs could not apply. */
  | "invalid-update"
  /** A validator rejected the peer's update. */
  | "rejected";

/** A connection attached to a document session. The transport implements it per dialect. */
export interface SessionPeer {
  /** Unique per connection (and per document, for multiplexed dialects). */
  readonly id: string;
  /**
   * True for a client of another node, attached through that node's relay: on
   * shutdown its relay takes the document over, so it is handed over at once.
   * @default false
   */
  readonly remote?: boolean;
  /**
   * For a client of another node: that node's id (a planned shutdown names one of
   * these nodes as the document's successor). @default undefined (a local client)
   */
  readonly node?: string;
  /** Sends a durable update to the client. */
  sendUpdate(update: Uint8Array): void;
  /** Sends an awareness update to the client. */
  sendAwareness(update: Uint8Array): void;
  /** Ends the peer's attachment to the document. */
  disconnect(reason: DisconnectReason): void;
  /**
   * Sends the server's sync step 1 (the document's state vector) outside the
   * opening handshake; the client answers with a sync step 2 holding everything
   * the document lacks. Sent when a relay's client moves to a new owner, so edits
   * the old owner never made durable come back. Peers without it (server-side
   * documents) hold nothing a new owner could lack.
   */
  sendSyncStep1?(stateVector: Uint8Array): void;
  /** Sends a stateless message (Hocuspocus dialect); peers without it never receive one. */
  sendStateless?(payload: string): void;
}

/**
 * A peer that forwards every member of {@link SessionPeer} to `inner`; wrappers
 * (quotas, hooks) extend it and override what they watch. One place forwards
 * everything, so a member added to SessionPeer cannot be silently dropped by a
 * wrapper (as `sendSyncStep1` once was, which kept relays' Hocuspocus clients
 * from being re-synchronised after an owner change).
 */
export class ForwardingPeer implements SessionPeer {
  readonly id: string;
  readonly remote?: boolean;
  readonly node?: string;

  constructor(protected readonly inner: SessionPeer) {
    this.id = inner.id;
    if (inner.remote !== undefined) this.remote = inner.remote;
    if (inner.node !== undefined) this.node = inner.node;
  }

  sendUpdate(update: Uint8Array): void {
    this.inner.sendUpdate(update);
  }

  sendAwareness(update: Uint8Array): void {
    this.inner.sendAwareness(update);
  }

  disconnect(reason: DisconnectReason): void {
    this.inner.disconnect(reason);
  }

  sendSyncStep1(stateVector: Uint8Array): void {
    this.inner.sendSyncStep1?.(stateVector);
  }

  sendStateless(payload: string): void {
    this.inner.sendStateless?.(payload);
  }
}
