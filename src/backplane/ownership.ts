/**
 * A held ownership lease: the right to own one document. Leases are values; the
 * session keeps one for its lifetime.
 */
export interface Lease {
  readonly docId: string;
  /** The storage epoch claimed with this lease; every write is fenced by it. */
  readonly epoch: number;
  /**
   * Notes that the document's log is durable up to `seq` (0 after a delete), so an
   * ownership layer that keeps progress marks can later tell storage restored from
   * an older backup. Cheap: it must not do I/O on the caller's path.
   * @default absent (no progress marks)
   */
  progress?(seq: number): void;
  /**
   * Called once the session has loaded the log, up to `lastSeq`: true when storage
   * was found behind what the ownership layer remembers for this document
   * (restored from an older backup; reported by the ownership layer). The
   * document may then lack edits its clients still hold, so it is not seeded.
   * @default absent (never rolled back)
   */
  checkLoaded?(lastSeq: number): boolean;
  /** Aborts when the lease is lost (not renewed in time, or taken over). */
  readonly signal: AbortSignal;
  /** Extends the lease; rejects if it was lost. */
  renew(): Promise<void>;
  /**
   * Gives the lease up so another node can claim the document at once. Idempotent.
   * The release is sent before anything the node publishes after the call, so a
   * Closed message published right after it never finds the lease still held.
   */
  release(): Promise<void>;
}

/** Options of {@link IOwnership.acquire}. */
export interface AcquireOptions {
  /**
   * Claim the epoch with `ClaimEpochOptions.mustExist`: when storage has no such
   * document, acquire rejects with `OpStreamError(DOCUMENT_NOT_FOUND)`, releases
   * the lease it took, and nothing is created. For read-only joins.
   * @default false
   */
  mustExist?: boolean;
}

/** Who owns which document. */
export interface IOwnership {
  /**
   * Acquires the lease for `docId` and claims the next storage epoch, or resolves
   * null when another node holds it. A failed claim releases the lease and rejects.
   */
  acquire(docId: string, options?: AcquireOptions): Promise<Lease | null>;
  /** The node id of `docId`'s current owner, or null when nobody owns it. */
  ownerOf(docId: string): Promise<string | null>;
  /**
   * Frees `docId`'s lease if `holder` still holds it (compare-and-delete on the
   * node id), for a node found gone from the backplane: the caller can then
   * acquire at once instead of waiting for the lease to expire. Safe if `holder`
   * was only cut off: whoever acquires claims a higher storage epoch, so its next
   * append is fenced. Resolves whether it freed the lease.
   * @default absent (leases only expire or are released)
   */
  breakLease?(docId: string, holder: string): Promise<boolean>;
}
