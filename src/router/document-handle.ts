/**
 * A peer's view of one document, wherever its owner runs. The transport talks only
 * to handles; the router decides whether a handle is local or proxies
 * to the owning node.
 */
export interface DocumentHandle {
  readonly docId: string;
  /** The document's state vector, for the server's opening sync step 1. */
  stateVector(): Promise<Uint8Array>;
  /** Answers the peer's sync step 1 with the durable state it is missing. */
  syncStep1(clientStateVector: Uint8Array): Promise<Uint8Array>;
  /** Applies the peer's update; resolves with its seq once durable and fanned out (null: no-op). */
  apply(update: Uint8Array): Promise<number | null>;
  /**
   * True when the durable document already holds everything in `update` (a
   * read-only peer's update that would change nothing). Rejects with INVALID_UPDATE.
   */
  contains(update: Uint8Array): Promise<boolean>;
  /** Applies the peer's awareness update and fans out what changed. */
  applyAwareness(update: Uint8Array): void;
  /** Every current awareness state, or null. */
  awarenessStates(): Uint8Array | null;
  /** Detaches the peer (its awareness states are removed). Idempotent. */
  leave(): void;
}

/**
 * A handle that forwards every member of {@link DocumentHandle} to `inner`;
 * wrappers (quotas, hooks) extend it and override what they watch (usually
 * `leave`), so none can drop a member.
 */
export class ForwardingHandle implements DocumentHandle {
  constructor(protected readonly inner: DocumentHandle) {}

  get docId(): string {
    return this.inner.docId;
  }

  stateVector(): Promise<Uint8Array> {
    return this.inner.stateVector();
  }

  syncStep1(clientStateVector: Uint8Array): Promise<Uint8Array> {
    return this.inner.syncStep1(clientStateVector);
  }

  apply(update: Uint8Array): Promise<number | null> {
    return this.inner.apply(update);
  }

  contains(update: Uint8Array): Promise<boolean> {
    return this.inner.contains(update);
  }

  applyAwareness(update: Uint8Array): void {
    this.inner.applyAwareness(update);
  }

  awarenessStates(): Uint8Array | null {
    return this.inner.awarenessStates();
  }

  leave(): void {
    this.inner.leave();
  }
}
