/**
 * Decides when a document's op log is folded into a snapshot. Counters are kept
 * per document by the policy; sessions report appends and snapshots to it.
 */
export interface SnapshotPolicy {
  /**
   * Records `count` ops durably appended to `docId` (also those found in the log
   * when it loads), of `bytes` in all; returns true when a snapshot is due now.
   */
  recordOps(docId: string, count: number, now: number, bytes?: number): boolean;
  /** Milliseconds from `now` until a time-based snapshot of `docId` is due, or null if none is pending. */
  msUntilDue(docId: string, now: number): number | null;
  /**
   * Resets `docId`'s counters after a snapshot of `bytes` (also called when the
   * document loads, with its stored snapshot's size, 0 when it has none).
   */
  recordSnapshot(docId: string, now: number, bytes?: number): void;
  /** Drops `docId`'s counters (its session unloaded). */
  forget(docId: string): void;
}

/** Options of {@link HybridSnapshotPolicy}. */
export interface HybridSnapshotOptions {
  /** Snapshot after this many ops since the last snapshot (once they weigh `logRatio` of it). @default 100 */
  maxOps?: number;
  /** Snapshot when the oldest unsnapshotted op is this old. @default 300000 (5 min) */
  maxIntervalMs?: number;
  /**
   * Snapshot only once the ops since the last snapshot also weigh this fraction of
   * it (an op weighs its bytes plus `OP_WEIGHT_BYTES`): a large document's
   * snapshots then cost at most `1 / logRatio` times what its log grew by, and a
   * load replays about this much at most. 0: every `maxOps` ops, whatever the size.
   * @default 1
   */
  logRatio?: number;
}

/** What one op weighs beyond its bytes in {@link HybridSnapshotOptions.logRatio}: replaying it is a Yjs apply of its own. */
export const OP_WEIGHT_BYTES = 256;

export const HYBRID_SNAPSHOT_DEFAULTS = Object.freeze({
  maxOps: 100,
  maxIntervalMs: 300_000,
  logRatio: 1,
} satisfies Required<HybridSnapshotOptions>);

/**
 * Snapshots after `maxOps` ops that also weigh `logRatio` of the last snapshot, or
 * `maxIntervalMs` after the first unsnapshotted op, whichever comes first.
 */
export class HybridSnapshotPolicy implements SnapshotPolicy {
  readonly maxOps: number;
  readonly maxIntervalMs: number;
  readonly logRatio: number;
  private readonly counters = new Map<string, { ops: number; weight: number; since: number }>();
  /** Each loaded document's last snapshot size, in bytes. */
  private readonly snapshotBytes = new Map<string, number>();

  constructor(options: HybridSnapshotOptions = {}) {
    this.maxOps = options.maxOps ?? HYBRID_SNAPSHOT_DEFAULTS.maxOps;
    this.maxIntervalMs = options.maxIntervalMs ?? HYBRID_SNAPSHOT_DEFAULTS.maxIntervalMs;
    this.logRatio = options.logRatio ?? HYBRID_SNAPSHOT_DEFAULTS.logRatio;
  }

  recordOps(docId: string, count: number, now: number, bytes = 0): boolean {
    if (count <= 0) return false;
    const weight = bytes + count * OP_WEIGHT_BYTES;
    let counter = this.counters.get(docId);
    if (counter) {
      counter.ops += count;
      counter.weight += weight;
    } else this.counters.set(docId, (counter = { ops: count, weight, since: now }));
    return (
      counter.ops >= this.maxOps && counter.weight >= this.logRatio * (this.snapshotBytes.get(docId) ?? 0)
    );
  }

  msUntilDue(docId: string, now: number): number | null {
    const counter = this.counters.get(docId);
    return counter ? Math.max(0, counter.since + this.maxIntervalMs - now) : null;
  }

  recordSnapshot(docId: string, _now?: number, bytes = 0): void {
    this.counters.delete(docId);
    this.snapshotBytes.set(docId, bytes);
  }

  forget(docId: string): void {
    this.counters.delete(docId);
    this.snapshotBytes.delete(docId);
  }
}
