import type { SnapshotPolicy } from "./snapshot-policy.js";

/**
 * Asks a session for a snapshot when its policy says so: at once when enough ops
 * were appended, or by a timer when the oldest unsnapshotted op is old enough.
 */
export class SnapshotScheduler {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly docId: string,
    private readonly policy: SnapshotPolicy,
    /** Queues a snapshot on the session (it runs under the apply lock). */
    private readonly trigger: () => void,
  ) {}

  /** Reports `count` ops of `bytes` appended (also those found in the log at load). */
  recordOps(count: number, bytes: number): void {
    if (this.policy.recordOps(this.docId, count, Date.now(), bytes)) this.trigger();
    else this.arm();
  }

  /** Resets the counters after a snapshot of `bytes` was written (or loaded). */
  recordSnapshot(bytes: number): void {
    this.disarm();
    this.policy.recordSnapshot(this.docId, Date.now(), bytes);
  }

  /** Stops for good and forgets the document's counters. */
  stop(): void {
    this.stopped = true;
    this.disarm();
    this.policy.forget(this.docId);
  }

  private arm(): void {
    if (this.timer || this.stopped) return;
    const due = this.policy.msUntilDue(this.docId, Date.now());
    if (due === null) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.trigger();
    }, due);
    this.timer.unref();
  }

  private disarm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
