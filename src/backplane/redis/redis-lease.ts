import { ErrorCodes, OpStreamError } from "../../errors.js";
import type { OpStreamMetrics } from "../../metrics.js";
import type { BackplaneLogger } from "../backplane-logger.js";
import type { Lease } from "../ownership.js";
import type { LeaseLock, LeaseLocks, ProgressMark } from "./lease-locks.js";

/**
 * A lease counts as suspended when no renewal has been confirmed by
 * `lastConfirmedSentAt + ttl * RENEW_DEADLINE_FRACTION` (monotonic clock).
 *
 * Redis expires the key `ttl` after it *executed* the last SET/PEXPIRE, which is
 * after we *sent* it, so measuring from the send time already errs early: from the
 * deadline on, another node may be able to take the key. The owner serves on
 * anyway; storage fences its writes with the epoch, so a successor's claim stops
 * it at its next append (DESIGN: "Storage decides; the lease is for liveness").
 */
export const RENEW_DEADLINE_FRACTION = 0.8;

/** Renewals happen every `ttl / RENEWALS_PER_TTL`: two chances before the deadline. */
export const RENEWALS_PER_TTL = 3;

/** After a failed renewal, the next try comes after `ttl / RENEW_RETRIES_PER_TTL`. */
const RENEW_RETRIES_PER_TTL = 10;

/** Why a lease ended (`details.reason` of its signal's NOT_OWNER error). */
export type LeaseEndReason = "taken" | "released" | "superseded";

/** What a lease shares with the ownership that made it. */
export interface LeaseContext {
  readonly locks: LeaseLocks;
  readonly ttlMs: number;
  readonly metrics:
    | Pick<
        OpStreamMetrics,
        "leasesLost" | "leaseRenewFailures" | "storageRollbacks" | "leasesSuspended" | "leasesRetaken"
      >
    | undefined;
  readonly logger: BackplaneLogger;
  /** The key of a document's owner lease. */
  ownerKey(docId: string): string;
  /** The key of a document's progress mark. */
  markKey(docId: string): string;
  /**
   * True while `lease` is this node's newest lease on its document. Only that one
   * may touch the key: the key's value is the node id, which an older lease of the
   * same node shares.
   */
  isCurrent(lease: RedisLease): boolean;
  /** Drops `lease` as its document's current lease (no-op if it is not). */
  forget(lease: RedisLease): void;
}

/**
 * A held Redis ownership lease. It renews itself every ttl/3. It aborts its signal
 * with OpStreamError(NOT_OWNER) only when Redis says another node has the
 * document: the key holds another node's id, or the progress mark names a newer
 * epoch; it then never renews again.
 *
 * A renewal not confirmed by its deadline on the monotonic clock (Redis
 * unreachable, hung or slow) *suspends* the lease instead: the session serves on,
 * because storage fences every write with the epoch — a node that takes over
 * claims a higher one, and the next append of this one is refused. Renewals go on
 * trying; the first one Redis answers ends the suspension. When it finds the key
 * gone (it expired meanwhile, or Redis restarted empty), the lease takes the key
 * again, keeping its epoch, unless the progress mark shows a newer claim.
 */
export class RedisLease implements Lease {
  readonly signal: AbortSignal;
  private readonly controller = new AbortController();
  /** The redlock lock on the owner key; replaced by each confirmed renewal. */
  private lock: LeaseLock;
  /** `performance.now()` when the last confirmed SET/PEXPIRE was sent. */
  private confirmedSentAt: number;
  private renewTimer: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> | undefined;
  private releasing: Promise<void> | undefined;
  private endReason: OpStreamError | undefined;
  /** `performance.now()` when the lease was suspended (its deadline passed unconfirmed); undefined while confirmed. */
  private suspendedAt: number | undefined;

  readonly storageRolledBack: boolean;
  /** The document's progress mark as this lease found it, before its own claim. */
  private readonly markBefore: ProgressMark;
  /** The last seq the session reported durable, and the last one written to the mark. */
  private durableSeq = 0;
  private recordedSeq = 0;

