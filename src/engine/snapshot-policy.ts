/**
 * Decides when a document's op log is folded into a snapshot. Counters are kept
 * per document by the policy; sessions report appends and snapshots to it.
 */
export interface SnapshotPolicy {
  /** Records `count` ops durably appended to `docId`; returns true when a snapshot is due now. */
  recordOps(docId: string, count: number, now: number): boolean;
  /** Milliseconds from `now` until a time-based snapshot of `docId` is due, or null if none is pending. */
  msUntilDue(docId: string, now: number): number | null;
  /** Resets `docId`'s counters after a snapshot. */
  recordSnapshot(docId: string, now: number): void;
  /** Drops `docId`'s counters (its session unloaded). */
  forget(docId: string): void;
}

/** Options of {@link HybridSnapshotPolicy}. */
export interface HybridSnapshotOptions {
  /** Snapshot after this many ops since the last snapshot. @default 100 */
  maxOps?: number;
  /** Snapshot when the oldest unsnapshotted op is this old. @default 300000 (5 min) */
  maxIntervalMs?: number;
}

export const HYBRID_SNAPSHOT_DEFAULTS = Object.freeze({
  maxOps: 100,
  maxIntervalMs: 300_000,
} satisfies Required<HybridSnapshotOptions>);

/** Snapshots after `maxOps` ops or `maxIntervalMs` after the first unsnapshotted op, whichever comes first. */
export class HybridSnapshotPolicy implements SnapshotPolicy {
  readonly maxOps: number;
  readonly maxIntervalMs: number;
  private readonly counters = new Map<string, { ops: number; since: number }>();

  constructor(options: HybridSnapshotOptions = {}) {
    this.maxOps = options.maxOps ?? HYBRID_SNAPSHOT_DEFAULTS.maxOps;
    this.maxIntervalMs = options.maxIntervalMs ?? HYBRID_SNAPSHOT_DEFAULTS.maxIntervalMs;
  }

  recordOps(docId: string, count: number, now: number): boolean {
    if (count <= 0) return false;
    const counter = this.counters.get(docId);
    if (counter) counter.ops += count;
    else this.counters.set(docId, { ops: count, since: now });
    return (counter?.ops ?? count) >= this.maxOps;
  }

  msUntilDue(docId: string, now: number): number | null {
    const counter = this.counters.get(docId);
    return counter ? Math.max(0, counter.since + this.maxIntervalMs - now) : null;
  }

  recordSnapshot(docId: string): void {
    this.counters.delete(docId);
  }

  forget(docId: string): void {
    this.counters.delete(docId);
  }
}
