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