  /**
   * @param sentAt `performance.now()` just before the acquiring SET was sent.
   * @param claim the progress mark found before the claim, and whether the claim
   *   found storage behind its epoch.
   */
  constructor(
    readonly docId: string,
    readonly epoch: number,
    lock: LeaseLock,
    private readonly context: LeaseContext,
    sentAt: number,
    claim: { before: ProgressMark; rolledBack: boolean } = {
      before: { epoch: 0, seq: 0 },
      rolledBack: false,
    },
  ) {
    this.storageRolledBack = claim.rolledBack;
    this.markBefore = claim.before;
    this.signal = this.controller.signal;
    this.lock = lock;
    this.confirmedSentAt = sentAt;
    this.armDeadline();
    this.scheduleRenewal();
  }

  /** True while Redis has not confirmed the lease within its deadline; the session serves on meanwhile. */
  get suspended(): boolean {
    return this.suspendedAt !== undefined;
  }

  /** Extends the lease now (sharing a renewal already in flight); rejects with NOT_OWNER once lost. */
  renew(): Promise<void> {
    if (this.endReason) return Promise.reject(this.endReason);
    this.renewing ??= this.renewOnce().finally(() => (this.renewing = undefined));
    return this.renewing;
  }

  /** Notes that the document's log is durable up to `seq` (0 after a delete); sent with the next renewal or release. */
  progress(seq: number): void {
    this.durableSeq = seq;
  }

  /**
   * Compares the log the session loaded (up to `lastSeq`) with the progress mark:
   * a log shorter than the seq the previous owner reported in the epoch storage
   * still has means storage was restored from an older backup (reported here).
   * True when storage was found rolled back, by this check or by the claim.
   */
  checkLoaded(lastSeq: number): boolean {
    if (this.storageRolledBack) return true;
    const previous = this.markBefore;
    // Only when no claim is missing from the mark: the claim before ours is the marked one.
    if (this.epoch !== previous.epoch + 1 || lastSeq >= previous.seq) return false;
    reportRollback(this.context, this.docId, {
      storeEpoch: this.epoch,
      markEpoch: previous.epoch,
      epoch: this.epoch,
      storeSeq: lastSeq,
      markSeq: previous.seq,
    });
    return true;
  }

  /** Stops renewing, aborts the signal and deletes the key if it is still this lease's. Idempotent. */
  release(): Promise<void> {
    this.releasing ??= this.releaseOnce();
    return this.releasing;
  }

  /** Ends this lease because the same node acquired the document again. */
  supersede(): void {
    this.end(
      "superseded",
      `The lease of "${this.docId}" (epoch ${this.epoch}) was superseded by a newer one.`,
    );
  }

  private async releaseOnce(): Promise<void> {
    if (this.endReason) return;
    const current = this.context.isCurrent(this);
    this.end("released", `The lease of "${this.docId}" (epoch ${this.epoch}) was released.`);
    if (!current) return;
    // Both commands go out in this tick, in this order: on shutdown the connection
    // closes right after the sessions do, and a release queued behind an awaited
    // round trip would miss it and hold the successor off for a whole TTL. A mark
    // landing after a successor's claim names a lower epoch and is ignored.
    await Promise.all([this.recordProgress(), this.context.locks.release(this.lock)]);
  }

  /**
   * Writes the durable seq into the progress mark if it moved. Failures are only
   * logged: the mark serves detection, and the next renewal sends it again.
   */
  private async recordProgress(): Promise<void> {
    const seq = this.durableSeq;
    if (seq === this.recordedSeq) return;
    try {
      await this.context.locks.recordMark(this.context.markKey(this.docId), { epoch: this.epoch, seq });
      this.recordedSeq = seq;
    } catch (error) {
      this.context.logger.warn(
        { err: error, docId: this.docId, epoch: this.epoch, seq },
        "could not record the document's progress mark; retrying with the next renewal",
      );
    }
  }

