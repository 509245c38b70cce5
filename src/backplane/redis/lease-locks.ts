import type { Cluster, Redis } from "ioredis";
// redlock 4.2.0 (npm `latest`) with the typings in src/types/redlock.d.ts, on
// purpose. The typed successors do not keep the node-id lock value without
// subclassing a private method: redlock 5 exists only as betas (5.0.0-beta.2,
// typings built against ioredis 4; npm `latest` is still 4.2.0) and its fork
// @sesamecare-oss/redlock 1.4 (ioredis >= 5) both draw the value from a `private
// _random()` with no option for it (overriding it is a type error there, and
// building `Lock` objects by hand bypasses acquire). Revisit when a release takes
// the lock value as an option.
import type Redlock from "redlock";
import { loadRedlock } from "../../drivers.js";
import { ACQUIRE_SCRIPT, BREAK_SCRIPT, RECORD_MARK_SCRIPT } from "./lease-scripts.js";

/**
 * How far a document's log is known to have got: the highest epoch claimed, and the
 * last op seq its owner reported durable in that epoch.
 */
export interface ProgressMark {
  readonly epoch: number;
  readonly seq: number;
}

/** A held owner key (redlock's lock object: resource, value = node id, expiry). */
export type LeaseLock = Redlock.Lock;

/**
 * What an extend found: the extended lock; "gone" when the key no longer exists (it
 * expired, Redis restarted empty, or a node found this one gone broke it); "taken"
 * when another node's id is in it.
 */
export type ExtendOutcome = LeaseLock | "gone" | "taken";

/**
 * Ownership-lease commands on redlock (v4), with one Redis per cluster.
 *
 * - The lock value is this node's id, not redlock's random token, so `GET
 *   <prefix>owner:<docId>` names the owner (it is how non-owners find where to
 *   proxy). Redlock's compare-by-value extend and unlock then mean "only while
 *   this node holds it". Redlock 4 has no option for the value, so a subclass
 *   overrides its `_random()`; `spec/backplane/redis-backplane.spec.ts` checks the
 *   stored value, so a redlock upgrade that changes this fails loudly.
 * - One attempt per call (`retryCount: 0`): a document held elsewhere is
 *   proxied to at once, and renewals are retried by `RedisLease` on its own
 *   schedule.
 * - Redlock reports "held by another node" and "Redis did not answer" as the
 *   same `LockError` (the cause goes to a `clientError` event that names no
 *   lock). After a failure, one GET of the key tells them apart: an error means
 *   Redis is unreachable (transient), another node's id means the lease is gone.
 * - Redlock judges a lock's expiry by `Date.now()`; leases are judged by
 *   `RedisLease` on `performance.now()` with a deadline well inside the TTL, so
 *   redlock's own expiry check never decides anything first.
 */
export class LeaseLocks {
  private readonly redlock: Redlock;
  /** Redlock's "no quorum" error, which the methods below tell apart with a GET. */
  private readonly LockError: typeof Redlock.LockError;

  constructor(
    /** One Redis, or a Cluster: every command and script names one key, so it goes to that key's master. */
    private readonly redis: Redis | Cluster,
    readonly nodeId: string,
  ) {
    const RedlockClass = loadRedlock();
    this.LockError = RedlockClass.LockError;
    const value = nodeId;
    class NodeIdRedlock extends RedlockClass {
      protected override _random(): string {
        return value;
      }
    }
    this.redlock = new NodeIdRedlock([redis], {
      retryCount: 0,
      lockScript: () => ACQUIRE_SCRIPT,
    });
    // Causes are recovered with a GET (see above); the event needs no listener,
    // but one keeps a future redlock from treating it as unhandled.
    this.redlock.on("clientError", () => undefined);
  }

  /** The progress mark at `key` ({0, 0} when none). Rejects when Redis does not answer. */
  async mark(key: string): Promise<ProgressMark> {
    const [epoch, seq] = await this.redis.hmget(key, "epoch", "seq");
    return { epoch: Number(epoch ?? 0), seq: Number(seq ?? 0) };
  }

  /** Moves the progress mark at `key` to (epoch, seq) unless it names a higher epoch. */
  async recordMark(key: string, mark: ProgressMark): Promise<void> {
    await this.redis.eval(RECORD_MARK_SCRIPT, 1, key, String(mark.epoch), String(mark.seq));
  }

  /** Deletes `key` if it holds `holder`'s id; resolves whether it did. Rejects when Redis does not answer. */
  async breakHeld(key: string, holder: string): Promise<boolean> {
    return Number(await this.redis.eval(BREAK_SCRIPT, 1, key, holder)) === 1;
  }

  /** Who holds `key` (a node id), or null. Rejects when Redis does not answer. */
  holder(key: string): Promise<string | null> {
    return this.redis.get(key);
  }

  /**
   * Takes `key` for `ttlMs` if it is free or already this node's. Resolves the
   * lock, or null when another node holds it (or it changed hands meanwhile);
   * rejects when Redis does not answer.
   */
  async acquire(key: string, ttlMs: number): Promise<LeaseLock | null> {
    try {
      return await this.redlock.lock(key, ttlMs);
    } catch (error) {
      if (!(error instanceof this.LockError)) throw error;
      await this.holder(key); // rejects when Redis is unreachable
      return null;
    }
  }

  /**
   * Extends `lock` by `ttlMs` from now while the key still holds this node's id.
   * Resolves the extended lock, "gone" when the key does not exist, or "taken" when
   * it is another node's; rejects when the outcome is unknown (Redis did not
   * answer), so the caller retries.
   */
  async extend(lock: LeaseLock, ttlMs: number): Promise<ExtendOutcome> {
    try {
      return await this.redlock.extend(lock, ttlMs);
    } catch (error) {
      if (!(error instanceof this.LockError)) throw error;
      const holder = await this.holder(keyOf(lock));
      if (holder === this.nodeId) throw error; // still ours: the extend itself failed
      return holder === null ? "gone" : "taken";
    }
  }

  /**
   * Deletes the key if it still holds this node's id. Resolves as well when it
   * is already gone or another node's; rejects only when Redis does not answer.
   * The compare-and-delete is written to the connection in this tick (redlock's
   * unlock writes a few ticks later), so a message published right after the call
   * reaches Redis after it: a Closed message never finds the key still held.
   */
  async release(lock: LeaseLock): Promise<void> {
    await this.breakHeld(keyOf(lock), this.nodeId);
  }
}

function keyOf(lock: LeaseLock): string {
  const resource = lock.resource;
  return typeof resource === "string" ? resource : (resource[0] ?? "");
}
