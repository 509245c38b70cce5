/** The IPC messages between the runner (generator.ts) and its load worker processes (worker.ts). */
import type { Counts } from "../support/histogram.js";
import type { Dialect } from "../targets/index.js";

export interface ClientSpec {
  /** A node's base URL (`ws://127.0.0.1:<port>`). */
  readonly url: string;
  readonly dialect: Dialect;
  readonly doc: string;
  /** Sends updates during a run. */
  readonly sends: boolean;
  /** Its send→apply latencies go into the histogram and its receipts into `received`. */
  readonly records: boolean;
  /** Counted apart, in `observed`: the read-only client of S2 that sees what the server accepted. */
  readonly observer?: boolean;
}

export interface RunPlan {
  /** `paced`: `rate` updates/s per sending client; `flood`: the next update as soon as the socket's buffer is low. */
  readonly mode: "paced" | "flood";
  readonly rate: number;
  /** Sending time, warm-up included. */
  readonly seconds: number;
  /** Sends of the first seconds are not measured. */
  readonly warmupSeconds: number;
  /** How long to wait after sending stops for updates still on their way. */
  readonly drainMs: number;
}

export type Command =
  | { readonly type: "connect"; readonly clients: readonly ClientSpec[]; readonly concurrency: number }
  | { readonly type: "run"; readonly plan: RunPlan }
  | { readonly type: "close" };

/** What one worker measured in one run; the runner merges them. */
export interface RunReport {
  /** Send→apply latency histogram (ms) at recording clients, of updates sent in the measured window. */
  readonly latency: Counts;
  /** Updates sent in the measured window. */
  readonly sent: number;
  /** Updates applied by recording clients in the measured window (each receiver counts). */
  readonly received: number;
  /** Updates applied by observers in the measured window. */
  readonly observed: number;
  /** Sends that failed because the client's socket had closed. */
  readonly sendErrors: number;
  /** This worker's CPU time (user + system) during the sending time, in µs. */
  readonly cpuMicros: number;
  readonly wallMs: number;
}

export type Reply =
  | { readonly type: "connected"; readonly syncMs: number[]; readonly errors: string[] }
  | { readonly type: "ran"; readonly report: RunReport }
  | { readonly type: "closed" }
  | { readonly type: "failed"; readonly message: string };
