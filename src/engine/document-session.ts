import * as Y from "yjs";
import { ErrorCodes, OpStreamError, isOpStreamError } from "../errors.js";
import { codeOf, invalidUpdate } from "./session-errors.js";
import { ApplyQueue, type ApplyTask, type BatchTask } from "./apply-queue.js";
import {
  ChangeRecorder,
  applyBatch,
  mergeCaptured,
  settleBatch,
  type BatchContext,
  type Captured,
} from "./batch.js";
import { ConsumerGroup } from "./consumers.js";
import { DEFAULT_MAX_PENDING_BYTES, PendingBudget, pendingBytes } from "./pending-budget.js";
import { containsUpdate } from "./update-check.js";
import { FanOut } from "./fan-out.js";
import { Heartbeat } from "./heartbeat.js";
import { SERVER_ORIGIN, type Origin } from "./origin.js";
import { stateOf } from "./history/session-history.js";
import { SessionCheckpoints, type CheckpointHost } from "./session-checkpoints.js";
import { runSeeder } from "./session-seed.js";
import type { DisconnectReason, SessionPeer } from "./peer.js";
import type { PreparedDocument } from "./prepared-document.js";
import { SessionPresence } from "./session-presence.js";
import type { SessionDependencies } from "./session-services.js";
import {
  restoreDocument,
  type DocumentState,
  type JoinInfo,
  type ManagementAction,
} from "./session-state.js";
import type { Seeder } from "./validation.js";

const EMPTY = new Uint8Array(0);

/**
 * The owner's in-memory document. Every change goes through one queue (the apply
 * lock): validate → `Y.applyUpdate` → skip true no-ops → durable, epoch-fenced
 * append of the whole batch → sequence numbers → fan-out → acknowledge.
 *
 * Durability rule: nothing leaves the session before it is durable. Reads that
 * expose state to a client (a sync reply) are queued behind the batch in flight,
 * and if an append fails the session closes and its in-memory state is dropped:
 * the clients keep their edits and resend them to the next session.
 */
export class DocumentSession {
  readonly docId: string;
  readonly epoch: number;
  private readonly doc: Y.Doc;
  private readonly deps: SessionDependencies;
  private readonly peers: FanOut;
  private readonly checkpoints: SessionCheckpoints;
  private readonly presence: SessionPresence;
  private readonly queue: ApplyQueue;
  private readonly batchContext: BatchContext;
  private consumers: ConsumerGroup | undefined;
  private closing = false;
  private lastSeqValue: number;
  private readonly heartbeat: Heartbeat;
  private closedReason: DisconnectReason | "unloaded" | undefined;
  private readonly closedPromise: Promise<void>;
  /** Settles once the lease was released and Closed published (after finish). */
  private handedOff: Promise<void> = Promise.resolve();
  private markClosed!: () => void;

  private constructor(
    docId: string,
    doc: Y.Doc,
    lastSeq: number,
    snapshotSeq: number,
    deps: SessionDependencies,
  ) {
    this.docId = docId;
    this.doc = doc;
    this.epoch = deps.lease.epoch;
    this.deps = deps;
    this.lastSeqValue = lastSeq;
    this.batchContext = {
      docId,
      doc,
      validators: deps.validators,
      metrics: deps.metrics,
      recorder: new ChangeRecorder(doc),
      pendingBudget: new PendingBudget(doc, deps.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES),
    };
    this.peers = new FanOut(docId, deps);
    this.presence = new SessionPresence(docId, this.peers, deps);
    this.queue = new ApplyQueue(
      (batch) => this.runBatch(batch),
      deps.maxBatch ?? 256,
      () => this.closedError(),
    );
    this.checkpoints = new SessionCheckpoints(this.checkpointHost(), deps, snapshotSeq);
    this.closedPromise = new Promise((resolve) => (this.markClosed = resolve));
    this.heartbeat = new Heartbeat(
      deps.heartbeatIntervalMs ?? 1000,
      lastSeq,
      () => this.lastSeqValue,
      (seq) => this.peers.heartbeat(this.epoch, seq),
      (error) => deps.logger.error({ err: error, docId }, "heartbeat failed"),
    );
    deps.lease.signal.addEventListener("abort", () => this.fail("step-down"), { once: true });
    // A lease lost before the listener existed never fires "abort" again.
    if (deps.lease.signal.aborted) queueMicrotask(() => this.fail("step-down"));
  }

