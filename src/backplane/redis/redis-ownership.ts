import type { Cluster, Redis } from "ioredis";
import { ErrorCodes, OpStreamError } from "../../errors.js";
import { createDefaultLogger } from "../../logging/logger.js";
import type { OpStreamMetrics } from "../../metrics.js";
import type { DocumentStore } from "../../storage/document-store.js";
import type { BackplaneLogger } from "../backplane-logger.js";
import type { AcquireOptions, IOwnership, Lease } from "../ownership.js";
import { redisKeyNames, type RedisKeyNames } from "./key-names.js";
import { LeaseLocks, type ProgressMark } from "./lease-locks.js";
import { REDIS_BACKPLANE_DEFAULTS } from "./options.js";
import { RedisLease, reportRollback, type LeaseContext } from "./redis-lease.js";

/** Options of {@link RedisOwnership}. */
export interface RedisOwnershipOptions {
  /** The ioredis client (one Redis or a Cluster) redlock runs lease commands on; the caller owns it. */
  redis: Redis | Cluster;
  /** This node's id: the value of the owner keys it holds. */
  nodeId: string;
  /** Where each new owner claims the document's next epoch. */
  store: Pick<DocumentStore, "claimEpoch">;
  /**
   * Owner keys are `<keyPrefix>owner:<docId>`; each document's epoch high-water
   * mark is `<keyPrefix>epoch:<docId>`. @default "opstream:"
   */
  keyPrefix?: string;
  /**
   * The key names to use instead (RedisBackplane passes its topology's: hash-tagged
   * on a Redis Cluster, see key-names.ts). @default the standalone names under `keyPrefix`
   */
  names?: Pick<RedisKeyNames, "ownerKey" | "markKey">;
  /** How long a lease lives without renewal; renewed every third of it. @default 5000 */
  leaseTtlMs?: number;
  /**
   * Counts leasesAcquired, leasesLost, leaseRenewFailures, storageRollbacks,
   * leasesBroken, leasesSuspended and leasesRetaken.
   * @default none (not counted)
   */
  metrics?: Pick<
    OpStreamMetrics,
    | "leasesAcquired"
    | "leasesLost"
    | "leaseRenewFailures"
    | "storageRollbacks"
    | "leasesBroken"
    | "leasesSuspended"
    | "leasesRetaken"
  >;
  /** Where lost leases and failed renewals are reported. @default the default pino logger */
  logger?: BackplaneLogger;
}

/**
 * Document ownership through Redis leases taken with redlock: key
 * `<prefix>owner:<docId>`, value the owner's node id, TTL `leaseTtlMs` (see
 * `LeaseLocks`). Who *should* own a document comes from Redis; safety comes from
 * the storage epoch each new lease claims.
 *
 * Redis also keeps each document's progress mark (`<prefix>epoch:<docId>`, no
 * TTL): the highest epoch ever claimed, and the last seq its owner reported
 * durable (sent with lease renewals and on release). Storage behind the mark was
 * restored from an older backup: a claim at or below the marked epoch is caught
 * here (and claimed again above it, so an ex-owner still holding a pre-restore
 * epoch stays fenced); a log shorter than the marked seq in the same epoch is
 * caught when the session has loaded it (`Lease.checkLoaded`). Either way the node
 * logs an error naming the document and counts `opstream_storage_rollbacks_total`,
 * and the session does not seed the document: its clients hold what the backup
 * lacks and re-upload it.
 */
export class RedisOwnership implements IOwnership {
  readonly nodeId: string;
  private readonly locks: LeaseLocks;
  private readonly store: Pick<DocumentStore, "claimEpoch">;
  private readonly names: Pick<RedisKeyNames, "ownerKey" | "markKey">;
  private readonly ttlMs: number;
  private readonly metrics: RedisOwnershipOptions["metrics"];
  private readonly logger: BackplaneLogger;
  /** This node's live lease per document; only it may renew or delete the key. */
  private readonly current = new Map<string, RedisLease>();
  /** The tail of each document's acquire chain: one acquire per document at a time. */
  private readonly acquiring = new Map<string, Promise<unknown>>();
  private readonly context: LeaseContext;

