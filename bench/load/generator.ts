/**
 * The load generator as seen from the runner: `workers` forked processes
 * (bench/load/worker.ts, bundled), each holding every n-th client, so the generator
 * uses more than one core and is not the bottleneck it measures. Commands go to all
 * workers at once; their reports are merged here.
 */
import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { availableParallelism } from "node:os";
import { bundled } from "../support/bundle.js";
import { Histogram } from "../support/histogram.js";
import type { ClientSpec, Command, Reply, RunPlan } from "./messages.js";

export interface Connected {
  /** Connect→synced ms of each client that synced. */
  readonly syncMs: number[];
  readonly errors: string[];
}

export interface RunResult {
  readonly latency: Histogram;
  readonly sent: number;
  readonly received: number;
  readonly observed: number;
  readonly sendErrors: number;
  /** Generator CPU time / wall time / cores: the share of the machine the workers took. */
  readonly cpuShare: number;
  /** Seconds of the measured window (sending time minus warm-up). */
  readonly measuredSeconds: number;
}

/** Sends `command` to `worker` and resolves with its reply (one command at a time per worker). */
async function ask<T extends Reply["type"]>(
  worker: ChildProcess,
  command: Command,
  expected: T,
): Promise<Extract<Reply, { type: T }>> {
  const answer = Promise.race([
    once(worker, "message") as Promise<[Reply]>,
    once(worker, "exit").then(([code]) => {
      throw new Error(`load worker ${worker.pid} exited with ${String(code)}`);
    }),
  ]);
  worker.send(command);
  const [reply] = await answer;
  if (reply.type === "failed") throw new Error(`load worker ${worker.pid} failed: ${reply.message}`);
  if (reply.type !== expected)
    throw new Error(`load worker ${worker.pid} answered ${reply.type}, not ${expected}`);
  return reply as Extract<Reply, { type: T }>;
}

export class LoadGenerator {
  private constructor(private readonly workers: readonly ChildProcess[]) {}

  static async start(count: number): Promise<LoadGenerator> {
    const path = await bundled(new URL("./worker.ts", import.meta.url));
    const workers = Array.from({ length: count }, () =>
      fork(path, [], { stdio: ["ignore", "inherit", "inherit", "ipc"], execArgv: [] }),
    );
    await Promise.all(workers.map((worker) => once(worker, "spawn")));
    return new LoadGenerator(workers);
  }

  /** Connects `clients` (client i on worker i mod n), `concurrency` connects in flight per worker. */
  async connect(clients: readonly ClientSpec[], concurrency = 50): Promise<Connected> {
    const shares = this.workers.map((_, w) => clients.filter((_, i) => i % this.workers.length === w));
    const replies = await Promise.all(
      this.workers.map((worker, w) =>
        ask(worker, { type: "connect", clients: shares[w]!, concurrency }, "connected"),
      ),
    );
    return { syncMs: replies.flatMap((r) => r.syncMs), errors: replies.flatMap((r) => r.errors) };
  }

  async run(plan: RunPlan): Promise<RunResult> {
    const replies = await Promise.all(
      this.workers.map((worker) => ask(worker, { type: "run", plan }, "ran")),
    );
    const latency = new Histogram();
    let sent = 0;
    let received = 0;
    let observed = 0;
    let sendErrors = 0;
    let cpuMicros = 0;
    let wallMs = 0;
    for (const { report } of replies) {
      latency.merge(report.latency);
      sent += report.sent;
      received += report.received;
      observed += report.observed;
      sendErrors += report.sendErrors;
      cpuMicros += report.cpuMicros;
      wallMs = Math.max(wallMs, report.wallMs);
    }
    const cpuShare = cpuMicros / 1000 / wallMs / availableParallelism();
    const measuredSeconds = plan.seconds - plan.warmupSeconds;
    return { latency, sent, received, observed, sendErrors, cpuShare, measuredSeconds };
  }

  /** Closes every client and ends the workers. */
  async stop(): Promise<void> {
    await Promise.all(
      this.workers.map(async (worker) => {
        if (worker.exitCode !== null || worker.signalCode !== null) return;
        try {
          await ask(worker, { type: "close" }, "closed");
        } finally {
          const exited = once(worker, "exit");
          worker.disconnect();
          await exited;
        }
      }),
    );
  }
}
