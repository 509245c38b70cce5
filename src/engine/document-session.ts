import * as Y from "yjs";
import { ChannelMessageType, type IBackplane } from "../backplane/backplane.js";
import type { Lease } from "../backplane/ownership.js";
import { ErrorCodes, OpStreamError, isOpStreamError } from "../errors.js";
import type { Logger } from "../logging/logger.js";
import type { OpStreamMetrics } from "../metrics.js";
import type { DocumentStore } from "../storage/document-store.js";
import { AwarenessRegistry, type AwarenessOptions } from "./awareness.js";
import { isProducer, SEED_ORIGIN, STORAGE_ORIGIN, type Origin } from "./origin.js";
import type { DisconnectReason, SessionPeer } from "./peer.js";
import type { SnapshotPolicy } from "./snapshot-policy.js";
import type { Seeder, Validator } from "./validation.js";

/** The services every session of a node shares (the router passes them on). */
export interface SessionServices {
  readonly store: DocumentStore;
  readonly backplane: IBackplane;
  readonly snapshotPolicy: SnapshotPolicy;
  readonly validators: readonly Validator[];
  readonly seeder: Seeder | undefined;
  readonly logger: Logger;
  readonly metrics: OpStreamMetrics;
  readonly awareness?: AwarenessOptions;
  /** Most queued updates appended as one batch. @default 256 */
  readonly maxBatch?: number;
  /** How often expired awareness states are swept. @default 5000 */
  readonly awarenessSweepMs?: number;
}

/** What one session needs: the shared services and its own lease. */
export interface SessionDependencies extends SessionServices {
  readonly lease: Lease;
  /** Called once when the session has closed, for whatever reason. */
  readonly onClosed?: (session: DocumentSession) => void;
}

type Task =
  | {
      kind: "apply";
      update: Uint8Array;
      origin: Origin;
      resolve: (seq: number | null) => void;
      reject: (e: unknown) => void;
    }
  | { kind: "read"; run: () => void; reject: (e: unknown) => void }
  | { kind: "exclusive"; run: () => Promise<void>; resolve: () => void; reject: (e: unknown) => void };

