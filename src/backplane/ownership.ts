/**
 * A held ownership lease: the right to own one document. Leases are values; the
 * session keeps one for its lifetime.
 */
export interface Lease {
  readonly docId: string;
  /** The storage epoch claimed with this lease; every write is fenced by it. */
  readonly epoch: number;
  /** Aborts when the lease is lost (not renewed in time, or taken over). */
  readonly signal: AbortSignal;
  /** Extends the lease; rejects if it was lost. */
  renew(): Promise<void>;
  /** Gives the lease up so another node can claim the document at once. Idempotent. */
  release(): Promise<void>;
}

/** Who owns which document. */
export interface IOwnership {
  /**
   * Acquires the lease for `docId` and claims the next storage epoch, or resolves
   * null when another node holds it.
   */
  acquire(docId: string): Promise<Lease | null>;
  /** The node id of `docId`'s current owner, or null when nobody owns it. */
  ownerOf(docId: string): Promise<string | null>;
}
