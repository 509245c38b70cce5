/**
 * Scale-out (issue #19): does a Redis Cluster spread the backplane's load? S1 on 2
 * opstream nodes (the S1-2n scenario: S1's documents, clients and rate, client i of
 * each document on node i mod 2, so documents are relayed across nodes) over one
 * standalone Redis (`opstream-2n`) and over a Redis Cluster of 3 masters + 3
 * replicas (`opstream-2n-cluster`), the two interleaved over the repetitions, each on
 * fresh processes. Besides S1's numbers it reports every redis-server's CPU and
 * counters over the measured window (support/redis-stats.ts) and the ratio busiest
 * master / the single Redis; issue #19's evidence that load spreads is ≤ 0.5 for
 * both commands and CPU. Attempts during which the generator was the bottleneck or
 * other processes were busy are run again (scenarios/admission.ts). Reports numbers,
 * asserts none. Method: bench/README.md, "Scale-out".
 *
 *   npm run bench:scale-out -- [--reps 3] [--seconds 10] [--workers 2] [--out bench/results/x.json]
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { ADMISSION } from "./scenarios/admission.js";
import { S1_2N } from "./scenarios/fan-out.js";
import { runMain, runRepetitions } from "./scenarios/runner.js";
import type { Repetition } from "./scenarios/scenario.js";
import { median } from "./support/histogram.js";
import { describeMachine, loadAverage, machineInfo } from "./support/machine-info.js";
import { printGrid, printNotes, printTable } from "./support/table.js";
import { TARGETS, opstream2nRedisCluster, type Target } from "./targets/index.js";

const log = (line: string): void => void process.stdout.write(`${line}\n`);

const single = TARGETS.find((t) => t.name === "opstream-2n");
if (!single) throw new Error("bench/targets/index.ts has no opstream-2n target");
/** Issue #19's bound on busiest master / single Redis, for commands and for CPU. */
const SPREAD_TARGET = 0.5;

const { values } = parseArgs({
  options: {
    reps: { type: "string", default: "3" },
    seconds: { type: "string", default: "10" },
    workers: { type: "string", default: "2" },
    out: { type: "string" },
    replicas: { type: "string", default: "1" },
  },
});
const replicas = values.replicas === "0" ? 0 : 1;
const TOPOLOGIES: readonly { target: Target; title: string }[] = [
  { target: single, title: "1 Redis" },
  { target: opstream2nRedisCluster(replicas), title: `Redis Cluster 3+${3 * replicas}` },
];
const count = (flag: "reps" | "seconds" | "workers"): number => {
  const n = Math.round(Number(values[flag]));
  if (!(n > 0)) throw new Error(`--${flag} must be a positive whole number, not ${values[flag]}`);
  return n;
};
const reps = count("reps");
const workers = Math.max(2, count("workers"));
const options = { scale: 1, seconds: count("seconds") };
const startedAt = new Date().toISOString();
const out = resolve(values.out ?? `bench/results/scale-out-${startedAt.replace(/[:.]/g, "-")}.json`);

const fmt = (n: number, digits = 2): string =>
  !Number.isFinite(n) ? "–" : Math.abs(n) >= 100 ? n.toFixed(0) : n.toFixed(digits);

/** The repetitions of `target` that have numbers. */
const runsOf = (results: readonly Repetition[], target: Target): Repetition[] =>
  results.filter((r) => r.target === target.name && r.numbers);

/** The runs of the single Redis and of the cluster. */
const byTopology = (results: readonly Repetition[]): [Repetition[], Repetition[]] => [
  runsOf(results, TOPOLOGIES[0]!.target),
  runsOf(results, TOPOLOGIES[1]!.target),
];

/** The median over `runs` of `key` (NaN where none has it). */
const med = (runs: readonly Repetition[], key: string): number =>
  median(runs.map((r) => r.numbers?.[key] ?? NaN).filter(Number.isFinite));

