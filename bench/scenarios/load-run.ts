/**
 * A measured load run, shared by the fan-out scenarios (S1, S1-2n, S5) and S2: the
 * generator's run with the target's processes, what its nodes share (redis-server),
 * the rest of the machine and the generator itself sampled over the sending time,
 * then the convergence check on a few of the run's documents (not on the stateless
 * relay, which keeps nothing to check).
 */
import { checkConvergence, docsToCheck } from "../load/convergence.js";
import type { LoadGenerator, RunResult } from "../load/generator.js";
import type { RunPlan } from "../load/messages.js";
import { ForeignCpuSampler } from "../support/machine-cpu.js";
import { ProcessSampler } from "../support/proc-stats.js";
import type { RunningTarget } from "../targets/index.js";
import { MB, type Metric, type Numbers } from "./scenario.js";

/** The columns every load scenario prints after its own: the generator's health and the run's checks. */
export const GENERATOR_METRICS: readonly Metric[] = [
  { key: "serverCpu", label: "server CPU", better: "lower" },
  { key: "mainCpu", label: "main thread CPU", better: "lower" },
  { key: "peakRssMB", label: "peak RSS MB", better: "lower" },
  { key: "generatorCpu", label: "gen CPU", better: "lower" },
  { key: "genLoopP99", label: "gen loop p99 ms", better: "lower", check: true },
  { key: "otherCpu", label: "other CPU", better: "lower", check: true },
  { key: "lostTokens", label: "lost", better: "lower", check: true },
];

export interface LoadRun {
  readonly result: RunResult;
  /** The {@link GENERATOR_METRICS}, the run's other counters and the shared processes' numbers. */
  readonly numbers: Numbers;
  readonly problems: string[];
  /** `otherBusiest`: the foreign processes that used the most CPU during the run. */
  readonly details: Record<string, string>;
}

/** Runs `plan` on `generator` against `target`; `docs` are the run's documents (a few are verified). */
export async function measureLoad(
  target: RunningTarget,
  generator: LoadGenerator,
  plan: RunPlan,
  docs: readonly string[],
): Promise<LoadRun> {
  const shared = await target.sampleShared?.();
  const server = new ProcessSampler(target.pids());
  const machine = new ForeignCpuSampler();
  const result = await generator.run(plan);
  // Both cover the sending time and the drain (run() resolves after it): the server still works then.
  const usage = server.stop();
  const foreign = machine.stop();
  const sharedNumbers = (await shared?.stop()) ?? {};
  const checked = target.stateless ? [] : docsToCheck(docs);
  const convergence = await checkConvergence(target, result.senders, checked);
  const problems = [...convergence.problems];
  if (result.socketsClosed > 0)
    problems.push(`${result.socketsClosed} client sockets closed during the run, e.g. ${result.firstClose}`);
  return {
    result,
    problems,
    details: { otherBusiest: foreign.busiest },
    numbers: {
      serverCpu: usage.cpuCores,
      mainCpu: usage.mainThreadCores,
      peakRssMB: usage.peakRssBytes / MB,
      generatorCpu: result.cpuShare,
      genLoopP99: result.loopDelayP99Ms,
      genLoopMax: result.loopDelayMaxMs,
      otherCpu: foreign.otherCores,
      machineCpu: foreign.machineCores,
      lostTokens: convergence.missing,
      convergenceDocs: convergence.docs,
      sendErrors: result.sendErrors,
      socketsClosed: result.socketsClosed,
      repeats: result.repeats,
      ...sharedNumbers,
    },
  };
}
