/** A load worker's measured window and what fell into it (worker.ts, senders.ts). */
import { Histogram } from "../support/histogram.js";

export interface Measurement {
  /** Wall-clock ms: tokens sent from `from` to `to` give latencies; receipts in it count. */
  readonly from: number;
  readonly to: number;
  readonly histogram: Histogram;
  sent: number;
  received: number;
  observed: number;
  repeats: number;
  sendErrors: number;
}

/** The window of a run that started at `startedAt` (wall-clock ms). */
export function measurement(startedAt: number, warmupSeconds: number, seconds: number): Measurement {
  return {
    from: startedAt + warmupSeconds * 1000,
    to: startedAt + seconds * 1000,
    histogram: new Histogram(),
    sent: 0,
    received: 0,
    observed: 0,
    repeats: 0,
    sendErrors: 0,
  };
}

/** Whether wall-clock ms `at` falls in `m`'s window. */
export const within = (m: Measurement, at: number): boolean => at >= m.from && at <= m.to;
