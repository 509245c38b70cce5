import type { IOwnership } from "../backplane/ownership.js";

/** Calls unanswered this long make the relay watch the owner's lease. */
export const LEASE_WATCH_AFTER_MS = 1000;
/** Period of that watch: one GET of the owner key. */
export const LEASE_WATCH_MS = 250;

/** What the watch reads of its relay. */
export interface WatchedRelay {
  readonly docId: string;
  /** The node the relay's calls go to. */
  readonly owner: string;
  /** True while the relay is relaying nothing more. */
  readonly closed: boolean;
  /** True while a move is under way (it finds the owner itself). */
  readonly moving: boolean;
  /** The key no longer names `owner`: move on. */
  ownerLost(owner: string): void;
}

/**
 * A hung owner (SIGSTOP, a long pause) keeps its connections, so requests to it
 * only time out. While a relay's calls have waited {@link LEASE_WATCH_AFTER_MS}
 * without any answer, the watch reads the owner key every {@link LEASE_WATCH_MS}:
 * once the hung owner's lease has expired (or another node holds it) the relay
 * moves at once, so the lease TTL, not the request timeout, bounds the hang.
 */
export class LeaseWatch {
  /** Calls sent to the owner and not answered yet. */
  private waiting = 0;
  /** `performance.now()` of the owner's last answer, or of the call that started a wait. */
  private answeredAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private checking = false;

  constructor(
    private readonly relay: WatchedRelay,
    private readonly ownership: Pick<IOwnership, "ownerOf">,
  ) {}

  /** A call was sent to the owner; watching starts if it was not on. */
  sent(): void {
    if (this.waiting === 0) this.answeredAt = performance.now();
    this.waiting += 1;
    if (this.timer) return;
    this.timer = setInterval(() => this.check(), LEASE_WATCH_MS);
    this.timer.unref();
  }

  /** The owner answered a call. */
  answered(): void {
    this.answeredAt = performance.now();
  }

  /** A call ended (answered or failed). */
  settled(): void {
    this.waiting -= 1;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private check(): void {
    if (this.waiting === 0 || this.relay.closed) return this.stop();
    if (this.relay.moving || this.checking || performance.now() - this.answeredAt < LEASE_WATCH_AFTER_MS)
      return;
    const owner = this.relay.owner;
    this.checking = true;
    this.ownership
      .ownerOf(this.relay.docId)
      .then(
        (holder) => {
          if (holder !== owner) this.relay.ownerLost(owner);
        },
        () => undefined, // Redis is not answering: the requests' own timeouts decide
      )
      .finally(() => (this.checking = false));
  }
}
