import { ErrorCodes, isOpStreamError } from "../errors.js";
import { SessionHistory, historyAction, type HistoryHost } from "./history/session-history.js";
import type { StoredDocument } from "../storage/document-store.js";
import type { Origin } from "./origin.js";
import { codeOf } from "./session-errors.js";
import type { SessionDependencies } from "./session-services.js";
import type { DocumentState } from "./session-state.js";
import { SnapshotScheduler } from "./snapshot-scheduler.js";

/** What a session's checkpoints use of it: the history's needs, plus trimming and failing. */
export interface CheckpointHost extends HistoryHost {
  /** How far a snapshot up to `uptoSeq` may trim the log (consumers keep what they have not handled). */
  trimThrough(uptoSeq: number): number;
  /** Closes the session at once: a fenced snapshot means another node owns the document. */
  fail(reason: "step-down"): void;
}

/**
 * A session's durable checkpoints: its snapshots (by the snapshot policy, on a
 * `compact` request, and on a graceful close) and, with history on, its versions
 * (see {@link SessionHistory}). Every write runs under the session's apply lock,
 * fenced by its epoch.
 */
export class SessionCheckpoints {
  private readonly scheduler: SnapshotScheduler;
  private readonly history: SessionHistory | undefined;

  constructor(
    private readonly host: CheckpointHost,
    private readonly deps: SessionDependencies,
    /** The seq the latest snapshot holds. */
    private snapshotSeq: number,
  ) {
    this.scheduler = new SnapshotScheduler(host.docId, deps.snapshotPolicy, () => this.queueSnapshot());
    this.history = deps.history && new SessionHistory(host, { ...deps, options: deps.history });
  }

  /** What the session loaded: its snapshot, and the ops past it (the last at `lastSeq`). */
  recordLoaded(stored: StoredDocument, lastSeq: number): void {
    this.scheduler.recordSnapshot(stored.snapshot?.state.byteLength ?? 0);
    let bytes = 0;
    for (const op of stored.ops) bytes += op.update.byteLength;
    this.scheduler.recordOps(stored.ops.length, bytes);
    if (lastSeq > 0) this.history?.recordLoadedOps();
  }

  /** `count` ops of `bytes` were appended; `changes` names their producers (for the history's authors). */
  recordOps(count: number, bytes: number, changes: Iterable<{ readonly origin: Origin }> = []): void {
    this.scheduler.recordOps(count, bytes);
    this.history?.recordEdit(changes);
  }

  /** Writes a snapshot now (if anything changed since the last one), under the apply lock. */
  snapshot(): Promise<void> {
    return this.host.exclusive(() => this.writeSnapshot());
  }

  /** A graceful close's last writes (the caller holds the lock): the snapshot, then a version if edits lack one. */
  async finalWrites(): Promise<void> {
    await this.writeSnapshot();
    await this.history?.onClose();
  }

  /** Runs a `version` or `restore` management action (see {@link historyAction}). */
  historyAction(action: "version" | "restore", payload: Uint8Array): Promise<DocumentState> {
    return historyAction(this.host.docId, this.history, action, payload);
  }

  stop(): void {
    this.scheduler.stop();
    this.history?.stop();
  }

  private queueSnapshot(): void {
    this.snapshot().catch((error: unknown) => this.onSnapshotError(error));
  }

  private onSnapshotError(error: unknown): void {
    if (isOpStreamError(error, ErrorCodes.SESSION_CLOSED)) return;
    this.deps.metrics.storageErrors.inc({ operation: "saveSnapshot", code: codeOf(error) });
    this.deps.logger.error({ err: error, docId: this.host.docId }, "snapshot failed");
    if (isOpStreamError(error, ErrorCodes.FENCED)) {
      this.deps.metrics.fencedWrites.inc();
      this.host.fail("step-down");
    }
  }

  private async writeSnapshot(): Promise<void> {
    const { seq: uptoSeq, state } = this.host.current();
    if (uptoSeq === this.snapshotSeq) return;
    await this.deps.store.saveSnapshot(this.host.docId, this.host.epoch, state, uptoSeq, {
      trimThrough: this.host.trimThrough(uptoSeq),
    });
    this.snapshotSeq = uptoSeq;
    this.scheduler.recordSnapshot(state.byteLength);
    this.deps.metrics.snapshots.inc();
  }
}
