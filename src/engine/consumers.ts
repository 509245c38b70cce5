import { ErrorCodes, OpStreamError, isOpStreamError } from "../errors.js";
import type { Logger } from "../logging/logger.js";
import type { OpStreamMetrics } from "../metrics.js";
import type { DocumentStore, StoredOp } from "../storage/document-store.js";

/** One op of a document's log, as a consumer receives it. */
export interface ConsumerRecord {
  readonly docId: string;
  /** Position in the document's log (the offset committed after the handler succeeds). */
  readonly seq: number;
  /** The epoch of the owner that stored it. */
  readonly epoch: number;
  /** The Yjs update (v1 encoding). */
  readonly update: Uint8Array;
}

/** Handles one record; a throw (or rejection) means "retry this record". */
export type ConsumerHandler = (record: ConsumerRecord) => void | Promise<void>;

/** Options of `addConsumer(name, handler, options)`. */
export interface ConsumerOptions {
  /** First retry delay after a failure; doubles per attempt, with ±50 % jitter. @default 10 */
  initialBackoffMs?: number;
  /** Longest retry delay. @default 30000 */
  maxBackoffMs?: number;
  /** Log a warning (once per record) after this many failed attempts in a row. @default 5 */
  warnAfterAttempts?: number;
  /**
   * Give up on a record after this many failed attempts and hand it to
   * `deadLetter`. Needs `deadLetter`. @default undefined (retry forever: the
   * consumer blocks on the record, loudly, until it succeeds)
   */
  maxAttempts?: number;
  /**
   * Where a record goes after `maxAttempts`. The record is skipped only once this
   * resolves; while it fails it is retried with the same backoff. @default undefined
   */
  deadLetter?: (record: ConsumerRecord, cause: unknown) => void | Promise<void>;
}

/** A named consumer as registered with the builder. */
export interface ConsumerRegistration {
  readonly name: string;
  readonly handler: ConsumerHandler;
  readonly options: ConsumerOptions;
}

/** Defaults of {@link ConsumerOptions}. */
export const CONSUMER_DEFAULTS = Object.freeze({
  initialBackoffMs: 10,
  maxBackoffMs: 30_000,
  warnAfterAttempts: 5,
});

const NAME = /^[A-Za-z0-9_.:-]{1,100}$/;

/** Checks a registration; throws INVALID_OPTION with what to fix. */
export function consumerRegistration(
  name: string,
  handler: ConsumerHandler,
  options: ConsumerOptions = {},
): ConsumerRegistration {
  const invalid = (option: string, value: unknown, why: string): OpStreamError =>
    new OpStreamError(ErrorCodes.INVALID_OPTION, `addConsumer("${name}"): ${why}`, { option, value });
  if (!NAME.test(name)) throw invalid("name", name, "the name must be 1–100 of A–Z a–z 0–9 _ . : -");
  if (typeof handler !== "function") throw invalid("handler", handler, "the handler must be a function");
  for (const key of ["initialBackoffMs", "maxBackoffMs", "warnAfterAttempts", "maxAttempts"] as const) {
    const value = options[key];
    if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
      throw invalid(key, value, `${key} must be a positive number`);
    }
  }
  if (options.maxAttempts !== undefined && !options.deadLetter) {
    throw invalid(
      "deadLetter",
      undefined,
      "maxAttempts needs a deadLetter sink: a record is skipped only after it is dead-lettered",
    );
  }
  return Object.freeze({ name, handler, options: Object.freeze({ ...options }) });
}

/** What a runner needs from its session. */
export interface ConsumerContext {
  readonly docId: string;
  readonly epoch: number;
  readonly store: Pick<DocumentStore, "readOps" | "commitOffset">;
  readonly metrics: OpStreamMetrics;
  readonly logger: Logger;
}

/**
 * Runs one consumer over one document on its owner: reads ops after the
 * committed offset, hands them to the handler one at a time (head of line),
 * commits the offset after each success. At-least-once: a record whose commit did
 * not land (a crash, a failover) is handed over again by the next owner.
 */
export class ConsumerRunner {
  private committedSeq: number;
  /** Highest seq known to exist (the session's last seq). */
  private headSeq: number;
  private running: Promise<void> | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;
  /** This runner's lag as last added to the gauge. */
  private reportedLag = 0;
  /** The handler's last failure: what a dead-letter sink is told. */
  private lastCause: unknown;
  private readonly options: Required<Pick<ConsumerOptions, keyof typeof CONSUMER_DEFAULTS>> & ConsumerOptions;

  constructor(
    private readonly registration: ConsumerRegistration,
    private readonly context: ConsumerContext,
    committedSeq: number,
    headSeq: number,
  ) {
    this.committedSeq = committedSeq;
    this.headSeq = headSeq;
    this.options = { ...CONSUMER_DEFAULTS, ...registration.options };
  }

  get name(): string {
    return this.registration.name;
  }

  /** The offset this consumer has committed (ops up to it may be trimmed). */
  get committed(): number {
    return this.committedSeq;
  }

  /** New ops up to `seq` are durable: catch up. */
  notify(seq: number): void {
    this.headSeq = Math.max(this.headSeq, seq);
    this.reportLag();
    if (this.stopped || this.headSeq <= this.committedSeq) return;
    this.running ??= this.drain().finally(() => {
      this.running = undefined;
      if (!this.stopped && this.headSeq > this.committedSeq) this.notify(this.headSeq);
    });
  }