  private async renewOnce(): Promise<void> {
    const { locks, ttlMs, metrics, logger } = this.context;
    let sentAt = performance.now();
    let lock: LeaseLock;
    try {
      const result = await locks.extend(this.lock, ttlMs);
      // Confirmed after a release or a supersession: the lease is over.
      if (this.endReason) throw this.endReason;
      if (result === "taken") {
        metrics?.leaseRenewFailures.inc();
        throw this.lose(`The lease of "${this.docId}" (epoch ${this.epoch}) is gone: another node holds it.`);
      }
      if (result === "gone") {
        sentAt = performance.now(); // the new key's TTL runs from the retake
        lock = await this.retake();
      } else lock = result;
    } catch (error) {
      if (this.endReason) throw this.endReason;
      metrics?.leaseRenewFailures.inc();
      // Once suspended (its warning said so), retries fail every TTL/10 until Redis answers.
      const level = this.suspended ? "debug" : "warn";
      logger[level](
        { err: error, docId: this.docId, epoch: this.epoch },
        "ownership lease renewal failed; retrying",
      );
      throw error;
    }
    this.lock = lock;
    this.confirmedSentAt = sentAt;
    this.resume();
    this.armDeadline();
    void this.recordProgress();
  }

  /**
   * Takes the key again after it vanished (expired while Redis was unreachable,
   * Redis restarted empty, or broken by a node that took this one for gone), keeping
   * the epoch. Another node's claim since would show in the progress mark as a
   * newer epoch: the lease is then lost, and the key freed again. (A claim the mark
   * no longer shows, because Redis restarted empty, is caught by storage: the next
   * append is fenced.)
   */
  private async retake(): Promise<LeaseLock> {
    const { locks, ttlMs, metrics, logger } = this.context;
    const lock = await locks.acquire(this.context.ownerKey(this.docId), ttlMs);
    if (this.endReason) {
      // Released meanwhile: free the key again (a newer lease of this node holds it otherwise).
      if (lock && this.endReason.details["reason"] === "released") await locks.release(lock);
      throw this.endReason;
    }
    if (!lock) {
      throw this.lose(`The lease of "${this.docId}" (epoch ${this.epoch}) is gone: another node holds it.`);
    }
    const markKey = this.context.markKey(this.docId);
    const mark = await locks.mark(markKey);
    if (mark.epoch > this.epoch) {
      const lost = this.lose(
        `The lease of "${this.docId}" (epoch ${this.epoch}) is gone: epoch ${mark.epoch} was claimed since.`,
      );
      locks
        .release(lock)
        .catch((error: unknown) =>
          logger.warn(
            { err: error, docId: this.docId },
            "could not free the key of a lost lease; it will expire",
          ),
        );
      throw lost;
    }
    await locks.recordMark(markKey, { epoch: this.epoch, seq: this.durableSeq });
    this.recordedSeq = this.durableSeq;
    metrics?.leasesRetaken.inc();
    logger.info({ docId: this.docId, epoch: this.epoch }, "ownership lease key was gone; took it again");
    return lock;
  }

  private scheduleRenewal(): void {
    const period = this.context.ttlMs / RENEWALS_PER_TTL;
    // Counted from the last confirmed send, not from now: the first renewal must
    // not slip by however long claiming the epoch took.
    const delay = Math.max(0, this.confirmedSentAt + period - performance.now());
    this.renewTimer = setTimeout(() => {
      this.renew().then(
        () => this.scheduleRenewal(),
        () => {
          if (this.endReason) return;
          this.renewTimer = setTimeout(
            () => this.scheduleRenewal(),
            this.context.ttlMs / RENEW_RETRIES_PER_TTL,
          ).unref();
        },
      );
    }, delay).unref();
  }