/** One effective change captured from Yjs's `update` event, and the task it belongs to. */
interface Captured {
  update: Uint8Array;
  origin: Origin;
  task: Extract<Task, { kind: "apply" }> | undefined;
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
  private readonly peers = new Map<string, SessionPeer>();
  private readonly awareness: AwarenessRegistry;
  private readonly queue: Task[] = [];
  private draining = false;
  private closing = false;
  private captured: Captured[] | null = null;
  private currentTask: Extract<Task, { kind: "apply" }> | undefined;
  private lastSeqValue: number;
  private snapshotSeq: number;
  private snapshotTimer: NodeJS.Timeout | undefined;
  private readonly sweepTimer: NodeJS.Timeout;
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
    deps.lease.signal.addEventListener("abort", () => this.fail("step-down"), { once: true });
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
    const now = Date.now();
    if (stored.ops.length > 0) deps.snapshotPolicy.recordOps(docId, stored.ops.length, now);
    try {
      if (!stored.snapshot && stored.ops.length === 0 && deps.seeder) await session.seed(deps.seeder);
    } catch (error) {
      await session.close("storage-failure");
      throw error;
    }
    session.scheduleTimedSnapshot();
    return session;
  }

  get lastSeq(): number {
    return this.lastSeqValue;
  }

  get peerCount(): number {
    return this.peers.size;
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
    this.peers.set(peer.id, peer);
  }

  /** Detaches a peer and removes its awareness states (fanned out to the others). */
  removePeer(peerId: string): void {
    if (!this.peers.delete(peerId)) return;
    const removal = this.awareness.removePeer(peerId);
    if (removal) this.fanOutAwareness(removal, peerId);
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
    return new Promise<T>((resolve, reject) => {
      const run = (): void => {
        try {
          resolve(read());
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      };
      this.enqueue({ kind: "read", run, reject });
    });
  }

  /**
   * Applies an update. Resolves with its sequence number once durable and fanned
   * out, or null when it changed nothing. Rejects with UPDATE_REJECTED,
   * INVALID_UPDATE, FENCED, STORAGE_UNAVAILABLE or SESSION_CLOSED.
   */
  apply(update: Uint8Array, origin: Origin): Promise<number | null> {
    return new Promise((resolve, reject) => {
      this.enqueue({ kind: "apply", update, origin, resolve, reject });
    });
  }

  /** Applies an awareness update from `peerId` and fans out what changed. Throws on malformed input. */
  applyAwareness(peerId: string, update: Uint8Array): void {
    this.assertOpen();
    const { forward, dropped } = this.awareness.apply(peerId, update, Date.now());
    if (dropped > 0) this.deps.metrics.awarenessDropped.inc(dropped);
    if (forward) this.fanOutAwareness(forward, peerId);
  }

  /** Every current awareness state as one update, or null. */
  awarenessStates(): Uint8Array | null {
    return this.awareness.encodeAll();
  }

  /** Writes a snapshot now (if anything changed since the last one). */
  snapshot(): Promise<void> {
    return this.exclusive(() => this.writeSnapshot());
  }

  /**
   * Closes the session: a graceful close (`"unloaded"`, `"shutdown"`) drains the
   * queue and writes a final snapshot first; then peers are disconnected and the
   * lease released.
   */
  async close(reason: DisconnectReason | "unloaded" = "unloaded"): Promise<void> {
    if (this.closedReason || this.closing) return this.closedPromise;
    this.closing = true;
    if (reason === "unloaded" || reason === "shutdown") {
      try {
        // Queued last: every update accepted before close() is durable first.
        await this.exclusive(() => this.writeSnapshot(), true);
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
        this.deps.snapshotPolicy.recordOps(this.docId, 1, Date.now());
      }
    }
  }

  private exclusive(run: () => Promise<void>, evenWhenClosing = false): Promise<void> {
    return new Promise((resolve, reject) => {
      this.enqueue({ kind: "exclusive", run, resolve, reject }, evenWhenClosing);
    });
  }

  private enqueue(task: Task, evenWhenClosing = false): void {
    if (this.closedReason || (this.closing && !evenWhenClosing)) {
      this.rejectTask(task, this.closedError());
      return;
    }
    this.queue.push(task);
    if (!this.draining) void this.drain();
  }

  /** The apply lock: one drain loop per session, so batches never overlap. */
  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.length > 0 && !this.closedReason) {
        const head = this.queue[0];
        if (head?.kind === "exclusive") {
          this.queue.shift();
          await head.run().then(head.resolve, head.reject);
          continue;
        }
        const maxBatch = this.deps.maxBatch ?? 256;
        const batch: Task[] = [];
        while (batch.length < maxBatch && this.queue[0] && this.queue[0].kind !== "exclusive") {
          batch.push(this.queue.shift()!);
        }
        await this.runBatch(batch);
      }
    } finally {
      this.draining = false;
    }
  }

  private async runBatch(batch: Task[]): Promise<void> {
    const captured: Captured[] = [];
    const failures = new Map<Task, unknown>();
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
    }

    let seqs: number[] = [];
    if (captured.length > 0) {
      const started = performance.now();
      try {
        seqs = await this.deps.store.append(
          this.docId,
          this.epoch,
          captured.map((c) => c.update),
        );
      } catch (error) {
        this.onStorageFailure(error, batch);
        return;
      }
      this.deps.metrics.appendSeconds.observe((performance.now() - started) / 1000);
      this.deps.metrics.appendBatchSize.observe(captured.length);
      this.deps.metrics.updatesApplied.inc(captured.length);
      this.lastSeqValue = seqs.at(-1) ?? this.lastSeqValue;
      captured.forEach((change, i) => this.fanOutUpdate(change, seqs[i] ?? 0));
    }

    const seqOf = new Map<Task, number>();
    captured.forEach((change, i) => change.task && seqOf.set(change.task, seqs[i] ?? 0));
    for (const task of batch) {
      if (task.kind === "read") task.run();
      else if (task.kind === "apply") {
        const failure = failures.get(task);
        if (failure !== undefined) task.reject(failure);
        else {
          const seq = seqOf.get(task) ?? null;
          if (seq === null) this.deps.metrics.updatesNoop.inc();
          task.resolve(seq);
        }
      }
    }
    if (captured.length > 0 && this.deps.snapshotPolicy.recordOps(this.docId, captured.length, Date.now())) {
      this.queueSnapshot();
    } else this.scheduleTimedSnapshot();
  }

  private fanOutUpdate(change: Captured, seq: number): void {
    const except = change.origin.kind === "peer" ? change.origin.peerId : undefined;
    for (const [id, peer] of this.peers) if (id !== except) peer.sendUpdate(change.update);
    this.publish({
      type: ChannelMessageType.Update,
      origin: this.deps.backplane.nodeId,
      epoch: this.epoch,
      seq,
      payload: change.update,
    });
  }

  private fanOutAwareness(update: Uint8Array, exceptPeerId: string | undefined): void {
    for (const [id, peer] of this.peers) if (id !== exceptPeerId) peer.sendAwareness(update);
    this.publish({ type: ChannelMessageType.Awareness, origin: this.deps.backplane.nodeId, payload: update });
  }

  private publish(message: Parameters<IBackplane["publish"]>[1]): void {
    this.deps.backplane.publish(this.docId, message).catch((error: unknown) => {
      this.deps.metrics.backplaneErrors.inc();
      this.deps.logger.warn(
        { err: error, docId: this.docId },
        "backplane publish failed; relays will resync",
      );
    });
  }

  private sweepAwareness(): void {
    const removal = this.awareness.expire(Date.now());
    if (removal) this.fanOutAwareness(removal, undefined);
  }

  private queueSnapshot(): void {
    this.snapshot().catch((error: unknown) => this.onSnapshotError(error));
  }

  private scheduleTimedSnapshot(): void {
    if (this.snapshotTimer || this.closedReason) return;
    const due = this.deps.snapshotPolicy.msUntilDue(this.docId, Date.now());
    if (due === null) return;
    this.snapshotTimer = setTimeout(() => {
      this.snapshotTimer = undefined;
      this.queueSnapshot();
    }, due);
    this.snapshotTimer.unref();
  }

  private onSnapshotError(error: unknown): void {
    if (isOpStreamError(error, ErrorCodes.SESSION_CLOSED)) return;
    this.deps.metrics.storageErrors.inc({ operation: "saveSnapshot", code: codeOf(error) });
    this.deps.logger.error({ err: error, docId: this.docId }, "snapshot failed");
    if (isOpStreamError(error, ErrorCodes.FENCED)) this.fail("step-down");
  }

  private async writeSnapshot(): Promise<void> {
    clearTimeout(this.snapshotTimer);
    this.snapshotTimer = undefined;
    if (this.lastSeqValue === this.snapshotSeq) return;
    const uptoSeq = this.lastSeqValue;
    await this.deps.store.saveSnapshot(this.docId, this.epoch, Y.encodeStateAsUpdate(this.doc), uptoSeq);
    this.snapshotSeq = uptoSeq;
    this.deps.snapshotPolicy.recordSnapshot(this.docId, Date.now());
    this.deps.metrics.snapshots.inc();
  }

  private onStorageFailure(error: unknown, batch: Task[]): void {
    const fenced = isOpStreamError(error, ErrorCodes.FENCED);
    this.deps.metrics.storageErrors.inc({ operation: "append", code: codeOf(error) });
    this.deps.logger.error({ err: error, docId: this.docId }, "append failed; closing the session");
    for (const task of batch) this.rejectTask(task, error);
    this.fail(fenced ? "step-down" : "storage-failure");
  }

  /** Closes at once, without a final snapshot: the in-memory state may not be durable. */
  private fail(reason: DisconnectReason): void {
    if (this.closedReason) return;
    this.finish(reason);
  }

  private finish(reason: DisconnectReason | "unloaded"): void {
    this.closedReason = reason;
    clearTimeout(this.snapshotTimer);
    clearInterval(this.sweepTimer);
    const error = this.closedError();
    for (const task of this.queue.splice(0)) this.rejectTask(task, error);
    const peers = [...this.peers.values()];
    this.peers.clear();
    if (reason !== "unloaded") for (const peer of peers) peer.disconnect(reason);
    this.deps.snapshotPolicy.forget(this.docId);
    this.deps.lease.release().catch((releaseError: unknown) => {
      this.deps.logger.warn({ err: releaseError, docId: this.docId }, "lease release failed; it will expire");
    });
    this.doc.destroy();
    this.markClosed();
    this.deps.onClosed?.(this);
  }

  private rejectTask(task: Task, error: unknown): void {
    task.reject(error);
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

function isOrigin(value: unknown): value is Origin {
  return typeof value === "object" && value !== null && "kind" in value;
}

function codeOf(error: unknown): string {
  return isOpStreamError(error) ? error.code : "unknown";
}

function rejection(error: unknown, docId: string): OpStreamError {
  if (isOpStreamError(error)) return error;
  return new OpStreamError(
    ErrorCodes.UPDATE_REJECTED,
    `A validator rejected an update to "${docId}": ${String(error)}`,
    { docId },
    error,
  );
}

function invalidUpdate(error: unknown, docId: string): OpStreamError {
  return new OpStreamError(
    ErrorCodes.INVALID_UPDATE,
    `Yjs could not apply an update to "${docId}": ${String(error)}`,
    { docId },
    error,
  );
}
