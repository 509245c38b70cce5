/**
 * The load generator as seen from the runner: `workers` forked processes
 * (bench/load/worker.ts, bundled), each holding its share of the clients, so the
 * generator uses more than one core and is not the bottleneck it measures. Commands
 * go to all workers at once; their reports are merged here.
 */
import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { availableParallelism } from "node:os";
import { bundled } from "../support/bundle.js";
import { Histogram } from "../support/histogram.js";
import type { ClientSpec, Command, PlacedClient, Reply, RunPlan, SenderCount } from "./messages.js";

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
  /** Tokens seen again by a client that had already seen them or a later one (dropped). */
  readonly repeats: number;
  readonly sendErrors: number;
  /** Clients whose socket had closed by the end of the run, and one reason. */
  readonly socketsClosed: number;
  readonly firstClose: string | undefined;
  /** Every sender's token count over the whole run, for the convergence check. */
  readonly senders: readonly SenderCount[];
  /** Generator CPU time / wall time / cores: the share of the machine the workers took. */
  readonly cpuShare: number;
  /** The highest of the workers' event-loop delay p99s, and the longest delay, in ms. */
  readonly loopDelayP99Ms: number;
  readonly loopDelayMaxMs: number;
  /** Seconds of the measured window (sending time minus warm-up). */
  readonly measuredSeconds: number;
}

/**
 * Node options for the load workers, space-separated, e.g.
 * `BENCH_WORKER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"` to profile them.
 */
const WORKER_NODE_ARGS = (process.env.BENCH_WORKER_NODE_ARGS ?? "").split(" ").filter(Boolean);

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
      fork(path, [], { stdio: ["ignore", "inherit", "inherit", "ipc"], execArgv: WORKER_NODE_ARGS }),
    );
    await Promise.all(workers.map((worker) => once(worker, "spawn")));
    return new LoadGenerator(workers);
  }

  /** How many worker processes there are (ClientSpec.worker ranges over 0 … count − 1). */
  get count(): number {
    return this.workers.length;
  }

  /**
   * Connects `clients`, `concurrency` connects in flight per worker. Client i is held
   * by worker `spec.worker` if given, else i mod the worker count, and sends as
   * sender id i.
   */
  async connect(clients: readonly ClientSpec[], concurrency = 50): Promise<Connected> {
    const shares = this.workers.map((): PlacedClient[] => []);
    clients.forEach((spec, id) => {
      const worker = spec.worker ?? id % this.workers.length;
      const share = shares[worker];
      if (!share) throw new Error(`client ${id} asks for worker ${worker}; there are ${this.count}`);
      share.push({ ...spec, id });
    });
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
    const reports = replies.map((r) => r.report);
    const latency = new Histogram();
    for (const report of reports) latency.merge(report.latency);
    const sum = (
      key: "sent" | "received" | "observed" | "repeats" | "sendErrors" | "socketsClosed",
    ): number => reports.reduce((total, report) => total + report[key], 0);
    const cpuMicros = reports.reduce((total, report) => total + report.cpuMicros, 0);
    const wallMs = Math.max(...reports.map((report) => report.wallMs));
    return {
      latency,
      sent: sum("sent"),
      received: sum("received"),
      observed: sum("observed"),
      repeats: sum("repeats"),
      sendErrors: sum("sendErrors"),
      socketsClosed: sum("socketsClosed"),
      firstClose: reports.find((report) => report.firstClose !== undefined)?.firstClose,
      senders: reports.flatMap((report) => report.senders),
      cpuShare: cpuMicros / 1000 / wallMs / availableParallelism(),
      loopDelayP99Ms: Math.max(...reports.map((report) => report.loopDelayP99Ms)),
      loopDelayMaxMs: Math.max(...reports.map((report) => report.loopDelayMaxMs)),
      measuredSeconds: plan.seconds - plan.warmupSeconds,
    };
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