  /**
   * Loads `docId` (latest snapshot + the ops after it) under `deps.lease`, seeding
   * a brand-new document durably before anyone can see it. A `prepared` copy
   * (loaded ahead of a handoff) is brought up to storage instead of restoring it.
   */
  static async open(
    docId: string,
    deps: SessionDependencies,
    prepared?: PreparedDocument,
  ): Promise<DocumentSession> {
    const stored = await deps.store.load(docId);
    const doc = prepared?.catchUp(stored) ?? restoreDocument(docId, stored);
    const snapshotSeq = stored.snapshot?.seq ?? 0;
    const lastSeq = stored.ops.at(-1)?.seq ?? snapshotSeq;
    const session = new DocumentSession(docId, doc, lastSeq, snapshotSeq, deps);
    // Ops replayed from the log count towards the next snapshot (and may lack a version).
    session.checkpoints.recordLoaded(stored, lastSeq);
    try {
      // Storage restored from a backup older than the document: its clients still
      // hold its content (seed included) and re-upload it; a seed now would be a
      // second copy of it.
      const rolledBack = deps.lease.checkLoaded?.(lastSeq) ?? false;
      if (!stored.snapshot && stored.ops.length === 0 && deps.seeder && !rolledBack) {
        await session.seed(deps.seeder);
      }
      session.consumers = await ConsumerGroup.open(
        deps.consumers ?? [],
        { ...deps, docId, epoch: session.epoch },
        session.lastSeq,
      );
      if (session.closed) void session.consumers.stop();
      // Relays of the previous owner follow this one now, keeping their clients.
      else session.peers.owner(session.epoch, session.lastSeq);
    } catch (error) {
      await session.close("storage-failure");
      throw error;
    }
    return session;
  }

  get lastSeq(): number {
    return this.lastSeqValue;
  }

  get peerCount(): number {
    return this.peers.size;
  }

  /** The node that should take the document over if it closed now, or "" (see {@link FanOut.successor}). */
  successor(): string {
    return this.peers.successor();
  }

  /** Bytes of updates Yjs holds back for missing dependencies (at most `maxPendingBytes` between batches). */
  get pendingBytes(): number {
    return pendingBytes(this.doc);
  }

  /** True once close() has begun or the session has failed: it takes no new work. */
  get closed(): boolean {
    return this.closing || this.closedReason !== undefined;
  }

  /** Resolves when the session has closed. */
  whenClosed(): Promise<void> {
    return this.closedPromise;
  }

  addPeer(peer: SessionPeer): void {
    this.assertOpen();
    this.peers.add(peer);
  }

  /** Detaches a peer and removes its awareness states (fanned out to the others). */
  removePeer(peerId: string): void {
    if (!this.peers.delete(peerId)) return;
    this.presence.removePeer(peerId);
  }

  /** The document's state vector (what a client should send us). */
  stateVector(): Uint8Array {
    return Y.encodeStateVector(this.doc);
  }

  /**
   * Answers a client's sync step 1: the durable state the client is missing.
   * Queued behind any batch in flight, so it never exposes non-durable content.
   */
  syncStep1(clientStateVector: Uint8Array): Promise<Uint8Array> {
    return this.read(() => Y.encodeStateAsUpdate(this.doc, clientStateVector));
  }

  /** Runs `read` once every change queued before it is durable. */
  read<T>(read: () => T): Promise<T> {
    return this.queue.read(read);
  }

  /** The full durable state and its seq, read under the apply lock. */
  state(): Promise<DocumentState> {
    return this.read(() => ({ seq: this.lastSeqValue, bytes: Y.encodeStateAsUpdate(this.doc) }));
  }

  /** Whether the durable document holds all of `update`, read under the apply lock. Rejects with INVALID_UPDATE. */
  contains(update: Uint8Array): Promise<boolean> {
    return this.read(() => {
      try {
        return containsUpdate(this.doc, update);
      } catch (error) {
        throw invalidUpdate(error, this.docId);
      }
    });
  }

  /** What a client of another node needs to attach, read under the lock: it describes durable state only. */
  joinInfo(): Promise<JoinInfo> {
    return this.read(() => ({
      epoch: this.epoch,
      seq: this.lastSeqValue,
      stateVector: Y.encodeStateVector(this.doc),
      awareness: this.presence.encodeAll(),
    }));
  }