  constructor(options: RedisOwnershipOptions) {
    this.nodeId = options.nodeId;
    this.locks = new LeaseLocks(options.redis, options.nodeId);
    this.store = options.store;
    this.names =
      options.names ?? redisKeyNames(options.keyPrefix ?? REDIS_BACKPLANE_DEFAULTS.keyPrefix, "standalone");
    this.ttlMs = options.leaseTtlMs ?? REDIS_BACKPLANE_DEFAULTS.ownershipLeaseTtlMs;
    if (!Number.isFinite(this.ttlMs) || this.ttlMs <= 0) {
      throw new OpStreamError(
        ErrorCodes.INVALID_OPTION,
        `RedisOwnershipOptions.leaseTtlMs must be a positive number of milliseconds, got ${String(this.ttlMs)}.`,
        { option: "leaseTtlMs", value: this.ttlMs },
      );
    }
    this.metrics = options.metrics;
    this.logger = options.logger ?? createDefaultLogger();
    this.context = {
      locks: this.locks,
      ttlMs: this.ttlMs,
      metrics: this.metrics,
      logger: this.logger,
      ownerKey: (docId) => this.key(docId),
      markKey: (docId) => this.markKey(docId),
      isCurrent: (lease) => this.current.get(lease.docId) === lease,
      forget: (lease) => {
        if (this.current.get(lease.docId) === lease) this.current.delete(lease.docId);
      },
    };
  }

  /**
   * Takes the lease of `docId` and claims the next epoch, or resolves null at once
   * when another node holds it (no retry loop: the caller proxies to that node).
   * If this node already holds it, the old lease is superseded (its signal aborts)
   * and a new one with a new epoch is returned.
   */
  acquire(docId: string, options: AcquireOptions = {}): Promise<Lease | null> {
    const mustExist = options.mustExist ?? false;
    const previous = this.acquiring.get(docId) ?? Promise.resolve();
    const attempt = previous.then(
      () => this.acquireNow(docId, mustExist),
      () => this.acquireNow(docId, mustExist),
    );
    this.acquiring.set(docId, attempt);
    const forget = (): void => {
      if (this.acquiring.get(docId) === attempt) this.acquiring.delete(docId);
    };
    void attempt.then(forget, forget);
    return attempt;
  }

  async ownerOf(docId: string): Promise<string | null> {
    return this.locks.holder(this.key(docId));
  }

  /** Compare-and-delete of the owner key on `holder`'s id (never this node's own live lease). */
  async breakLease(docId: string, holder: string): Promise<boolean> {
    if (holder === this.nodeId && this.current.has(docId)) return false;
    const broken = await this.locks.breakHeld(this.key(docId), holder);
    if (broken) {
      this.metrics?.leasesBroken.inc();
      this.logger.warn({ docId, holder }, "broke the lease of a node that left the backplane");
    }
    return broken;
  }

  private async acquireNow(docId: string, mustExist: boolean): Promise<Lease | null> {
    const key = this.key(docId);
    // Before the SET, so the old lease can send nothing that lands after it.
    this.current.get(docId)?.supersede();
    const sentAt = performance.now();
    const lock = await this.locks.acquire(key, this.ttlMs);
    if (!lock) return null;
    let claim: { epoch: number; before: ProgressMark; rolledBack: boolean };
    try {
      claim = await this.claimEpoch(docId, mustExist);
    } catch (error) {
      // Also a reader's claim of a missing document: the key goes at once, so a
      // writer elsewhere need not wait for it to expire.
      await this.locks
        .release(lock)
        .catch((releaseError: unknown) =>
          this.logger.warn(
            { err: releaseError, docId },
            "could not free the key after claimEpoch failed; it will expire",
          ),
        );
      throw error;
    }
    const lease = new RedisLease(docId, claim.epoch, lock, this.context, sentAt, {
      before: claim.before,
      rolledBack: claim.rolledBack,
    });
    this.current.set(docId, lease);
    this.metrics?.leasesAcquired.inc();
    return lease;
  }

  /**
   * Claims the document's next storage epoch, above the epoch in its progress mark.
   * The mark is read after the owner key is ours, so no other claim can come
   * between; it is moved after the claim (a crash in between leaves it one claim
   * behind, which never looks like a rollback).
   */
  private async claimEpoch(
    docId: string,
    mustExist: boolean,
  ): Promise<{ epoch: number; before: ProgressMark; rolledBack: boolean }> {
    const markKey = this.markKey(docId);
    const before = await this.locks.mark(markKey);
    // A missing document rejects here, before the mark is written.
    let epoch = await this.store.claimEpoch(docId, { mustExist });
    const rolledBack = epoch <= before.epoch;
    if (rolledBack) {
      const storeEpoch = epoch;
      epoch = await this.store.claimEpoch(docId, { atLeast: before.epoch + 1, mustExist });
      reportRollback(this.context, docId, { storeEpoch, markEpoch: before.epoch, epoch });
    }
    await this.locks.recordMark(markKey, { epoch, seq: 0 });
    return { epoch, before, rolledBack };
  }

  private markKey(docId: string): string {
    return this.names.markKey(docId);
  }

  private key(docId: string): string {
    return this.names.ownerKey(docId);
  }
}
