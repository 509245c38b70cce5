/** A quiet session repeats its heartbeat every this many heartbeat intervals (10 s by default). */
const QUIET_HEARTBEAT_EVERY = 10;

/**
 * A session's heartbeat on its channel: its latest seq, so relays notice a lost op.
 * A busy channel gets one every interval. A quiet one still gets one every
 * {@link QUIET_HEARTBEAT_EVERY} intervals: a relay that lost the last op and then
 * its heartbeat too would otherwise stay behind until the next op, however long.
 */
export class Heartbeat {
  private readonly timer: NodeJS.Timeout;
  private sentSeq: number;
  private quietBeats = 0;

  constructor(
    intervalMs: number,
    seq: number,
    private readonly lastSeq: () => number,
    private readonly send: (seq: number) => void,
  ) {
    this.sentSeq = seq;
    this.timer = setInterval(() => this.beat(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
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
