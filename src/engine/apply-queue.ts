import type { Origin } from "./origin.js";

/** An update waiting for the lock; settled with its seq (null: no-op) once durable. */
export interface ApplyTask {
  readonly kind: "apply";
  readonly update: Uint8Array;
  readonly origin: Origin;
  readonly resolve: (seq: number | null) => void;
  readonly reject: (error: unknown) => void;
}

/** A read of the document that must see only durable state. */
export interface ReadTask {
  readonly kind: "read";
  readonly run: () => void;
  readonly reject: (error: unknown) => void;
}

interface ExclusiveTask {
  readonly kind: "exclusive";
  readonly run: () => Promise<void>;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/** What a batch holds: consecutive applies and reads, in arrival order. */
export type BatchTask = ApplyTask | ReadTask;
type Task = BatchTask | ExclusiveTask;

/**
 * The apply lock of one document: a FIFO drained by a single loop, so batches
 * never overlap. Consecutive applies and reads that queue up while a batch is in
 * flight form the next batch (group commit); an exclusive task (snapshot, close)
 * runs alone, after everything queued before it.
 */
export class ApplyQueue {
  private readonly tasks: Task[] = [];
  private draining = false;
  private state: "open" | "closing" | "closed" = "open";

  constructor(
    private readonly runBatch: (batch: BatchTask[]) => Promise<void>,
    private readonly maxBatch: number,
    /** The error that refuses work once the queue is closing or closed. */
    private readonly closedError: () => Error,
  ) {}

  apply(update: Uint8Array, origin: Origin): Promise<number | null> {
    return new Promise((resolve, reject) => this.push({ kind: "apply", update, origin, resolve, reject }));
  }

  /** Runs `read` once every change queued before it is durable. */
  read<T>(read: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const run = (): void => {
        try {
          resolve(read());
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      };
      this.push({ kind: "read", run, reject });
    });
  }

  /** Runs `run` alone. `evenWhenClosing` lets close() queue its final task. */
  exclusive(run: () => Promise<void>, evenWhenClosing = false): Promise<void> {
    return new Promise((resolve, reject) =>
      this.push({ kind: "exclusive", run, resolve, reject }, evenWhenClosing),
    );
  }

  /** Refuses new tasks; those already queued still run. */
  beginClosing(): void {
    if (this.state === "open") this.state = "closing";
  }

  /** Stops the loop after the current step and rejects every queued task with `error`. */
  close(error: unknown): void {
    this.state = "closed";
    for (const task of this.tasks.splice(0)) task.reject(error);
  }

  private push(task: Task, evenWhenClosing = false): void {
    if (this.state === "closed" || (this.state === "closing" && !evenWhenClosing)) {
      task.reject(this.closedError());
      return;
    }
    this.tasks.push(task);
    if (!this.draining) void this.drain();
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.tasks.length > 0 && this.state !== "closed") {
        const head = this.tasks[0];
        if (head?.kind === "exclusive") {
          this.tasks.shift();
          await head.run().then(head.resolve, head.reject);
          continue;
        }
        const batch: BatchTask[] = [];
        for (
          let next = this.tasks[0];
          next && next.kind !== "exclusive" && batch.length < this.maxBatch;
          next = this.tasks[0]
        ) {
          batch.push(next);
          this.tasks.shift();
        }
        await this.runBatch(batch);
      }
    } finally {
      this.draining = false;
    }
  }
}
