import { everyPeriod } from "./shared-ticker.js";

/** A quiet session repeats its heartbeat every this many heartbeat intervals (10 s by default). */
const QUIET_HEARTBEAT_EVERY = 10;

/**
 * A session's heartbeat on its channel: its latest seq, so relays notice a lost op.
 * A busy channel gets one every interval. A quiet one still gets one every
 * {@link QUIET_HEARTBEAT_EVERY} intervals: a relay that lost the last op and then
 * its heartbeat too would otherwise stay behind until the next op, however long.
 */
export class Heartbeat {
  private readonly stopTicking: () => void;
  private sentSeq: number;
  private quietBeats = 0;

  constructor(
    intervalMs: number,
    seq: number,
    private readonly lastSeq: () => number,
    private readonly send: (seq: number) => void,
    onError: (error: unknown) => void,
  ) {
    this.sentSeq = seq;
    // One timer for every session's heartbeat (see shared-ticker.ts).
    this.stopTicking = everyPeriod(intervalMs, () => this.beat(), onError);
  }

  stop(): void {
    this.stopTicking();
  }

  private beat(): void {
    this.quietBeats += 1;
    const seq = this.lastSeq();
    if (seq === this.sentSeq && this.quietBeats < QUIET_HEARTBEAT_EVERY) return;
    this.quietBeats = 0;
    this.sentSeq = seq;
    this.send(seq);
  }
}
