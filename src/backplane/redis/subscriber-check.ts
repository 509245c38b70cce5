/**
 * Self-check intervals without an answered check after which the subscriber is
 * reconnected (the checks sent in that window all went unanswered).
 */
export const SUBSCRIBER_CHECKS_MISSED = 3;

/** What the check needs from its backplane. */
export interface SubscriberCheckHooks {
  /** Whether the links are up (while they reconnect, their "ready" restarts the clock). */
  linksReady(): boolean;
  /** Sends one check through Redis to this node; resolves when it is answered. */
  send(timeoutMs: number): Promise<unknown>;
  /**
   * No check sent in the silent window was answered (`why` "silent"), or the links
   * have not become ready for as long (`why` "stuck": a connection opened into a
   * half-open link waits for its ready check forever): reconnect.
   */
  reconnect(silentMs: number, why: "silent" | "stuck"): void;
}

/**
 * Sends a request to this node through Redis every interval. An answer proves
 * the subscriber received when the check was sent; once no check sent in the
 * last {@link SUBSCRIBER_CHECKS_MISSED} intervals was answered while the links
 * are up, the subscriber is reconnected (its resubscription makes relays
 * resync). A half-open link is otherwise invisible: no error, no close.
 *
 * The decision is taken on the tick, against the send time of the newest
 * answered check, not by counting timeouts: counting would add the wait for
 * the first check after the failure, so a link that died just after a check
 * would be noticed only after 4 intervals.
 */
export class SubscriberCheck {
  /**
   * `performance.now()` when the newest answered check was sent (or when the
   * subscriber last became ready): the subscriber is known to have received then.
   */
  private provenAt = performance.now();
  /** `performance.now()` when the links were first seen not ready in a row of ticks; undefined while ready. */
  private notReadySince: number | undefined;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly intervalMs: number,
    private readonly hooks: SubscriberCheckHooks,
  ) {
    this.timer = setInterval(() => this.tick(), intervalMs);
    this.timer.unref();
  }

  /** The subscriber is known to receive from now on (it just became ready). */
  proven(): void {
    this.provenAt = performance.now();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private tick(): void {
    const now = performance.now();
    if (!this.hooks.linksReady()) {
      // Reconnecting already: its "ready" restarts the clock. A reconnect that never
      // gets ready (its ready check went into a half-open link, which ioredis waits
      // on without a timeout) is started again after as long as a silent link.
      this.provenAt = now;
      this.notReadySince ??= now;
      const stuckMs = now - this.notReadySince;
      if (stuckMs >= (SUBSCRIBER_CHECKS_MISSED - 0.5) * this.intervalMs) {
        this.notReadySince = now;
        this.hooks.reconnect(stuckMs, "stuck");
      }
      return;
    }
    this.notReadySince = undefined;
    // Half an interval of slack for timer jitter: the ticks are `intervalMs` apart
    // only on average, and the silent window must not need a fourth tick.
    if (now - this.provenAt >= (SUBSCRIBER_CHECKS_MISSED - 0.5) * this.intervalMs) {
      const silentMs = now - this.provenAt;
      this.provenAt = performance.now();
      this.hooks.reconnect(silentMs, "silent");
      return;
    }
    // One check per tick, even while older ones wait: a late answer still proves the
    // link worked when its check was sent, and a tick never depends on whether the
    // previous check's timeout fired just before or just after it.
    this.hooks.send(SUBSCRIBER_CHECKS_MISSED * this.intervalMs).then(
      () => (this.provenAt = Math.max(this.provenAt, now)),
      () => undefined, // unanswered: the ticks decide, by the time since the last proof
    );
  }
}
