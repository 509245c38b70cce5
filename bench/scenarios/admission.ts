/**
 * Whether a load run's numbers measure the target. A run is rejected, and run again
 * on fresh processes, when
 *
 * - the generator's event loop was late for a noticeable share of the latency it
 *   measured: its delay p99 (the highest of the workers') above `loopShareOfP99` of
 *   the run's p99, since every receipt waits that long in the generator before it is
 *   timed. The calibration target (the relay) is exempt: its p99 is the generator's
 *   own cost by design, which is what it is run to show;
 * - something outside the bench used the CPU: processes other than the runner's tree
 *   (servers, redis-server, workers) took more than `maxOtherCores` of a core
 *   during the window (support/machine-cpu.ts).
 *
 * Scenarios without these numbers (S3, S4) are never rejected.
 */
import type { Outcome } from "./scenario.js";

export const ADMISSION = Object.freeze({
  /** Attempts per (scenario, target, repetition); after the last rejected one its numbers are kept, flagged. */
  maxAttempts: 3,
  /** The generator's loop-delay p99 may be at most this share of the measured p99. */
  loopShareOfP99: 0.25,
  /** Cores that processes outside the bench may use during a run. */
  maxOtherCores: 0.1,
});

const ms = (n: number): string => `${n.toFixed(2)} ms`;

/** Why a run's outcome should not be kept (empty: keep it). `calibration`: the run is the relay's. */
export function rejectionReasons({ numbers, details }: Outcome, calibration: boolean): string[] {
  const reasons: string[] = [];
  const { genLoopP99, p99, otherCpu } = numbers;
  // A run without latencies (p99 NaN) is broken in a way a rerun does not fix; its other numbers say so.
  if (!calibration && genLoopP99 !== undefined && p99 !== undefined && Number.isFinite(p99)) {
    const limit = ADMISSION.loopShareOfP99 * p99;
    if (genLoopP99 > limit)
      reasons.push(
        `generator loop delay p99 ${ms(genLoopP99)} > ${ADMISSION.loopShareOfP99} × p99 ${ms(p99)} = ${ms(limit)}`,
      );
  }
  if (otherCpu !== undefined && otherCpu > ADMISSION.maxOtherCores)
    reasons.push(
      `other processes used ${otherCpu.toFixed(2)} cores (limit ${ADMISSION.maxOtherCores}; ` +
        `busiest: ${details?.otherBusiest || "none seen: kernel or short-lived processes"})`,
    );
  return reasons;
}
