/** The IPC messages between the runner (generator.ts) and its load worker processes (worker.ts). */
import type { Counts } from "../support/histogram.js";
import type { Dialect } from "../targets/index.js";

export interface ClientSpec {
  /** A node's base URL (`ws://127.0.0.1:<port>`). */
  readonly url: string;
  readonly dialect: Dialect;
  readonly doc: string;
  /** Sends updates (tokens) during a run. */
  readonly sends: boolean;
  /** Its send→receive latencies go into the histogram and its receipts into `received`. */
  readonly records: boolean;
  /**
   * S2's observer: counts, times and acknowledges the tokens of the senders in its own
   * worker, which closes their window (RunPlan `closed`). Each document with
   * closed-loop senders needs one in every worker that holds such a sender.
   */
  readonly observer?: boolean;
  /** The worker (0-based) that holds this client; default: its index in the list mod the worker count. */
  readonly worker?: number;
}

/** A connected client as the runner knows it: `id` is the sender id in its tokens. */
export interface PlacedClient extends ClientSpec {
  readonly id: number;
}

/** When a run sends and measures. */
export interface RunTiming {
  /** Sending time, warm-up included. */
  readonly seconds: number;
  /** Sends of the first seconds are not measured. */
  readonly warmupSeconds: number;
  /** How long to wait after sending stops for updates still on their way. */
  readonly drainMs: number;
}

/**
 * `paced`: `rate` tokens/s per sender. `closed`: a closed loop, each sender keeping at
 * most `window` tokens in flight (sent, not yet seen by its worker's observer) and
 * sending nothing while its socket holds `bufferBytes` or more unsent.
 */
export type RunPlan = RunTiming &
  (
    | { readonly mode: "paced"; readonly rate: number }
    | { readonly mode: "closed"; readonly window: number; readonly bufferBytes: number }
  );

export type Command =
  | { readonly type: "connect"; readonly clients: readonly PlacedClient[]; readonly concurrency: number }
  | { readonly type: "run"; readonly plan: RunPlan }
  | { readonly type: "close" };

/** How many tokens one sender sent in a run (seqs 0 … count − 1). */
export interface SenderCount {
  readonly doc: string;
  readonly sender: number;
  readonly count: number;
}

/** What one worker measured in one run; the runner merges them. */
export interface RunReport {
  /** Send→receive latency histogram (ms) at recording clients and observers, of tokens sent in the measured window. */
  readonly latency: Counts;
  /** Tokens sent in the measured window. */
  readonly sent: number;
  /** Tokens received by recording clients in the measured window (each receiver counts). */
  readonly received: number;
  /** Tokens of this worker's senders seen by its observers in the measured window. */
  readonly observed: number;
  /** Tokens a client saw again, or after a later one of the same sender (dropped). */
  readonly repeats: number;
  /** Sends that failed because the client's socket had closed. */
  readonly sendErrors: number;
  /** Clients whose socket had closed by the end of the run, and the first reason. */
  readonly socketsClosed: number;
  readonly firstClose?: string;
  /** Every sender's token count over the whole run (warm-up and drain included). */
  readonly senders: readonly SenderCount[];
  /** This worker's CPU time (user + system) during the sending time, in µs. */
  readonly cpuMicros: number;
  readonly wallMs: number;
  /** p99 and max of this worker's event-loop delay during the sending time, in ms. */
  readonly loopDelayP99Ms: number;
  readonly loopDelayMaxMs: number;
}

export type Reply =
  | { readonly type: "connected"; readonly syncMs: number[]; readonly errors: string[] }
  | { readonly type: "ran"; readonly report: RunReport }
  | { readonly type: "closed" }
  | { readonly type: "failed"; readonly message: string };
