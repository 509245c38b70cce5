import type { Logger } from "../logging/logger.js";

/** How long after a logged refusal the others of its kind are only counted. */
export const REFUSAL_LOG_INTERVAL_MS = 10_000;

/** One kind of refusal (a message and a reason) within its quiet interval. */
interface Window {
  readonly message: string;
  readonly timer: NodeJS.Timeout;
  /** Refusals of this kind not logged since the last line. */
  suppressed: number;
  /** The latest of them: the example the summary line shows. */
  latest: Record<string, unknown>;
}

/**
 * Logs refused connections and documents at warn, at most one line per kind (a
 * message and a reason) per interval: a refusal is an operator's business (a cap
 * too low for a proxy, a broken token refresh, probing), but a client retrying
 * with backoff, or a flood, must not drown the log. The first refusal of a kind is
 * logged at once; the others within the interval are counted, and when it ends
 * one line gives the latest of them with `suppressed`, the number not logged
 * (then a new interval starts; a quiet one ends the kind's window). Every refusal
 * is also counted in a metric by the caller: the log is the example, the metric
 * the rate. At most one timer per kind, and the kinds are a fixed set.
 */
export class RefusalLog {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs = REFUSAL_LOG_INTERVAL_MS,
  ) {}

  /** Records one refusal: logged now, or counted towards its kind's next line. */
  refused(message: string, reason: string, fields: Record<string, unknown>): void {
    const entry = { ...fields, reason };
    const kind = `${message}\0${reason}`;
    const window = this.windows.get(kind);
    if (window) {
      window.suppressed += 1;
      window.latest = entry;
      return;
    }
    this.logger.warn(entry, message);
    this.open(kind, message);
  }

  /** Writes what is still suppressed and stops the timers (a later refusal starts a new window). */
  close(): void {
    for (const window of this.windows.values()) {
      clearTimeout(window.timer);
      this.flush(window);
    }
    this.windows.clear();
  }

  private open(kind: string, message: string): void {
    const timer = setTimeout(() => {
      const window = this.windows.get(kind);
      this.windows.delete(kind);
      // A quiet interval ends the window; a busy one writes its line and opens the next.
      if (window && this.flush(window)) this.open(kind, message);
    }, this.intervalMs);
    timer.unref();
    this.windows.set(kind, { message, timer, suppressed: 0, latest: {} });
  }

  /** Logs a window's suppressed refusals, if any; whether there were. */
  private flush(window: Window): boolean {
    if (window.suppressed === 0) return false;
    this.logger.warn(
      { ...window.latest, suppressed: window.suppressed, intervalMs: this.intervalMs },
      `${window.message} (${window.suppressed} not logged in the last ${this.intervalMs / 1000} s; the latest shown)`,
    );
    return true;
  }
}