  private armDeadline(): void {
    clearTimeout(this.deadlineTimer);
    const deadline = this.confirmedSentAt + this.context.ttlMs * RENEW_DEADLINE_FRACTION;
    const check = (): void => {
      const left = deadline - performance.now();
      // A timer may fire a hair early; the monotonic clock has the last word.
      if (left > 0) {
        this.deadlineTimer = setTimeout(check, Math.ceil(left)).unref();
        return;
      }
      this.suspend();
    };
    this.deadlineTimer = setTimeout(check, Math.max(0, Math.ceil(deadline - performance.now()))).unref();
  }

  /** The deadline passed unconfirmed: serve on under storage fencing, and say so. */
  private suspend(): void {
    if (this.endReason || this.suspendedAt !== undefined) return;
    this.suspendedAt = performance.now();
    if (this.renewing) this.context.metrics?.leaseRenewFailures.inc();
    this.context.metrics?.leasesSuspended.inc();
    this.context.logger.warn(
      { docId: this.docId, epoch: this.epoch },
      `the ownership lease was not confirmed by Redis within ${Math.round(
        this.context.ttlMs * RENEW_DEADLINE_FRACTION,
      )} ms; serving on (storage fences every write) until Redis answers`,
    );
  }

  /** A renewal was confirmed: the suspension, if any, is over. */
  private resume(): void {
    if (this.suspendedAt === undefined) return;
    const suspendedMs = Math.round(performance.now() - this.suspendedAt);
    this.suspendedAt = undefined;
    this.context.metrics?.leasesSuspended.dec();
    this.context.logger.info(
      { docId: this.docId, epoch: this.epoch, suspendedMs },
      "ownership lease confirmed again",
    );
  }

  /** Ends the lease as lost (once): another node has the document. Returns why it ended. */
  private lose(message: string): OpStreamError {
    if (this.endReason) return this.endReason;
    const lost = this.end("taken", message);
    this.context.metrics?.leasesLost.inc();
    this.context.logger.warn(
      { docId: this.docId, epoch: this.epoch, reason: "taken" },
      "ownership lease lost",
    );
    return lost;
  }

  /** Ends the lease (once): stops its timers, forgets it, aborts its signal; returns why it ended. */
  private end(reason: LeaseEndReason, message: string): OpStreamError {
    if (this.endReason) return this.endReason;
    const ended = new OpStreamError(ErrorCodes.NOT_OWNER, message, {
      docId: this.docId,
      epoch: this.epoch,
      reason,
    });
    this.endReason = ended;
    if (this.suspendedAt !== undefined) {
      this.suspendedAt = undefined;
      this.context.metrics?.leasesSuspended.dec();
    }
    clearTimeout(this.renewTimer);
    clearTimeout(this.deadlineTimer);
    this.context.forget(this);
    this.controller.abort(ended);
    return ended;
  }
}

/** What a detected storage rollback is reported with. */
export interface RollbackFinding {
  /** The epoch storage gave (its own epoch + 1). */
  readonly storeEpoch: number;
  /** The highest epoch claimed before, as the progress mark remembers it. */
  readonly markEpoch: number;
  /** The epoch this node claimed in the end. */
  readonly epoch: number;
  /** The loaded log's last seq, when the log (not the epoch) was found short. */
  readonly storeSeq?: number;
  /** The seq the mark says the log had reached. */
  readonly markSeq?: number;
}

/** Logs (error) and counts storage found behind a document's progress mark. */
export function reportRollback(
  context: Pick<LeaseContext, "metrics" | "logger">,
  docId: string,
  finding: RollbackFinding,
): void {
  context.metrics?.storageRollbacks.inc();
  const behind =
    finding.markSeq === undefined
      ? `its epoch ${finding.storeEpoch - 1} is behind epoch ${finding.markEpoch}, claimed before`
      : `its log ends at seq ${String(finding.storeSeq)} of epoch ${finding.markEpoch}, which had reached seq ${finding.markSeq}`;
  context.logger.error(
    { docId, ...finding },
    `storage of document "${docId}" went back in time (restored from an older backup?): ${behind}. ` +
      `This node owns it with epoch ${finding.epoch}; edits the backup lacks come back only from clients ` +
      "that still hold them (OPERATIONS.md, Restoring from a backup)",
  );
}
