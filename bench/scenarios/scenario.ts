/** What every scenario provides to the runner (bench/run.ts). */
import type { LoadGenerator } from "../load/generator.js";
import type { RunningTarget, Target } from "../targets/index.js";

export interface ScenarioOptions {
  /** Multiplies client and document counts (1 = the sizes; 0.05 for a smoke run). */
  readonly scale: number;
  /** Measured seconds of load (S1, S1-2n, S2, S5) or of idling (S3). */
  readonly seconds: number;
}

/** One column of the results table. */
export interface Metric {
  readonly key: string;
  readonly label: string;
  /** Which way is better: ratios are printed for every metric, this only tells the reader. */
  readonly better: "lower" | "higher";
  /** A check on the run rather than a figure of the target (generator loop, other CPU, lost tokens): no ratio. */
  readonly check?: boolean;
}

export type Numbers = Record<string, number>;

/** What one run of a scenario measured. */
export interface Outcome {
  readonly numbers: Numbers;
  /** What went wrong without stopping the run (tokens lost, sockets closed): printed after the tables. */
  readonly problems?: readonly string[];
  /** Facts that are not numbers, for the JSON and the rejection reasons (e.g. `otherBusiest`). */
  readonly details?: Readonly<Record<string, string>>;
}

export interface Scenario {
  readonly name: string;
  readonly description: string;
  /** The metrics it reports, in table order (it may report more; all go to the JSON). */
  readonly metrics: readonly Metric[];
  /** Whether the peers should keep documents across a restart (S4 only). */
  readonly persist: boolean;
  /** Whether the calibration target (the stateless relay) always runs it too (S1). */
  readonly calibrated?: boolean;
  applies(target: Target): boolean;
  run(context: {
    target: RunningTarget;
    generator: LoadGenerator;
    options: ScenarioOptions;
  }): Promise<Outcome>;
}

/** An attempt that the admission check (admission.ts) turned down, and why. */
export interface Rejection {
  readonly attempt: number;
  readonly reasons: readonly string[];
  readonly numbers: Numbers;
  readonly details?: Readonly<Record<string, string>>;
}

/** One (scenario, target, repetition) of a run, as the JSON results hold it. */
export interface Repetition {
  readonly scenario: string;
  readonly target: string;
  readonly rep: number;
  readonly numbers?: Numbers;
  readonly error?: string;
  readonly problems?: readonly string[];
  readonly details?: Readonly<Record<string, string>>;
  /** Attempts of this repetition that were rejected (every one when `accepted` is false). */
  readonly rejected?: readonly Rejection[];
  /** False when every attempt was rejected: `numbers` are then the last attempt's. */
  readonly accepted?: boolean;
}

/** `n` scaled, never below `min`. */
export const scaled = (n: number, scale: number, min: number): number => Math.max(min, Math.round(n * scale));

/** Warm-up before the measured window: a fifth of it, at most 2 s. */
export const warmupFor = (seconds: number): number => Math.min(2, seconds / 5);

export const MB = 1024 * 1024;