/** The redis-server labels the runs of a topology reported (`redis`, `m1`, `m1r`, …), masters first. */
function labelsOf(runs: readonly Repetition[]): string[] {
  const labels = new Set<string>();
  for (const run of runs)
    for (const key of Object.keys(run.numbers ?? {})) {
      const match = /^redis\.([^.]+)\.master$/.exec(key);
      if (match) labels.add(match[1]!);
    }
  return [...labels].sort((a, b) => Number(a.endsWith("r")) - Number(b.endsWith("r")) || a.localeCompare(b));
}

/** The `n` commands `label` ran most often (median calls/s), e.g. `spublish 1010, evalsha 31`. */
function topCalls(runs: readonly Repetition[], label: string, n = 4): string {
  const prefix = `redis.${label}.calls.`;
  const names = new Set(
    runs.flatMap((r) => Object.keys(r.numbers ?? {}).filter((key) => key.startsWith(prefix))),
  );
  return [...names]
    .map((key) => ({ name: key.slice(prefix.length), rate: med(runs, key) }))
    .sort((a, b) => b.rate - a.rate)
    .slice(0, n)
    .map(({ name, rate }) => `${name} ${fmt(rate, 1)}`)
    .join(", ");
}

/** Per redis-server process: median CPU and rates over the repetitions. */
function printRedisTable(results: readonly Repetition[]): void {
  const head = [
    "topology",
    "process",
    "CPU (cores)",
    "commands/s",
    "publishes/s",
    "net KB/s",
    "bus msgs/s",
    "doc channels",
  ];
  const rows: string[][] = [];
  const calls: string[] = [];
  for (const { target, title } of TOPOLOGIES) {
    const runs = runsOf(results, target);
    for (const label of labelsOf(runs)) {
      const key = (what: string): number => med(runs, `redis.${label}.${what}`);
      const role = key("master") === 1 ? "master" : "replica";
      rows.push([
        title,
        `${label} (${role})`,
        fmt(key("cpu"), 3),
        fmt(key("commandsPerSec"), 1),
        fmt(key("publishesPerSec"), 1),
        fmt(key("netKBPerSec"), 1),
        fmt(key("busMessagesPerSec"), 1),
        role === "master" ? fmt(key("docChannels"), 0) : "",
      ]);
      calls.push(`  ${title} ${label}: ${topCalls(runs, label)}`);
    }
    rows.push([
      title,
      "all processes",
      fmt(med(runs, "redisCpu"), 3),
      fmt(med(runs, "redisCommandsPerSec"), 1),
      fmt(med(runs, "redisPublishesPerSec"), 1),
      "",
      "",
      "",
    ]);
  }
  log("\nredis-server processes over the measured window (medians over the repetitions):");
  printGrid(head, rows, log);
  log("most frequent commands, calls/s:");
  for (const line of calls) log(line);
}

/**
 * Per repetition, each cluster master's commands/s, CPU and the opstream node channels
 * it served (a node's requests and replies go through its own channel, on one shard),
 * and busiest master / the single Redis of the same repetition.
 */
function printRepetitions(results: readonly Repetition[]): void {
  const [one, many] = byTopology(results);
  log(
    "\nper repetition, cluster masters (node channels each served; busiest / the single Redis of that rep):",
  );
  for (const run of many) {
    const n = run.numbers!;
    const base = one.find((r) => r.rep === run.rep)?.numbers ?? {};
    const masters = labelsOf([run])
      .filter((label) => n[`redis.${label}.master`] === 1)
      .map(
        (label) =>
          `${label} ${fmt(n[`redis.${label}.commandsPerSec`] ?? NaN, 0)} cmd/s ` +
          `${fmt(n[`redis.${label}.cpu`] ?? NaN, 3)} cores (${n[`redis.${label}.nodeChannels`]} node ch)`,
      );
    const ratio = (key: string): string => fmt((n[key] ?? NaN) / (base[key] ?? NaN));
    log(
      `  rep ${run.rep}: ${masters.join(" | ")}; ` +
        `commands ×${ratio("busiestCommandsPerSec")}, CPU ×${ratio("busiestCpu")}`,
    );
  }
}