  /**
   * Runs a management action; `compact` resolves with the snapshot's seq, `delete`
   * with seq 0, `version` and `restore` (`payload`: see historyAction) with their JSON answer.
   */
  async manage(action: ManagementAction, payload: Uint8Array = EMPTY): Promise<DocumentState> {
    switch (action) {
      case "version":
      case "restore":
        return this.checkpoints.historyAction(action, payload);
      case "state":
        return this.state();
      case "compact":
        await this.snapshot();
        return { seq: this.lastSeqValue, bytes: EMPTY };
      case "delete":
        await this.delete();
        return { seq: 0, bytes: EMPTY };
    }
  }

  /**
   * Applies an update. Resolves with its sequence number once durable and fanned
   * out, or null when it changed nothing. Rejects with UPDATE_REJECTED,
   * INVALID_UPDATE, PENDING_BUDGET_EXCEEDED, FENCED, STORAGE_UNAVAILABLE or
   * SESSION_CLOSED.
   */
  apply(update: Uint8Array, origin: Origin): Promise<number | null> {
    const stop = this.deps.metrics.applySeconds.startTimer();
    const applied = this.queue.apply(update, origin);
    applied.then(
      () => stop(),
      () => stop(),
    );
    return applied;
  }

  /**
   * Applies an awareness update from `peerId` and fans out what changed; entries for
   * a client id another peer owns are refused and counted. Throws on malformed input.
   */
  applyAwareness(peerId: string, update: Uint8Array): void {
    this.assertOpen();
    this.presence.apply(peerId, update);
  }

  /** Sends a stateless message to every Hocuspocus peer of the document, on every node. */
  broadcastStateless(payload: string): void {
    this.assertOpen();
    this.peers.stateless(payload);
  }

  /** Every current awareness state as one update, or null. */
  awarenessStates(): Uint8Array | null {
    return this.presence.encodeAll();
  }

  /** Writes a snapshot now (if anything changed since the last one). */
  snapshot(): Promise<void> {
    return this.checkpoints.snapshot();
  }

  /**
   * Closes the session: a graceful close (`"unloaded"`, `"shutdown"`) drains the
   * queue and writes a final snapshot first; then peers are disconnected and the
   * lease released.
   */
  async close(reason: DisconnectReason | "unloaded" = "unloaded"): Promise<void> {
    if (this.closedReason || this.closing) return this.closedPromise;
    this.closing = true;
    this.queue.beginClosing();
    // On shutdown, a document other nodes use is handed over at once: their relays
    // are waiting to take it over, and the successor replays the ops since the last
    // snapshot instead (a few ms). Its queue still drains first.
    const handOver = reason === "shutdown" && this.peers.hasRemote();
    if (reason === "unloaded" || reason === "shutdown") {
      try {
        // Queued last: every update accepted before close() is durable first.
        await this.queue.exclusive(
          () => (handOver ? Promise.resolve() : this.checkpoints.finalWrites()),
          true,
        );
      } catch (error) {
        this.deps.logger.error(
          { err: error, docId: this.docId },
          "final snapshot failed; ops stay in the log",
        );
      }
    }
    this.finish(reason);
    // Until the lease is released and Closed published: a shutdown closes the
    // backplane right after its sessions, and relays take over on that message.
    await this.handedOff;
    return this.closedPromise;
  }

  /**
   * Deletes the document: under the apply lock (after every queued update), its
   * storage is removed; then the session closes, its peers with reason "deleted".
   */
  async delete(): Promise<void> {
    this.assertOpen();
    this.closing = true;
    this.queue.beginClosing();
    try {
      await this.queue.exclusive(() => this.deps.store.delete(this.docId), true);
      // A re-created document starts its log again; its mark must not call that a rollback.
      this.deps.lease.progress?.(0);
    } finally {
      this.finish("deleted");
    }
  }

  private async seed(seeder: Seeder): Promise<void> {
    const update = await runSeeder(this.docId, this.doc, this.batchContext.recorder, seeder);
    if (!update) return;
    const seqs = await this.deps.store.append(this.docId, this.epoch, [update]);
    this.lastSeqValue = seqs.at(-1) ?? this.lastSeqValue;
    this.deps.lease.progress?.(this.lastSeqValue);
    this.checkpoints.recordOps(seqs.length, update.byteLength);
  }

