/**
 * Side-by-side benchmarks of opstream against Hocuspocus, y-websocket's server and a
 * stateless relay (issue #7). Every (scenario, target) pair gets fresh server
 * processes and fresh load workers; targets are interleaved (A B C A B C …) over the
 * repetitions so that a slow spell of the machine hits all of them. Prints the
 * medians with each target's ratio to opstream and writes every repetition's numbers
 * as JSON. It reports numbers and asserts none. Method: BENCHMARKS.md.
 *
 *   npm run bench -- [--scenarios S1,S2] [--targets opstream,hocuspocus] [--reps 3]
 *                    [--scale 1] [--seconds 10] [--workers 2] [--out bench/results/x.json]
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, totalmem } from "node:os";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { LoadGenerator } from "./load/generator.js";
import { S4 } from "./scenarios/cold-load.js";
import { S3 } from "./scenarios/connections.js";
import { S1, S1_2N, S5 } from "./scenarios/fan-out.js";
import { S2 } from "./scenarios/saturation.js";
import type { Repetition, Scenario, ScenarioOptions } from "./scenarios/scenario.js";
import { printTable } from "./support/table.js";
import { TARGETS, type RunningTarget, type Target } from "./targets/index.js";

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

/** What is running now, so that a signal can stop it. */
const live = new Set<{ stop(): Promise<void> }>();

async function once(scenario: Scenario, target: Target, rep: number): Promise<Repetition> {
  let running: RunningTarget | undefined;
  let generator: LoadGenerator | undefined;
  try {
    running = await target.start({ persist: scenario.persist });
    live.add(running);
    generator = await LoadGenerator.start(workers);
    live.add(generator);
    const numbers = await scenario.run({ target: running, generator, options });
    return { scenario: scenario.name, target: target.name, rep, numbers };
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

async function main(): Promise<void> {
  const machine = {
    cpu: cpus()[0]?.model ?? "unknown",
    cores: availableParallelism(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  };
  log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}`);
  log(`scale ${options.scale}, ${options.seconds} s, ${reps} repetitions, ${workers} load workers`);
  const results: Repetition[] = [];
  for (let rep = 1; rep <= reps; rep++) {
    for (const scenario of scenarios) {
      for (const target of targets.filter((t) => scenario.applies(t))) {
        const result = await once(scenario, target, rep);
        results.push(result);
        const summary = result.numbers
          ? scenario.metrics.map((m) => `${m.key}=${result.numbers?.[m.key]?.toFixed(2)}`).join(" ")
          : "FAILED";
        log(`rep ${rep} ${scenario.name} ${target.name}: ${summary}`);
      }
    }
  }
  for (const scenario of scenarios) printTable(scenario, results, log);
  mkdirSync(dirname(out), { recursive: true });
  const config = {
    ...options,
    reps,
    workers,
    scenarios: scenarios.map((s) => s.name),
    targets: targets.map((t) => t.name),
  };
  writeFileSync(
    out,
    `${JSON.stringify({ startedAt, machine, versions: versions(), config, results }, null, 2)}\n`,
  );
  log(`\nresults: ${out}`);
  if (results.some((r) => r.error !== undefined)) process.exitCode = 1;
}

let interrupted = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    interrupted = true;
    process.stderr.write(`bench: ${signal}, stopping servers and workers\n`);
    void Promise.allSettled([...live].map((part) => part.stop())).finally(() => process.exit(130));
  });
}
main().catch((error: unknown) => {
  if (interrupted) return;
  process.stderr.write(
    `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exitCode = 1;
});