/** Busiest master / single Redis, and what one command costs the single Redis. */
function spread(results: readonly Repetition[]): Record<string, number> {
  const [one, many] = byTopology(results);
  const ratio = (key: string): number => med(many, key) / med(one, key);
  const figures = {
    commandsRatio: ratio("busiestCommandsPerSec"),
    publishesRatio: ratio("busiestPublishesPerSec"),
    cpuRatio: ratio("busiestCpu"),
    allProcessesCpuRatio: med(many, "redisCpu") / med(one, "redisCpu"),
    singleCpuMicrosPerCommand: (1e6 * med(one, "redisCpu")) / med(one, "redisCommandsPerSec"),
    singleCpuMicrosPerPublish: (1e6 * med(one, "redisCpu")) / med(one, "redisPublishesPerSec"),
  };
  const verdict = (n: number): string => (n <= SPREAD_TARGET ? "met" : "NOT met");
  log(`\nbusiest master / single Redis (issue #19: ≤ ${SPREAD_TARGET}):`);
  log(`  commands   ×${fmt(figures.commandsRatio)} (${verdict(figures.commandsRatio)})`);
  log(`  publishes  ×${fmt(figures.publishesRatio)}`);
  log(`  CPU        ×${fmt(figures.cpuRatio)} (${verdict(figures.cpuRatio)})`);
  log(`all 6 cluster processes' CPU / single Redis: ×${fmt(figures.allProcessesCpuRatio)}`);
  log(
    `single Redis: ${fmt(figures.singleCpuMicrosPerCommand, 1)} µs of CPU per command, ` +
      `${fmt(figures.singleCpuMicrosPerPublish, 1)} µs per publish (all its CPU divided by each)`,
  );
  return figures;
}

/** The commit the sources are at, flagged when they have uncommitted changes; "unknown" outside git. */
function commit(): string {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
    // What runs: the sources, not the docs or earlier results.
    const paths = ["src", "bench", ":!bench/results", ":!*.md"];
    const dirty = execFileSync("git", ["status", "--porcelain", "--", ...paths], { encoding: "utf8" });
    return dirty.trim() ? `${head} (with uncommitted changes)` : head;
  } catch (error) {
    process.stderr.write(`git failed (${String(error)}); the commit is recorded as unknown\n`);
    return "unknown";
  }
}

async function main(): Promise<void> {
  const machine = machineInfo();
  const load = { start: loadAverage(), end: "" };
  const redisVersion = execFileSync("redis-server", ["--version"], { encoding: "utf8" }).trim();
  log(describeMachine(machine));
  log(`${redisVersion}; load average ${load.start} at the start`);
  log(
    `${S1_2N.name} (${S1_2N.description}), ${options.seconds} s, ${reps} repetitions, ` +
      `${workers} load workers; ${TOPOLOGIES.map((t) => `${t.target.name} = ${t.title}`).join(", ")}`,
  );
  const results = await runRepetitions([S1_2N], () => TOPOLOGIES.map((t) => t.target), {
    reps,
    workers,
    options,
    log,
  });
  load.end = loadAverage();
  printTable(S1_2N, results, log);
  printRedisTable(results);
  printRepetitions(results);
  const figures = spread(results);
  printNotes(results, log);
  log(`load average ${load.end} at the end (${machine.cores} cores)`);
  mkdirSync(dirname(out), { recursive: true });
  const config = {
    ...options,
    reps,
    workers,
    scenario: S1_2N.name,
    targets: TOPOLOGIES.map((t) => t.target.name),
    admission: ADMISSION,
    spreadTarget: SPREAD_TARGET,
  };
  const record = { startedAt, commit: commit(), machine, loadAverage: load, redisVersion, config, figures };
  writeFileSync(out, `${JSON.stringify({ ...record, results }, null, 2)}\n`);
  log(`\nresults: ${out}`);
  if (results.some((r) => r.error !== undefined || (r.problems?.length ?? 0) > 0)) process.exitCode = 1;
}

runMain("bench:scale-out", main);
