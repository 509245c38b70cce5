import * as Y from "yjs";
import { ErrorCodes, OpStreamError, isOpStreamError } from "../errors.js";
import { codeOf, invalidUpdate, rejection } from "./session-errors.js";
import { ApplyQueue, type ApplyTask, type BatchTask } from "./apply-queue.js";
import { AwarenessRegistry } from "./awareness.js";
import { ConsumerGroup } from "./consumers.js";
import { DEFAULT_MAX_PENDING_BYTES, PendingBudget, pendingBytes } from "./pending-budget.js";
import { checkUpdate } from "./update-check.js";
import { FanOut } from "./fan-out.js";
import { isProducer, SEED_ORIGIN, STORAGE_ORIGIN, type Origin } from "./origin.js";
import type { DisconnectReason, SessionPeer } from "./peer.js";
import { SnapshotScheduler } from "./snapshot-scheduler.js";
import type { SessionDependencies } from "./session-services.js";
import type { Seeder } from "./validation.js";

/** A quiet session repeats its heartbeat every this many heartbeat intervals (10 s by default). */
const QUIET_HEARTBEAT_EVERY = 10;

/** One effective change captured from Yjs's `update` event, and the task it belongs to. */
interface Captured {
  update: Uint8Array;
  origin: Origin;
  task: ApplyTask | undefined;
}

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
  readonly doc: Y.Doc;
  readonly epoch: number;
  private readonly deps: SessionDependencies;
  private readonly peers: FanOut;
  private readonly snapshots: SnapshotScheduler;
  private readonly awareness: AwarenessRegistry;
  private readonly queue: ApplyQueue;
  private readonly pendingBudget: PendingBudget;
  private consumers: ConsumerGroup | undefined;
  private closing = false;
  private captured: Captured[] | null = null;
  private currentTask: ApplyTask | undefined;
  private lastSeqValue: number;
  private snapshotSeq: number;
  private readonly sweepTimer: NodeJS.Timeout;
  private readonly heartbeatTimer: NodeJS.Timeout;
  private heartbeatSeq: number;
  private quietBeats = 0;
  private closedReason: DisconnectReason | "unloaded" | undefined;
  private readonly closedPromise: Promise<void>;
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
    this.snapshotSeq = snapshotSeq;
    this.awareness = new AwarenessRegistry(deps.awareness);
    this.pendingBudget = new PendingBudget(doc, deps.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES);
    this.peers = new FanOut(docId, deps.backplane, deps.metrics, deps.logger);
    this.snapshots = new SnapshotScheduler(docId, deps.snapshotPolicy, () => this.queueSnapshot());
    this.queue = new ApplyQueue(
      (batch) => this.runBatch(batch),
      deps.maxBatch ?? 256,
      () => this.closedError(),
    );
    this.closedPromise = new Promise((resolve) => (this.markClosed = resolve));
    // Yjs emits `update` only when a transaction changed something (new structs or
    // new deletions), with exactly the integrated change: that is what we store.
    doc.on("update", (update: Uint8Array, origin: unknown) => {
      if (this.captured && isOrigin(origin) && isProducer(origin)) {
        this.captured.push({ update, origin, task: this.currentTask });
      }
    });
    this.sweepTimer = setInterval(() => this.sweepAwareness(), deps.awarenessSweepMs ?? 5000);
    this.sweepTimer.unref();
    this.heartbeatSeq = lastSeq;
    this.heartbeatTimer = setInterval(() => this.heartbeat(), deps.heartbeatIntervalMs ?? 1000);
    this.heartbeatTimer.unref();
    deps.lease.signal.addEventListener("abort", () => this.fail("step-down"), { once: true });
    // A lease lost before the listener existed never fires "abort" again.
    if (deps.lease.signal.aborted) queueMicrotask(() => this.fail("step-down"));
  }

  /**
   * Loads `docId` (latest snapshot + the ops after it) under `deps.lease`, seeding
   * a brand-new document durably before anyone can see it.
   */
  static async open(docId: string, deps: SessionDependencies): Promise<DocumentSession> {
    const stored = await deps.store.load(docId);
    const doc = new Y.Doc();
    Y.transact(
      doc,
      () => {
        if (stored.snapshot) Y.applyUpdate(doc, stored.snapshot.state, STORAGE_ORIGIN);
        for (const op of stored.ops) Y.applyUpdate(doc, op.update, STORAGE_ORIGIN);
      },
      STORAGE_ORIGIN,
    );
    const snapshotSeq = stored.snapshot?.seq ?? 0;
    const lastSeq = stored.ops.at(-1)?.seq ?? snapshotSeq;
    const session = new DocumentSession(docId, doc, lastSeq, snapshotSeq, deps);
    // Ops replayed from the log count towards the next snapshot.
    session.snapshots.recordOps(stored.ops.length);
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
    const removal = this.awareness.removePeer(peerId);
    if (removal) this.peers.awareness(removal, peerId);
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

  /** Runs `read` on the document once every change queued before it is durable. */
  read<T>(read: () => T): Promise<T> {
    return this.queue.read(read);
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
    const { forward, dropped, foreign } = this.awareness.apply(peerId, update, Date.now());
    if (dropped > 0) this.deps.metrics.awarenessDropped.inc(dropped);
    if (foreign.length > 0) {
      this.deps.metrics.awarenessRefused.inc({ reason: "foreign-client" }, foreign.length);
      this.deps.logger.debug(
        { docId: this.docId, peerId, clientIds: foreign },
        "awareness entries for another peer's client refused",
      );
    }
    if (forward) this.peers.awareness(forward, peerId);
  }

  /** Sends a stateless message to every Hocuspocus peer of the document, on every node. */
  broadcastStateless(payload: string): void {
    this.assertOpen();
    this.peers.stateless(payload);
  }

  /** Every current awareness state as one update, or null. */
  awarenessStates(): Uint8Array | null {
    return this.awareness.encodeAll();
  }

  /** Writes a snapshot now (if anything changed since the last one). */
  snapshot(): Promise<void> {
    return this.queue.exclusive(() => this.writeSnapshot());
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
    if (reason === "unloaded" || reason === "shutdown") {
      try {
        // Queued last: every update accepted before close() is durable first.
        await this.queue.exclusive(() => this.writeSnapshot(), true);
      } catch (error) {
        this.deps.logger.error(
          { err: error, docId: this.docId },
          "final snapshot failed; ops stay in the log",
        );
      }
    }
    this.finish(reason);
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
    this.captured = [];
    try {
      await Promise.resolve(
        Y.transact(this.doc, () => seeder({ docId: this.docId, doc: this.doc }), SEED_ORIGIN),
      );
    } finally {
      const updates = this.captured;
      this.captured = null;
      if (updates.length > 0) {
        const seqs = await this.deps.store.append(this.docId, this.epoch, [
          Y.mergeUpdates(updates.map((c) => c.update)),
        ]);
        this.lastSeqValue = seqs.at(-1) ?? this.lastSeqValue;
        this.deps.lease.progress?.(this.lastSeqValue);
        this.snapshots.recordOps(seqs.length);
      }
    }
  }

  private async runBatch(batch: BatchTask[]): Promise<void> {
    const captured: Captured[] = [];
    const failures = new Map<ApplyTask, unknown>();
    for (const task of batch) {
      if (task.kind !== "apply") continue;
      try {
        for (const validate of this.deps.validators)
          await validate(task.update, { docId: this.docId, origin: task.origin });
      } catch (error) {
        failures.set(task, rejection(error, this.docId));
        this.deps.metrics.updatesRejected.inc({ reason: "validator" });
        continue;
      }
      this.captured = captured;
      this.currentTask = task;
      try {
        // Structure and declared counts first: crafted input must not reach Yjs's decoder.
        checkUpdate(task.update);
        Y.applyUpdate(this.doc, task.update, task.origin);
      } catch (error) {
        // Whatever Yjs integrated before it threw was captured and is stored with
        // the batch, so the document in memory never differs from the log.
        failures.set(task, invalidUpdate(error, this.docId));
        this.deps.metrics.updatesRejected.inc({ reason: "invalid" });
      } finally {
        this.captured = null;
        this.currentTask = undefined;
      }
      const overBudget = this.pendingBudget.enforce(this.docId);
      if (overBudget && !failures.has(task)) {
        failures.set(task, overBudget);
        this.deps.metrics.updatesRejected.inc({ reason: "pending-budget" });
      }
    }

    // The batch's changes are stored, numbered and sent as one op: one row, one
    // seq, one frame per peer and one channel message, however many updates queued
    // up behind the previous append (under load, the batch is what lets throughput
    // grow). Its seq is every contributing update's ack.
    let seq: number | null = null;
    if (captured.length > 0) {
      const op = mergeCaptured(captured);
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
      this.peers.update(op, this.epoch, this.lastSeqValue, soleSender(captured));
    }

    const applied = new Set<ApplyTask>();
    for (const change of captured) if (change.task) applied.add(change.task);
    for (const task of batch) {
      if (task.kind === "read") task.run();
      else if (task.kind === "apply") {
        const failure = failures.get(task);
        if (failure !== undefined) task.reject(failure);
        else if (applied.has(task)) task.resolve(seq);
        else {
          this.deps.metrics.updatesNoop.inc();
          task.resolve(null);
        }
      }
    }
    if (captured.length > 0) {
      this.snapshots.recordOps(1);
      this.consumers?.notify(this.lastSeqValue);
    }
  }

  /**
   * A busy channel gets a heartbeat every interval. A quiet one still gets one every
   * {@link QUIET_HEARTBEAT_EVERY} intervals: a relay that lost the last op and then
   * its heartbeat too would otherwise stay behind until the next op, however long.
   */
  private heartbeat(): void {
    this.quietBeats += 1;
    if (this.lastSeqValue === this.heartbeatSeq && this.quietBeats < QUIET_HEARTBEAT_EVERY) return;
    this.quietBeats = 0;
    this.heartbeatSeq = this.lastSeqValue;
    this.peers.heartbeat(this.epoch, this.lastSeqValue);
  }

  private sweepAwareness(): void {
    const removal = this.awareness.expire(Date.now());
    if (removal) this.peers.awareness(removal, undefined);
  }

  private queueSnapshot(): void {
    this.snapshot().catch((error: unknown) => this.onSnapshotError(error));
  }

  private onSnapshotError(error: unknown): void {
    if (isOpStreamError(error, ErrorCodes.SESSION_CLOSED)) return;
    this.deps.metrics.storageErrors.inc({ operation: "saveSnapshot", code: codeOf(error) });
    this.deps.logger.error({ err: error, docId: this.docId }, "snapshot failed");
    if (isOpStreamError(error, ErrorCodes.FENCED)) {
      this.deps.metrics.fencedWrites.inc();
      this.fail("step-down");
    }
  }

  private async writeSnapshot(): Promise<void> {
    if (this.lastSeqValue === this.snapshotSeq) return;
    const uptoSeq = this.lastSeqValue;
    const trimThrough = this.consumers?.trimThrough(uptoSeq) ?? uptoSeq;
    await this.deps.store.saveSnapshot(this.docId, this.epoch, Y.encodeStateAsUpdate(this.doc), uptoSeq, {
      trimThrough,
    });
    this.snapshotSeq = uptoSeq;
    this.snapshots.recordSnapshot();
    this.deps.metrics.snapshots.inc();
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
    this.snapshots.stop();
    void this.consumers?.stop();
    clearInterval(this.sweepTimer);
    clearInterval(this.heartbeatTimer);
    this.queue.close(this.closedError());
    const peers = this.peers.takeAll();
    if (reason !== "unloaded") for (const peer of peers) peer.disconnect(reason);
    this.peers.closed(this.epoch);
    this.deps.lease.release().catch((releaseError: unknown) => {
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

function mergeCaptured(captured: readonly Captured[]): Uint8Array {
  const [only] = captured;
  return captured.length === 1 && only ? only.update : Y.mergeUpdates(captured.map((c) => c.update));
}

/**
 * The peer every change of a batch came from, whose frame is then not sent back to
 * it; undefined when several peers (or the server) contributed. A peer then gets its
 * own changes back inside the merged op: Yjs ignores what a document already holds,
 * as it does for the same echo from a relay.
 */
function soleSender(captured: readonly Captured[]): string | undefined {
  let sender: string | undefined;
  for (const { origin } of captured) {
    if (origin.kind !== "peer") return undefined;
    if (sender === undefined) sender = origin.peerId;
    else if (sender !== origin.peerId) return undefined;
  }
  return sender;
}

function isOrigin(value: unknown): value is Origin {
  return typeof value === "object" && value !== null && "kind" in value;
}
