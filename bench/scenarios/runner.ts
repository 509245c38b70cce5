/**
 * Runs scenarios against targets over interleaved repetitions (A B C A B C …, so that
 * a slow spell of the machine hits every target), each (scenario, target, repetition)
 * on fresh server processes and fresh load workers. An attempt that the admission
 * check rejects (admission.ts: the generator was the bottleneck, or the machine was
 * busy with something else) is run again. Shared by bench/run.ts and
 * bench/scale-out.ts.
 */
import { LoadGenerator } from "../load/generator.js";
import type { RunningTarget, Target } from "../targets/index.js";
import { ADMISSION, rejectionReasons } from "./admission.js";
import type { Rejection, Repetition, Scenario, ScenarioOptions } from "./scenario.js";

export interface RunnerOptions {
  readonly reps: number;
  /** Load worker processes. */
  readonly workers: number;
  readonly options: ScenarioOptions;
  readonly log: (line: string) => void;
}

/** What is running now, so that a signal can stop it. */
const live = new Set<{ stop(): Promise<void> }>();

async function once(
  scenario: Scenario,
  target: Target,
  rep: number,
  { workers, options }: RunnerOptions,
): Promise<Repetition> {
  let running: RunningTarget | undefined;
  let generator: LoadGenerator | undefined;
  try {
    running = await target.start({ persist: scenario.persist });
    live.add(running);
    generator = await LoadGenerator.start(workers);
    live.add(generator);
    const { numbers, problems = [], details } = await scenario.run({ target: running, generator, options });
    for (const problem of problems)
      process.stderr.write(`${scenario.name} ${target.name} rep ${rep}: ${problem}\n`);
    return { scenario: scenario.name, target: target.name, rep, numbers, problems, details };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`${scenario.name} ${target.name} rep ${rep} failed: ${message}\n`);
    return { scenario: scenario.name, target: target.name, rep, error: message };
  } finally {
    for (const part of [generator, running]) {
      if (!part) continue;
      live.delete(part);
      await part.stop();
    }
  }
}

/**
 * Runs `once` until the admission check accepts it, at most ADMISSION.maxAttempts
 * times. Problems of rejected attempts stay with the repetition: a lost token is a
 * fault whatever else ran on the machine.
 */
async function admitted(
  scenario: Scenario,
  target: Target,
  rep: number,
  runner: RunnerOptions,
): Promise<Repetition> {
  const rejected: Rejection[] = [];
  const earlier: string[] = [];
  const keep = (result: Repetition, flags: Partial<Repetition> = {}): Repetition =>
    rejected.length === 0
      ? result
      : { ...result, ...flags, rejected, problems: [...earlier, ...(result.problems ?? [])] };
  for (let attempt = 1; ; attempt++) {
    const result = await once(scenario, target, rep, runner);
    if (!result.numbers) return keep(result);
    const { numbers, details } = result;
    const reasons = rejectionReasons({ numbers, details }, target.calibration === true);
    if (reasons.length === 0) return keep(result);
    const last = attempt >= ADMISSION.maxAttempts;
    runner.log(
      `rep ${rep} ${scenario.name} ${target.name}: attempt ${attempt} rejected (${reasons.join("; ")})` +
        (last ? `; keeping it, flagged: ${ADMISSION.maxAttempts} attempts made` : "; running it again"),
    );
    rejected.push({ attempt, reasons, numbers, details });
    if (last) return keep(result, { accepted: false });
    earlier.push(...(result.problems ?? []).map((problem) => `attempt ${attempt} (rejected): ${problem}`));
  }
}

/**
 * Runs every scenario on `targetsOf(scenario)`, repetition by repetition, and logs a
 * line per admitted repetition with the scenario's metrics.
 */
export async function runRepetitions(
  scenarios: readonly Scenario[],
  targetsOf: (scenario: Scenario) => readonly Target[],
  runner: RunnerOptions,
): Promise<Repetition[]> {
  const results: Repetition[] = [];
  for (let rep = 1; rep <= runner.reps; rep++) {
    for (const scenario of scenarios) {
      for (const target of targetsOf(scenario)) {
        const result = await admitted(scenario, target, rep, runner);
        results.push(result);
        const summary = result.numbers
          ? scenario.metrics.map((m) => `${m.key}=${result.numbers?.[m.key]?.toFixed(2)}`).join(" ")
          : "FAILED";
        runner.log(`rep ${rep} ${scenario.name} ${target.name}: ${summary}`);
      }
    }
  }
  return results;
}

/**
 * Runs a bench script's `main`. On SIGINT or SIGTERM the servers and workers that run
 * are stopped and the process exits 130; a failure is printed and exits 1.
 */
export function runMain(name: string, main: () => Promise<void>): void {
  let interrupted = false;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      interrupted = true;
      process.stderr.write(`${name}: ${signal}, stopping servers and workers\n`);
      void Promise.allSettled([...live].map((part) => part.stop())).finally(() => process.exit(130));
    });
  }
  main().catch((error: unknown) => {
    if (interrupted) return; // the run fails because its servers were stopped
    process.stderr.write(
      `${name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  });
}
