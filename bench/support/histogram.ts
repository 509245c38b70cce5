/**
 * A latency histogram with logarithmic buckets, 1% wide, from 10 µs to about 10 min.
 * Workers fill one each and send the plain counts to the runner, which merges them:
 * millions of samples (S2) cost 1,700 numbers on the wire instead of one per sample,
 * at the price of reporting a percentile as its bucket's upper edge (≤ 1% high).
 */
const MIN_MS = 0.01;
const GROWTH = 1.01;
const BUCKETS = Math.ceil(Math.log(60_000_000) / Math.log(GROWTH)) + 1;

/** Bucket counts; index 0 holds everything up to MIN_MS. */
export type Counts = number[];

export class Histogram {
  readonly counts: Counts;
  private total = 0;

  constructor(counts?: Counts) {
    this.counts = counts ? [...counts] : new Array<number>(BUCKETS).fill(0);
    for (const count of this.counts) this.total += count;
  }

  get count(): number {
    return this.total;
  }

  record(ms: number): void {
    const index =
      ms <= MIN_MS ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(ms / MIN_MS) / Math.log(GROWTH)));
    this.counts[index] = (this.counts[index] ?? 0) + 1;
    this.total += 1;
  }

  merge(other: Counts): void {
    other.forEach((count, index) => {
      this.counts[index] = (this.counts[index] ?? 0) + count;
      this.total += count;
    });
  }

  /** The upper edge of the bucket holding the `p`-th percentile (0–100); NaN when empty. */
  percentile(p: number): number {
    if (this.total === 0) return NaN;
    const rank = Math.max(1, Math.ceil((p / 100) * this.total));
    let seen = 0;
    for (let index = 0; index < this.counts.length; index++) {
      seen += this.counts[index] ?? 0;
      if (seen >= rank) return MIN_MS * GROWTH ** index;
    }
    return NaN;
  }
}

/** The exact `p`-th percentile (nearest rank) of raw samples; NaN when empty. */
export function percentileOf(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export const median = (values: readonly number[]): number => {
  const finite = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (finite.length === 0) return NaN;
  const mid = finite.length >> 1;
  return finite.length % 2 ? finite[mid]! : (finite[mid - 1]! + finite[mid]!) / 2;
};
