// Measures how long `opstream serve` takes from process start to listening: it
// spawns `node dist/opstream-cli.js serve --port 0 --storage <temp file>` N times, times
// each from spawn to the "opstream listening" log line on its stdout, stops the
// child by its pid, and prints min / median / max. A bare `node` start is timed
// the same way, as the floor no server can go below.
//
//   npm run build && npx tsx scripts/startup-time.ts [--runs 10] [--warmup 1] [--fresh]
//       [--cli dist/opstream-cli.js [--cli other/dist/opstream-cli.js]] [-- <extra serve flags>]
//
// Several --cli builds (e.g. before and after a change) are run in turns, one
// start of each per round, so a machine whose load changes mid-measurement skews
// them alike. By default every start of a build reuses one SQLite file, as a
// restarted server does (the warm-up creates it); --fresh gives each start a new
// file (schema creation included). Starts never overlap.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    runs: { type: "string", default: "10" },
    warmup: { type: "string", default: "1" },
    fresh: { type: "boolean", default: false },
    cli: { type: "string", multiple: true, default: ["dist/opstream-cli.js"] },
  },
});
const runs = Number(values.runs);
const warmup = Number(values.warmup);
if (!Number.isInteger(runs) || runs < 1)
  throw new Error(`--runs wants a positive integer, got ${values.runs}`);
if (!Number.isInteger(warmup) || warmup < 0)
  throw new Error(`--warmup wants an integer >= 0, got ${values.warmup}`);

/** Longest wait for one start-up, or for a stopped child to exit. */
const TIMEOUT_MS = 30_000;

/** Spawns `args` and resolves with the ms from spawn to the first stdout line `isReady` accepts. */
async function timeToLine(args: string[], isReady: (line: string) => boolean): Promise<number> {
  const started = performance.now();
  const child = spawn(process.execPath, args, {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, OPSTREAM_LOG_LEVEL: "info" },
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<number>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no ready line within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
      child.once("error", reject);
      child.once("exit", (code, signal) =>
        reject(new Error(`exited early (code ${code}, signal ${signal})`)),
      );
      createInterface({ input: child.stdout }).on("line", (line) => {
        if (isReady(line)) resolve(performance.now() - started);
      });
    });
  } finally {
    clearTimeout(timer);
    await stop(child);
  }
}

/** SIGTERM by pid (the server drains and exits), SIGKILL if it is still there after the timeout. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = once(child, "exit");
  process.kill(child.pid, "SIGTERM");
  const timer = setTimeout(() => child.pid !== undefined && process.kill(child.pid, "SIGKILL"), TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

function isListening(line: string): boolean {
  if (!line.startsWith("{")) return false;
  return (JSON.parse(line) as { msg?: unknown }).msg === "opstream listening";
}

function summary(label: string, samples: number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  const ms = (value: number) => `${value.toFixed(0)} ms`;
  return `${label}: min ${ms(sorted[0]!)}  median ${ms(median)}  max ${ms(sorted.at(-1)!)}  (n=${sorted.length})`;
}

interface Subject {
  readonly label: string;
  /** Starts one process and resolves with the ms it took to be ready. */
  readonly start: (run: number) => Promise<number>;
  readonly samples: number[];
}

/** Runs `warmup + runs` rounds, each starting every subject once, in turns. */
async function measure(subjects: Subject[]): Promise<void> {
  for (let run = 0; run < warmup + runs; run++) {
    for (const subject of subjects) {
      const elapsed = await subject.start(run);
      if (run >= warmup) subject.samples.push(elapsed);
    }
  }
  for (const subject of subjects) process.stdout.write(`${summary(subject.label, subject.samples)}\n`);
}

const dir = mkdtempSync(join(tmpdir(), "opstream-startup-"));
try {
  const subjects: Subject[] = [
    {
      label: "node -e (floor)",
      start: () =>
        timeToLine(
          ["-e", "process.stdout.write('ready\\n'); setInterval(() => {}, 1000)"],
          (line) => line === "ready",
        ),
      samples: [],
    },
    ...values.cli.map((cli, i) => ({
      label: `${cli}${values.fresh ? " (fresh file)" : ""}`,
      start: (run: number) =>
        timeToLine(
          [
            cli,
            "serve",
            "--port",
            "0",
            "--storage",
            join(dir, values.fresh ? `startup-${i}-${run}.sqlite` : `startup-${i}.sqlite`),
            ...positionals,
          ],
          isListening,
        ),
      samples: [],
    })),
  ];
  process.stdout.write(`load average before: ${loadAverage()}\n`);
  await measure(subjects);
  process.stdout.write(`load average after: ${loadAverage()}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

function loadAverage(): string {
  return loadavg()
    .map((load) => load.toFixed(2))
    .join(" ");
}
