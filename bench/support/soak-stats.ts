/** Small statistics for the soak: percentiles and the heap-slope fit. */

/** Nearest-rank percentile of ascending `sorted`; null when empty. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? null;
}

export interface Percentiles {
  samples: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
}

export function summarize(values: readonly number[]): Percentiles {
  const sorted = Float64Array.from(values).sort();
  const list = Array.from(sorted);
  return {
    samples: list.length,
    p50: percentile(list, 50),
    p95: percentile(list, 95),
    p99: percentile(list, 99),
    max: list.length ? (list[list.length - 1] ?? null) : null,
  };
}

export interface HeapFit {
  /** Minutes (since the soak started) dropped as warm-up. */
  warmUpMinutes: number;
  /** The per-minute minimum of the series, after warm-up: [minute, bytes]. */
  points: [number, number][];
  /** Least-squares slope as % of the mean per hour; null with fewer than 2 points. */
  slopePctPerHour: number | null;
}

/**
 * Fits a line through the per-minute minimum of `samples` (the minimum, because GC
 * makes the raw series a saw-tooth whose tops say little about retained memory).
 * The first 5 minutes are warm-up (20 % of runs shorter than 15 minutes).
 */
export function heapSlope(samples: readonly { atMs: number; bytes: number }[], runMinutes: number): HeapFit {
  const warmUpMinutes = runMinutes >= 15 ? 5 : runMinutes * 0.2;
  const minima = new Map<number, number>();
  for (const { atMs, bytes } of samples) {
    const minute = Math.floor(atMs / 60_000);
    if (atMs < warmUpMinutes * 60_000) continue;
    minima.set(minute, Math.min(minima.get(minute) ?? Infinity, bytes));
  }
  const points = [...minima.entries()].sort((a, b) => a[0] - b[0]);
  if (points.length < 2) return { warmUpMinutes, points, slopePctPerHour: null };
  const n = points.length;
  const meanX = points.reduce((sum, [x]) => sum + x, 0) / n;
  const meanY = points.reduce((sum, [, y]) => sum + y, 0) / n;
  let covariance = 0;
  let variance = 0;
  for (const [x, y] of points) {
    covariance += (x - meanX) * (y - meanY);
    variance += (x - meanX) ** 2;
  }
  const bytesPerMinute = covariance / variance;
  return { warmUpMinutes, points, slopePctPerHour: ((bytesPerMinute * 60) / meanY) * 100 };
}
