import { ErrorCodes, isOpStreamError, type ErrorCode, type OpStreamError } from "../errors.js";

/**
 * The one retry policy of the paths that reach a document through its owner:
 * which error codes are retried for which kind of call, how long to wait between
 * attempts, and how many attempts (or how much time) a call gets.
 *
 * - `join`: the router joins a writer (`create: true`) to whoever owns the
 *   document (`DocumentRouter.join`).
 * - `joinExisting`: the same for a reader (`create: false`) or a management
 *   request (`DocumentRouter.manage`), which must not create the document.
 * - `ownerCall`: a relay's request to the owner (`RelayDocument`). A failure
 *   that says the owner is gone or changing starts the relay's move to the next
 *   owner; the next attempt waits for it and goes there.
 * - `serverDocument`: a server-side handle's open or transact
 *   (`opstream.documents`); it rejoins the document between attempts.
 */
export type RetryKind = "join" | "joinExisting" | "ownerCall" | "serverDocument";

function codes(...list: ErrorCode[]): readonly ErrorCode[] {
  return Object.freeze(list);
}

/**
 * The error codes after which each kind of call tries again; any other error ends it.
 *
 * NODE_GONE (the target left the backplane: a crash) and REQUEST_TIMEOUT (it did
 * not answer: hung, or overloaded) are retryable for calls to an owner: the relay
 * moves to the next owner (breaking a gone owner's lease; a hung one is replaced
 * once its lease expires) and the call goes there.
 *
 * FENCED and SESSION_CLOSED from an owner mean it lost the document while the
 * request waited (a late answer of an ex-owner that was paused or cut off: its
 * append was fenced, or its session closed): nothing of the request was stored,
 * and it goes to the next owner like the others.
 *
 * NO_HANDLER is retryable where a node answers for the owner (`ownerCall`, and
 * `serverDocument`, whose calls go through a relay). It means the remote could not
 * serve the request: it has no handler for that type (a node still starting, one
 * stopping — the router unregisters once its sessions have handed over —, or an older
 * node in a rolling upgrade), its handler threw an uncoded error (the cluster
 * backplane's "remote handler failed"), or it answered with a code this node does
 * not know (a newer node's). The first is a handover under way; the others cannot
 * be told apart from it without matching message text. Retrying is right for the
 * first and bounded for the rest: the relay moves (re-resolving the owner) and
 * retries at most `ownerCall.maxAttempts` times, then closes and its clients
 * rejoin. The router's joins never see NO_HANDLER: a relay that closed rejects
 * with NOT_OWNER.
 *
 * A writer's join also retries DOCUMENT_NOT_FOUND: a reader's open of the same
 * document was under way and failed, and the writer opens it itself. Readers and
 * management requests get it as their answer.
 */
export const RETRYABLE_CODES: Readonly<Record<RetryKind, readonly ErrorCode[]>> = Object.freeze({
  join: codes(ErrorCodes.NOT_OWNER, ErrorCodes.DOCUMENT_NOT_FOUND),
  joinExisting: codes(ErrorCodes.NOT_OWNER),
  ownerCall: codes(
    ErrorCodes.NOT_OWNER,
    ErrorCodes.NO_HANDLER,
    ErrorCodes.REQUEST_TIMEOUT,
    ErrorCodes.NODE_GONE,
    ErrorCodes.FENCED,
    ErrorCodes.SESSION_CLOSED,
    ErrorCodes.BACKPLANE_UNAVAILABLE,
  ),
  serverDocument: codes(
    ErrorCodes.SESSION_CLOSED,
    ErrorCodes.NOT_OWNER,
    ErrorCodes.REQUEST_TIMEOUT,
    ErrorCodes.STORAGE_UNAVAILABLE,
    ErrorCodes.FENCED,
    ErrorCodes.NO_HANDLER,
    ErrorCodes.NODE_GONE,
    ErrorCodes.BACKPLANE_UNAVAILABLE,
  ),
});

/** How long each kind of call keeps trying: attempts in all (the first included) and total time. */
export interface RetryLimit {
  readonly maxAttempts: number;
  readonly timeoutMs: number;
}

const JOIN_LIMIT: RetryLimit = Object.freeze({ maxAttempts: 8, timeoutMs: Infinity });

