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
}

export type Numbers = Record<string, number>;

export interface Scenario {
  readonly name: string;
  readonly description: string;
  /** The metrics it reports, in table order (it may report more; all go to the JSON). */
  readonly metrics: readonly Metric[];
  /** Whether the peers should keep documents across a restart (S4 only). */
  readonly persist: boolean;
  applies(target: Target): boolean;
  run(context: {
    target: RunningTarget;
    generator: LoadGenerator;
    options: ScenarioOptions;
  }): Promise<Numbers>;
}

/** One (scenario, target, repetition) of a run, as the JSON results hold it. */
export interface Repetition {
  readonly scenario: string;
  readonly target: string;
  readonly rep: number;
  readonly numbers?: Numbers;
  readonly error?: string;
}

/** `n` scaled, never below `min`. */
export const scaled = (n: number, scale: number, min: number): number => Math.max(min, Math.round(n * scale));

/** Warm-up before the measured window: a fifth of it, at most 2 s. */
export const warmupFor = (seconds: number): number => Math.min(2, seconds / 5);

export const MB = 1024 * 1024;
