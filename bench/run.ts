/**
 * Side-by-side benchmarks of opstream against Hocuspocus, y-websocket's server and a
 * stateless relay (issue #7). Every (scenario, target) pair gets fresh server
 * processes and fresh load workers; targets are interleaved (A B C A B C …) over the
 * repetitions so that a slow spell of the machine hits all of them. A load run whose
 * generator was too slow or whose machine was busy with something else is rejected
 * and run again (scenarios/admission.ts). S1 always runs the relay too, as the
 * calibration: what the generator alone costs. Prints the medians with each target's
 * ratio to opstream and writes every repetition's numbers as JSON. It reports numbers
 * and asserts none. Method: BENCHMARKS.md.
 *
 *   npm run bench -- [--scenarios S1,S2] [--targets opstream,hocuspocus] [--reps 3]
 *                    [--scale 1] [--seconds 10] [--workers 2] [--out bench/results/x.json]
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { S4 } from "./scenarios/cold-load.js";
import { S3 } from "./scenarios/connections.js";
import { S1, S1_2N, S5 } from "./scenarios/fan-out.js";
import { S2 } from "./scenarios/saturation.js";
import { ADMISSION } from "./scenarios/admission.js";
import { runMain, runRepetitions } from "./scenarios/runner.js";
import type { Scenario, ScenarioOptions } from "./scenarios/scenario.js";
import { describeMachine, machineInfo } from "./support/machine-info.js";
import { printCalibration, printNotes, printTable } from "./support/table.js";
import { TARGETS, type Target } from "./targets/index.js";

const SCENARIOS: readonly Scenario[] = [S1, S1_2N, S2, S3, S4, S5];

const log = (line: string): void => void process.stdout.write(`${line}\n`);

function pick<T extends { name: string }>(all: readonly T[], list: string | undefined, what: string): T[] {
  if (list === undefined) return [...all];
  return list.split(",").map((name) => {
    const found = all.find((item) => item.name.toLowerCase() === name.trim().toLowerCase());
    if (!found)
      throw new Error(`unknown ${what} ${name}; choose from ${all.map((item) => item.name).join(", ")}`);
    return found;
  });
}

function positive(value: string, flag: string): number {
  const n = Number(value);
  if (!(n > 0)) throw new Error(`--${flag} must be a positive number, not ${value}`);
  return n;
}

const { values } = parseArgs({
  options: {
    scenarios: { type: "string" },
    targets: { type: "string" },
    reps: { type: "string", default: "3" },
    scale: { type: "string", default: "1" },
    seconds: { type: "string", default: "10" },
    workers: { type: "string", default: "2" },
    out: { type: "string" },
  },
});
const scenarios = pick(SCENARIOS, values.scenarios, "scenario");
const targets = pick(TARGETS, values.targets, "target");
const reps = Math.round(positive(values.reps, "reps"));
const workers = Math.max(2, Math.round(positive(values.workers, "workers")));
const options: ScenarioOptions = {
  scale: positive(values.scale, "scale"),
  seconds: positive(values.seconds, "seconds"),
};
const startedAt = new Date().toISOString();
const out = resolve(values.out ?? `bench/results/bench-${startedAt.replace(/[:.]/g, "-")}.json`);

/** The versions a result depends on, read from node_modules (some packages do not export package.json). */
function versions(): Record<string, string> {
  const names = ["@hocuspocus/server", "@hocuspocus/extension-redis", "@y/websocket-server", "yjs", "ws"];
  return Object.fromEntries(
    names.map((name) => {
      const file = new URL(`../node_modules/${name}/package.json`, import.meta.url);
      return [name, (JSON.parse(readFileSync(file, "utf8")) as { version: string }).version];
    }),
  );
}

/** The stateless relay, which calibrated scenarios always run. */
const calibration = TARGETS.find((t) => t.calibration);

/** The targets `scenario` runs on: the chosen ones it applies to, plus the calibration target if it wants one. */
function targetsOf(scenario: Scenario): Target[] {
  const chosen = targets.filter((t) => scenario.applies(t));
  if (!scenario.calibrated || !calibration || chosen.includes(calibration)) return chosen;
  return scenario.applies(calibration) ? [...chosen, calibration] : chosen;
}

async function main(): Promise<void> {
  const machine = machineInfo();
  log(describeMachine(machine));
  log(`scale ${options.scale}, ${options.seconds} s, ${reps} repetitions, ${workers} load workers`);
  for (const scenario of scenarios) {
    const added = targetsOf(scenario).filter((t) => !targets.includes(t));
    for (const target of added)
      log(`${scenario.name} also runs ${target.name}: the calibration (what the generator alone costs)`);
  }
  const results = await runRepetitions(scenarios, targetsOf, { reps, workers, options, log });
  for (const scenario of scenarios) {
    printTable(scenario, results, log);
    if (scenario.calibrated && calibration) printCalibration(scenario, results, calibration.name, log);
  }
  printNotes(results, log);
  mkdirSync(dirname(out), { recursive: true });
  const config = {
    ...options,
    reps,
    workers,
    scenarios: scenarios.map((s) => s.name),
    targets: targets.map((t) => t.name),
    admission: ADMISSION,
  };
  writeFileSync(
    out,
    `${JSON.stringify({ startedAt, machine, versions: versions(), config, results }, null, 2)}\n`,
  );
  log(`\nresults: ${out}`);
  // Lost tokens and closed sockets fail the run like an error: its numbers describe a broken run.
  if (results.some((r) => r.error !== undefined || (r.problems?.length ?? 0) > 0)) process.exitCode = 1;
}

runMain("bench", main);