/**
 * Default limits. The router's joins give up after 8 attempts (its
 * `maxJoinAttempts` option); a relay's request after 3, so none waits longer than
 * 3 × the request timeout plus the backoff; a server-side handle after 30 s (its
 * `timeoutMs` option), however many attempts that takes.
 */
export const RETRY_LIMITS: Readonly<Record<RetryKind, RetryLimit>> = Object.freeze({
  join: JOIN_LIMIT,
  joinExisting: JOIN_LIMIT,
  ownerCall: Object.freeze({ maxAttempts: 3, timeoutMs: Infinity }),
  serverDocument: Object.freeze({ maxAttempts: Infinity, timeoutMs: 30_000 }),
});

/**
 * The wait before attempt n + 1: 50 ms · 2^(n-1), capped at 1 s, then ±50 %
 * jitter — 25–75 ms, 50–150 ms, … up to 0.5–1.5 s. The jitter keeps the relays
 * and handles that lost the same owner from retrying its successor in lockstep.
 */
export const BACKOFF = Object.freeze({ baseMs: 50, capMs: 1000, jitter: 0.5 });

/** Whether a call of `kind` tries again after `error`. */
export function isRetryable(kind: RetryKind, error: unknown): error is OpStreamError {
  return isOpStreamError(error) && RETRYABLE_CODES[kind].includes(error.code);
}

/** The backoff after failed attempt `attempt` (1-based), in ms; `random` returns [0, 1). */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  const delay = Math.min(BACKOFF.capMs, BACKOFF.baseMs * 2 ** (attempt - 1));
  return delay * (1 - BACKOFF.jitter + 2 * BACKOFF.jitter * random());
}

/** Options of {@link withRetries}. */
export interface RetryOptions {
  /** Which codes are retried, and the default limits. */
  readonly kind: RetryKind;
  /** Attempts in all, the first included. @default RETRY_LIMITS[kind].maxAttempts */
  readonly maxAttempts?: number;
  /** No retry starts once this long has passed since the first attempt. @default RETRY_LIMITS[kind].timeoutMs */
  readonly timeoutMs?: number;
  /**
   * An error to end with instead of retrying (the caller closed meanwhile); asked
   * after each retryable failure and again after its backoff. @default never stops
   */
  readonly shouldStop?: () => Error | undefined;
  /**
   * Something the next attempt must wait for anyway (a relay's move to the next
   * owner, under way): when it returns a promise, the next attempt waits for that
   * instead of the backoff. A move ends when the new owner is known, and a backoff
   * on top would only add 25–75 ms to every call that met the owner change.
   * @default none (always the backoff)
   */
  readonly waitFor?: () => Promise<unknown> | undefined;
  /** Runs after the backoff, before the next attempt (re-resolve the owner, count the retry); a throw ends the call. @default none */
  readonly onRetry?: (error: OpStreamError, attempt: number) => void | Promise<void>;
  /** The error to end with once no attempt or time is left. @default the last failure */
  readonly onExhausted?: (error: OpStreamError) => Error;
}

/**
 * Runs `call` (given its 1-based attempt number) until it succeeds, fails with an
 * error its kind does not retry, or runs out of attempts or time; waits
 * {@link backoffMs} between attempts.
 */
export async function withRetries<T>(
  call: (attempt: number) => Promise<T>,
  options: RetryOptions,
): Promise<T> {
  const limit = RETRY_LIMITS[options.kind];
  const maxAttempts = options.maxAttempts ?? limit.maxAttempts;
  const timeoutMs = options.timeoutMs ?? limit.timeoutMs;
  const started = performance.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await call(attempt);
    } catch (error) {
      if (!isRetryable(options.kind, error)) throw error;
      const stop = options.shouldStop?.();
      if (stop) throw stop;
      if (attempt >= maxAttempts || performance.now() - started >= timeoutMs) {
        throw options.onExhausted ? options.onExhausted(error) : error;
      }
      const pending = options.waitFor?.();
      if (pending) await pending.catch(() => undefined);
      else await new Promise((resolve) => setTimeout(resolve, backoffMs(attempt)));
      const stopped = options.shouldStop?.();
      if (stopped) throw stopped;
      await options.onRetry?.(error, attempt);
    }
  }
}
