import { install, type Clock } from "@sinonjs/fake-timers";
import { strict as assert } from "node:assert";
import { ErrorCodes, OpStreamError, isOpStreamError, type ErrorCode } from "../../src/errors.js";
import {
  BACKOFF,
  RETRYABLE_CODES,
  RETRY_LIMITS,
  backoffMs,
  isRetryable,
  withRetries,
} from "../../src/router/retry-policy.js";

const fail = (code: ErrorCode) => new OpStreamError(code, `failed with ${code}`);

describe("retry policy", () => {
  it("retries these codes, per kind of call", () => {
    assert.deepEqual(
      Object.fromEntries(Object.entries(RETRYABLE_CODES).map(([kind, codes]) => [kind, [...codes].sort()])),
      {
        join: [ErrorCodes.DOCUMENT_NOT_FOUND, ErrorCodes.NOT_OWNER].sort(),
        joinExisting: [ErrorCodes.NOT_OWNER],
        ownerCall: [
          ErrorCodes.NOT_OWNER,
          ErrorCodes.NO_HANDLER,
          ErrorCodes.REQUEST_TIMEOUT,
          ErrorCodes.NODE_GONE,
          ErrorCodes.FENCED,
          ErrorCodes.SESSION_CLOSED,
          ErrorCodes.BACKPLANE_UNAVAILABLE,
        ].sort(),
        serverDocument: [
          ErrorCodes.SESSION_CLOSED,
          ErrorCodes.NOT_OWNER,
          ErrorCodes.REQUEST_TIMEOUT,
          ErrorCodes.STORAGE_UNAVAILABLE,
          ErrorCodes.FENCED,
          ErrorCodes.NO_HANDLER,
          ErrorCodes.NODE_GONE,
          ErrorCodes.BACKPLANE_UNAVAILABLE,
        ].sort(),
      },
    );
    assert.ok(Object.isFrozen(RETRYABLE_CODES) && Object.values(RETRYABLE_CODES).every(Object.isFrozen));
  });

  it("has these default limits", () => {
    assert.deepEqual(RETRY_LIMITS, {
      join: { maxAttempts: 8, timeoutMs: Infinity },
      joinExisting: { maxAttempts: 8, timeoutMs: Infinity },
      ownerCall: { maxAttempts: 3, timeoutMs: Infinity },
      serverDocument: { maxAttempts: Infinity, timeoutMs: 30_000 },
    });
    assert.ok(Object.isFrozen(RETRY_LIMITS) && Object.values(RETRY_LIMITS).every(Object.isFrozen));
  });

  it("retries only coded errors", () => {
    assert.equal(isRetryable("ownerCall", fail(ErrorCodes.NO_HANDLER)), true);
    assert.equal(isRetryable("joinExisting", fail(ErrorCodes.DOCUMENT_NOT_FOUND)), false);
    assert.equal(isRetryable("serverDocument", new Error(ErrorCodes.NOT_OWNER)), false);
    assert.equal(isRetryable("serverDocument", undefined), false);
  });

  it("backs off 50 ms · 2^(n-1), capped at 1 s, with ±50 % jitter", () => {
    const low = () => 0;
    const high = () => 1 - Number.EPSILON;
    const middle = () => 0.5;
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 20].map((attempt) => backoffMs(attempt, middle)),
      [50, 100, 200, 400, 800, 1000, 1000, 1000],
    );
    for (let attempt = 1; attempt <= 30; attempt++) {
      const delay = Math.min(BACKOFF.capMs, BACKOFF.baseMs * 2 ** (attempt - 1));
      assert.equal(backoffMs(attempt, low), delay / 2, `attempt ${attempt}: lowest`);
      assert.ok(backoffMs(attempt, high) < (delay * 3) / 2, `attempt ${attempt}: highest`);
      const drawn = backoffMs(attempt);
      assert.ok(drawn >= delay / 2 && drawn < (delay * 3) / 2, `attempt ${attempt}: ${drawn} ms`);
    }
  });

  describe("withRetries (fake timers)", () => {
    let clock: Clock;
    beforeEach(() => {
      clock = install({ toFake: ["setTimeout", "clearTimeout", "performance"] });
    });
    afterEach(() => clock.uninstall());

    /** Runs `promise` to its end, advancing the fake clock by at most `ms`; resolves with what it settled to. */
    async function settle(promise: Promise<unknown>, ms = 60_000): Promise<unknown> {
      const outcome = promise.then(
        (value) => value,
        (error: unknown) => error,
      );
      await clock.tickAsync(ms);
      return outcome;
    }

    it("stops at maxAttempts and throws what onExhausted makes, backing off and calling onRetry in between", async () => {
      const attempts: number[] = [];
      const retried: Array<[ErrorCode, number, number]> = [];
      const exhausted = new Error("exhausted");
      const outcome = await settle(
        withRetries(
          (attempt) => {
            attempts.push(attempt);
            return Promise.reject(fail(ErrorCodes.NOT_OWNER));
          },
          {
            kind: "ownerCall",
            onRetry: (error, attempt) => void retried.push([error.code, attempt, performance.now()]),
            onExhausted: () => exhausted,
          },
        ),
      );
      assert.equal(outcome, exhausted);
      assert.deepEqual(attempts, [1, 2, 3]);
      assert.deepEqual(
        retried.map(([code, attempt]) => [code, attempt]),
        [
          [ErrorCodes.NOT_OWNER, 1],
          [ErrorCodes.NOT_OWNER, 2],
        ],
      );
      const [first = NaN, second = NaN] = retried.map(([, , at]) => at);
      assert.ok(first >= 25 && first < 75, `first retry after ${first} ms`);
      assert.ok(second - first >= 50 && second - first < 150, `second retry ${second - first} ms later`);
    });

    it("throws an error its kind does not retry at once", async () => {
      let calls = 0;
      const outcome = await settle(
        withRetries(
          () => {
            calls += 1;
            return Promise.reject(fail(ErrorCodes.NO_HANDLER));
          },
          { kind: "joinExisting" },
        ),
      );
      assert.ok(isOpStreamError(outcome, ErrorCodes.NO_HANDLER));
      assert.equal(calls, 1);
    });

    it("returns the first success, and honours maxAttempts over the default", async () => {
      let calls = 0;
      const value = await settle(
        withRetries(
          () => (++calls < 4 ? Promise.reject(fail(ErrorCodes.NOT_OWNER)) : Promise.resolve("ok")),
          { kind: "ownerCall", maxAttempts: 4 },
        ),
      );
      assert.equal(value, "ok");
      assert.equal(calls, 4);
    });

    it("ends with shouldStop's error instead of retrying", async () => {
      let stopped = false;
      let calls = 0;
      const stop = new Error("closed");
      const promise = withRetries(
        () => {
          calls += 1;
          return Promise.reject(fail(ErrorCodes.SESSION_CLOSED));
        },
        { kind: "serverDocument", shouldStop: () => (stopped ? stop : undefined) },
      );
      const outcome = promise.then(
        () => undefined,
        (error: unknown) => error,
      );
      await clock.tickAsync(2_000);
      stopped = true;
      await clock.tickAsync(2_000);
      assert.equal(await outcome, stop);
      assert.ok(calls > 1, "it retried until told to stop");
    });

    it("waits for what waitFor returns (a move under way) instead of the backoff, and backs off when it returns nothing", async () => {
      let release: () => void = () => undefined;
      let moving: Promise<void> | undefined = new Promise<void>((resolve) => (release = resolve));
      const attemptsAt: number[] = [];
      const outcome = withRetries(
        (attempt) => {
          attemptsAt.push(performance.now());
          return attempt < 3 ? Promise.reject(fail(ErrorCodes.NOT_OWNER)) : Promise.resolve("served");
        },
        { kind: "ownerCall", waitFor: () => moving },
      );
      await clock.tickAsync(500);
      assert.equal(attemptsAt.length, 1, "the second attempt waits for the move, however long it takes");
      moving = undefined;
      release();
      await clock.tickAsync(0);
      assert.equal(attemptsAt.length, 2, "and goes as soon as the move ended, with no backoff on top");
      assert.equal(attemptsAt[1], 500);
      assert.equal(await settle(outcome), "served");
      const backoff = attemptsAt[2]! - attemptsAt[1];
      assert.ok(backoff >= 50 && backoff < 150, `no move under way: the second backoff (${backoff} ms)`);
    });

    it("gives up once timeoutMs has passed, however many attempts are left", async () => {
      let calls = 0;
      let gaveUpAt = NaN;
      const outcome = await settle(
        withRetries(
          () => {
            calls += 1;
            return Promise.reject(fail(ErrorCodes.FENCED));
          },
          {
            kind: "serverDocument",
            timeoutMs: 5_000,
            onExhausted: (error) => {
              gaveUpAt = performance.now();
              return error;
            },
          },
        ),
      );
      assert.ok(isOpStreamError(outcome, ErrorCodes.FENCED));
      // Waits of 25–75 ms doubling to 0.5–1.5 s fit 7 to 13 attempts in 5 s.
      assert.ok(calls >= 7 && calls <= 13, `${calls} attempts in 5 s`);
      assert.ok(gaveUpAt >= 5_000 && gaveUpAt < 5_000 + 1_500, `gave up after ${gaveUpAt} ms`);
    });
  });
});