  private async runBatch(batch: BatchTask[]): Promise<void> {
    const captured: Captured[] = [];
    const failures = new Map<ApplyTask, unknown>();
    await applyBatch(batch, this.batchContext, captured, failures);

    // The batch's changes are stored, numbered and sent as one op: one row, one
    // seq, one frame per peer and one channel message, however many updates queued
    // up behind the previous append (under load, the batch is what lets throughput
    // grow). Its seq is every contributing update's ack.
    let seq: number | null = null;
    let bytes = 0;
    if (captured.length > 0) {
      const op = mergeCaptured(captured);
      bytes = op.byteLength;
      const started = performance.now();
      try {
        const seqs = await this.deps.store.append(this.docId, this.epoch, [op]);
        seq = seqs.at(-1) ?? null;
      } catch (error) {
        this.onStorageFailure(error, batch);
        return;
      }
      this.deps.metrics.appendSeconds.observe((performance.now() - started) / 1000);
      this.deps.metrics.appendBatchSize.observe(captured.length);
      this.deps.metrics.updatesApplied.inc(captured.length);
      this.lastSeqValue = seq ?? this.lastSeqValue;
      this.deps.lease.progress?.(this.lastSeqValue);
      this.peers.update(op, this.epoch, this.lastSeqValue, captured);
    }

    settleBatch(batch, captured, failures, seq, this.deps.metrics);
    if (captured.length > 0) {
      this.checkpoints.recordOps(1, bytes, captured);
      this.consumers?.notify(this.lastSeqValue);
    }
  }

  private checkpointHost(): CheckpointHost {
    return {
      docId: this.docId,
      epoch: this.epoch,
      exclusive: (work) => this.queue.exclusive(work),
      read: (read) => this.read(read),
      current: () => stateOf(this.doc, this.lastSeqValue),
      apply: (update) => this.apply(update, SERVER_ORIGIN),
      trimThrough: (uptoSeq) => this.consumers?.trimThrough(uptoSeq) ?? uptoSeq,
      fail: (reason) => this.fail(reason),
    };
  }

  private onStorageFailure(error: unknown, batch: BatchTask[]): void {
    const fenced = isOpStreamError(error, ErrorCodes.FENCED);
    if (fenced) this.deps.metrics.fencedWrites.inc();
    this.deps.metrics.storageErrors.inc({ operation: "append", code: codeOf(error) });
    this.deps.logger.error({ err: error, docId: this.docId }, "append failed; closing the session");
    for (const task of batch) task.reject(error);
    this.fail(fenced ? "step-down" : "storage-failure");
  }

  /** Closes at once, without a final snapshot: the in-memory state may not be durable. */
  private fail(reason: DisconnectReason): void {
    if (this.closedReason) return;
    this.finish(reason);
  }

  private finish(reason: DisconnectReason | "unloaded"): void {
    this.closedReason = reason;
    this.checkpoints.stop();
    void this.consumers?.stop();
    this.presence.stop();
    this.heartbeat.stop();
    this.queue.close(this.closedError());
    const successor = this.peers.successor();
    const peers = this.peers.takeAll();
    if (reason !== "unloaded") for (const peer of peers) peer.disconnect(reason);
    // The lease goes first, then Closed, in this tick and over one connection (see
    // Lease.release): a relay that reads the owner key when Closed reaches it
    // finds the key free and takes over at once, and nobody waits for the
    // release's answer to reach this node's event loop first.
    const released = this.deps.lease.release();
    this.peers.closed(this.epoch, successor, reason);
    this.handedOff = released.catch((releaseError: unknown) => {
      this.deps.logger.warn({ err: releaseError, docId: this.docId }, "lease release failed; it will expire");
    });
    this.doc.destroy();
    this.markClosed();
    this.deps.onClosed?.(this);
  }

  private closedError(): OpStreamError {
    return new OpStreamError(
      ErrorCodes.SESSION_CLOSED,
      `The session of document "${this.docId}" is closed.`,
      {
        docId: this.docId,
        reason: this.closedReason,
      },
    );
  }

  private assertOpen(): void {
    if (this.closed) throw this.closedError();
  }
}