  /** Stops after the record in hand (its commit may still be fenced); resolves when idle. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.reportLag(0);
    this.wake?.();
    await this.running;
  }

  private async drain(): Promise<void> {
    while (!this.stopped && this.headSeq > this.committedSeq) {
      let ops: StoredOp[];
      try {
        ops = await this.context.store.readOps(this.context.docId, this.committedSeq);
      } catch (error) {
        this.context.logger.warn(
          { err: error, docId: this.context.docId, consumer: this.name },
          "consumer could not read the op log; retrying",
        );
        await this.pause(this.options.maxBackoffMs / 10);
        continue;
      }
      if (ops.length === 0) {
        // Ops this consumer never saw were trimmed before it was added: it starts
        // with the next op that is appended.
        this.headSeq = this.committedSeq;
        return;
      }
      for (const op of ops) {
        if (this.stopped) return;
        const record = Object.freeze({
          docId: this.context.docId,
          seq: op.seq,
          epoch: op.epoch,
          update: op.update,
        });
        if (!(await this.deliver(record))) return;
        if (!(await this.commit(op.seq))) return;
      }
    }
  }

  /** Retries `record` until the handler (or, past maxAttempts, the dead-letter sink) succeeds. */
  private async deliver(record: ConsumerRecord): Promise<boolean> {
    const { metrics } = this.context;
    for (let attempt = 1; !this.stopped; attempt++) {
      const deadLettering = this.options.maxAttempts !== undefined && attempt > this.options.maxAttempts;
      try {
        if (deadLettering) await this.options.deadLetter?.(record, this.lastCause);
        else await this.registration.handler(record);
        if (deadLettering) metrics.consumerDeadLettered.inc({ consumer: this.name });
        else metrics.consumerDelivered.inc({ consumer: this.name });
        return true;
      } catch (error) {
        if (!deadLettering) this.lastCause = error;
        metrics.consumerFailures.inc({
          consumer: this.name,
          stage: deadLettering ? "dead-letter" : "handler",
        });
        if (attempt === this.options.warnAfterAttempts) {
          this.context.logger.warn(
            { err: error, docId: record.docId, seq: record.seq, consumer: this.name, attempts: attempt },
            this.options.maxAttempts === undefined
              ? "consumer is blocked on a record that keeps failing (it retries until it succeeds)"
              : "consumer keeps failing on a record",
          );
        }
        await this.pause(this.backoff(attempt));
      }
    }
    return false;
  }

  private async commit(seq: number): Promise<boolean> {
    try {
      await this.context.store.commitOffset(this.context.docId, this.context.epoch, this.name, seq);
      this.committedSeq = seq;
      this.reportLag();
      return true;
    } catch (error) {
      // FENCED: another node owns the document now and resumes from the last
      // committed offset (this record is handed over again: at-least-once).
      if (isOpStreamError(error, ErrorCodes.FENCED)) {
        this.stopped = true;
        return false;
      }
      this.context.logger.warn(
        { err: error, docId: this.context.docId, consumer: this.name, seq },
        "consumer offset commit failed; the record will be delivered again",
      );
      await this.pause(this.options.maxBackoffMs / 10);
      return false;
    }
  }

  /** Keeps this runner's share of `opstream_consumer_lag` current (0 once stopped). */
  private reportLag(lag = this.stopped ? 0 : Math.max(0, this.headSeq - this.committedSeq)): void {
    const delta = lag - this.reportedLag;
    if (delta > 0) this.context.metrics.consumerLag.inc({ consumer: this.name }, delta);
    if (delta < 0) this.context.metrics.consumerLag.dec({ consumer: this.name }, -delta);
    this.reportedLag = lag;
  }

  private backoff(attempt: number): number {
    const base = Math.min(this.options.maxBackoffMs, this.options.initialBackoffMs * 2 ** (attempt - 1));
    return Math.min(this.options.maxBackoffMs, base * (0.5 + Math.random()));
  }

  /** Waits `ms`, or less when stopped. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}

/**
 * Every consumer of one document's session. Opened with the session (reads the
 * committed offsets), told about each durable batch, asked how far a snapshot may
 * trim, stopped with the session.
 */
export class ConsumerGroup {
  private constructor(private readonly runners: readonly ConsumerRunner[]) {}

  static async open(
    registrations: readonly ConsumerRegistration[],
    context: ConsumerContext & { readonly store: Pick<DocumentStore, "readOffsets"> },
    lastSeq: number,
  ): Promise<ConsumerGroup> {
    if (registrations.length === 0) return new ConsumerGroup([]);
    const offsets = await context.store.readOffsets(context.docId);
    const group = new ConsumerGroup(
      registrations.map(
        (registration) =>
          new ConsumerRunner(registration, context, offsets.get(registration.name) ?? 0, lastSeq),
      ),
    );
    group.notify(lastSeq);
    return group;
  }

  /** Ops up to `seq` are durable. */
  notify(seq: number): void {
    for (const runner of this.runners) runner.notify(seq);
  }

  /** How far a snapshot up to `uptoSeq` may trim: never past the slowest consumer. */
  trimThrough(uptoSeq: number): number {
    return this.runners.reduce((lowest, runner) => Math.min(lowest, runner.committed), uptoSeq);
  }

  /** Stops every runner (a record in hand finishes; its commit may be fenced). */
  stop(): Promise<void> {
    return Promise.all(this.runners.map((runner) => runner.stop())).then(() => undefined);
  }
}
