import { Worker } from "node:worker_threads";
import type {
  ClaimEpochOptions,
  DocumentStore,
  NewVersion,
  SaveSnapshotOptions,
  StoredDocument,
  StoredOp,
  StoredSnapshot,
  StoredVersion,
  VersionInfo,
} from "../document-store.js";
import { trimPoint } from "../document-store.js";
import { SqliteDatabase, storageError, type GroupOutcome, type GroupedWrite } from "./sqlite-database.js";
import { READY_ID, exact, fromWire, type WriterCall, type WriterReply } from "./writer-protocol.js";

/** Options of {@link SqliteDocumentStore}. */
export interface SqliteStoreOptions {
  /** Path of the database file (created with its folder when missing); `":memory:"` for a private in-memory database. */
  path: string;
  /**
   * SQLite `synchronous` pragma. `"full"` fsyncs every commit (survives power loss);
   * `"normal"` survives a crash of the process but not of the machine.
   * @default "full"
   */
  synchronous?: "full" | "normal";
  /**
   * Write on a worker thread with its own connection (`true`), so that a commit's
   * fsync never blocks the event loop, or on the event loop (`false`). Reads run on
   * the event loop either way. A `":memory:"` database is always written inline.
   * @default true
   */
  writerThread?: boolean;
}

/** Where the store's writes go: a writer thread, or the reading connection itself. */
interface Writer {
  readonly ready: Promise<void>;
  write<T>(call: WriterCall, docId?: string): Promise<T>;
  close(): Promise<void>;
}

/**
 * The embedded default: one SQLite file in WAL mode. better-sqlite3 is synchronous,
 * so by default every write goes to a worker thread with its own connection
 * (`sqlite-writer.ts`), where appends are group-committed across documents and the
 * fsync blocks that thread only; reads run on the event loop through a second
 * connection, which WAL lets read while the writer commits. A promise settles only
 * once its transaction has committed.
 */
export class SqliteDocumentStore implements DocumentStore {
  readonly kind = "sqlite";
  private readonly db: SqliteDatabase;
  private readonly writer: Writer;

  constructor(options: SqliteStoreOptions) {
    const synchronous = options.synchronous ?? "full";
    this.db = new SqliteDatabase(options.path, synchronous);
    this.writer =
      options.path === ":memory:" || options.writerThread === false
        ? new InlineWriter(this.db)
        : new ThreadWriter(options.path, synchronous);
  }

  /** Runs `work` and turns driver failures into STORAGE_UNAVAILABLE (FENCED and other coded errors pass). */
  private run<T>(operation: string, docId: string | undefined, work: () => T): Promise<T> {
    try {
      return Promise.resolve(work());
    } catch (error) {
      return Promise.reject(storageError(operation, docId, error));
    }
  }

  claimEpoch(docId: string, options: ClaimEpochOptions = {}): Promise<number> {
    return this.writer.write(
      { op: "claimEpoch", docId, atLeast: options.atLeast ?? 0, mustExist: options.mustExist ?? false },
      docId,
    );
  }

  /** Durable once it resolves; committed with the other appends of its group. */
  append(docId: string, epoch: number, updates: readonly Uint8Array[]): Promise<number[]> {
    return this.writer.write({ op: "append", docId, epoch, updates: updates.map(exact) }, docId);
  }

  readOps(docId: string, afterSeq: number): Promise<StoredOp[]> {
    return this.run("readOps", docId, () => this.db.readOps(docId, afterSeq));
  }

  loadSnapshot(docId: string): Promise<StoredSnapshot | null> {
    return this.run("loadSnapshot", docId, () => this.db.readSnapshot(docId));
  }

  load(docId: string): Promise<StoredDocument> {
    return this.run("load", docId, () => this.db.load(docId));
  }

  saveSnapshot(
    docId: string,
    epoch: number,
    state: Uint8Array,
    uptoSeq: number,
    options: SaveSnapshotOptions = {},
  ): Promise<void> {
    const trimThrough = trimPoint(uptoSeq, options);
    return this.writer.write(
      { op: "saveSnapshot", docId, epoch, state: exact(state), uptoSeq, trimThrough },
      docId,
    );
  }

  commitOffset(docId: string, epoch: number, consumer: string, seq: number): Promise<void> {
    return this.writer.write({ op: "commitOffset", docId, epoch, consumer, seq }, docId);
  }

  readOffsets(docId: string): Promise<Map<string, number>> {
    return this.run("readOffsets", docId, () => this.db.readOffsets(docId));
  }

  /** Fenced like a snapshot: its own transaction, after the writes asked before it. */
  saveVersion(docId: string, epoch: number, version: NewVersion): Promise<VersionInfo> {
    const sent: NewVersion = { ...version, state: exact(version.state) };
    return this.writer.write({ op: "saveVersion", docId, epoch, version: sent }, docId);
  }

  listVersions(docId: string): Promise<VersionInfo[]> {
    return this.run("listVersions", docId, () => this.db.listVersions(docId));
  }

  loadVersion(docId: string, id: number): Promise<StoredVersion | null> {
    return this.run("loadVersion", docId, () => this.db.loadVersion(docId, id));
  }

  dropVersions(docId: string, epoch: number, ids: readonly number[]): Promise<void> {
    return this.writer.write({ op: "dropVersions", docId, epoch, ids: [...ids] }, docId);
  }

  delete(docId: string): Promise<void> {
    return this.writer.write({ op: "delete", docId }, docId);
  }

  list(): Promise<string[]> {
    return this.run("list", undefined, () => this.db.list());
  }

  /** Both connections answer: the reading one, and the writer's (on its thread). */
  async ping(): Promise<void> {
    await this.run("ping", undefined, () => this.db.ping());
    await this.writer.write({ op: "ping" });
  }

  /** Resolves once the writer thread has opened the file. */
  whenReady(): Promise<void> {
    return this.writer.ready;
  }

  /** Commits the writes already handed to the store (none is dropped), then closes. */
  async close(): Promise<void> {
    try {
      await this.writer.close();
    } finally {
      this.db.close();
    }
  }
}

/** An append or epoch claim waiting for the next inline group commit. */
type PendingWrite = GroupedWrite & {
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
};

/**
 * Writes on the event loop. Appends and claims of one turn share one transaction, flushed at
 * the end of the turn (`setImmediate`); while its fsync blocks the loop, the next
 * turn's frames pile up and form the next group.
 */
class InlineWriter implements Writer {
  readonly ready = Promise.resolve();
  private pending: PendingWrite[] = [];
  private flushScheduled = false;

  constructor(private readonly db: SqliteDatabase) {}

  write<T>(call: WriterCall, docId?: string): Promise<T> {
    if (call.op === "append" || call.op === "claimEpoch") {
      return new Promise<unknown>((resolve, reject) => {
        this.pending.push({ ...call, resolve, reject });
        if (this.flushScheduled) return;
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }) as Promise<T>;
    }
    this.flush(); // writes keep the order in which they were asked
    try {
      return Promise.resolve(this.run(call) as T);
    } catch (error) {
      return Promise.reject(storageError(call.op, docId, error));
    }
  }

  close(): Promise<void> {
    if (this.db.open) this.flush();
    return Promise.resolve();
  }

  private run(call: Exclude<WriterCall, { op: "append" | "claimEpoch" }>): unknown {
    switch (call.op) {
      case "saveSnapshot":
        return this.db.saveSnapshot(call.docId, call.epoch, call.state, call.uptoSeq, call.trimThrough);
      case "commitOffset":
        return this.db.commitOffset(call.docId, call.epoch, call.consumer, call.seq);
      case "saveVersion":
        return this.db.saveVersion(call.docId, call.epoch, call.version);
      case "dropVersions":
        return this.db.dropVersions(call.docId, call.epoch, call.ids);
      case "delete":
        return this.db.delete(call.docId);
      case "ping":
        return this.db.ping();
      case "close":
        return undefined;
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    const group = this.pending;
    if (group.length === 0) return;
    this.pending = [];
    let outcomes: GroupOutcome[];
    try {
      outcomes = this.db.writeGroup(group);
    } catch (error) {
      for (const entry of group) entry.reject(storageError(entry.op, entry.docId, error));
      return;
    }
    group.forEach((entry, i) => {
      const outcome = outcomes[i];
      if (outcome && "value" in outcome) entry.resolve(outcome.value);
      else entry.reject(outcome?.error ?? new Error("group commit lost an outcome"));
    });
  }
}

interface ThreadCall {
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
  readonly operation: string;
  readonly docId: string | undefined;
}

/**
 * Writes through `sqlite-writer.ts` on a worker thread. The thread keeps the
 * process alive only while a write is in flight; if it dies, every write in
 * flight and after fails with STORAGE_UNAVAILABLE.
 */
class ThreadWriter implements Writer {
  readonly ready: Promise<void>;
  private readonly worker: Worker;
  private readonly calls = new Map<number, ThreadCall>();
  private nextId = READY_ID + 1;
  private failure: Error | undefined;
  private opening: { resolve: () => void; reject: (error: unknown) => void } | undefined;

  constructor(path: string, synchronous: "full" | "normal") {
    // Under tsx (the specs) this module is TypeScript, and so is the writer's, which
    // a worker can only import once tsx's loader is registered in that thread.
    const typescript = import.meta.url.endsWith(".ts");
    const entry = new URL(typescript ? "./sqlite-writer.ts" : "./sqlite-writer.js", import.meta.url);
    const workerData = { path, synchronous };
    this.worker = typescript
      ? new Worker(
          `import("tsx/esm/api").then(({ register }) => { register(); return import(${JSON.stringify(entry.href)}); });`,
          { eval: true, workerData },
        )
      : new Worker(entry, { workerData });
    this.worker.unref();
    this.ready = new Promise((resolve, reject) => (this.opening = { resolve, reject }));
    this.ready.catch(() => undefined); // a failure is also every later write's
    this.worker.on("message", (reply: WriterReply) => this.settle(reply));
    this.worker.on("error", (error) => this.fail(error));
    this.worker.on("exit", (code) => this.fail(new Error(`the SQLite writer thread exited (code ${code})`)));
  }

  write<T>(call: WriterCall, docId?: string): Promise<T> {
    if (this.failure) return Promise.reject(storageError(call.op, docId, this.failure));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.calls.set(id, { resolve: resolve as (value: unknown) => void, reject, operation: call.op, docId });
      if (this.calls.size === 1) this.worker.ref();
      this.worker.postMessage({ ...call, id });
    });
  }

  async close(): Promise<void> {
    if (this.failure) return;
    try {
      await this.write({ op: "close" });
    } finally {
      await this.worker.terminate();
    }
  }

  private settle(reply: WriterReply): void {
    if (reply.id === READY_ID) {
      this.opening?.resolve();
      this.opening = undefined;
      return;
    }
    const call = this.calls.get(reply.id);
    if (!call) return;
    this.calls.delete(reply.id);
    if (this.calls.size === 0) this.worker.unref();
    if ("error" in reply) call.reject(fromWire(reply.error, call.operation, call.docId));
    else call.resolve(reply.value);
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.opening?.reject(storageError("open", undefined, error));
    this.opening = undefined;
    for (const call of this.calls.values()) call.reject(storageError(call.operation, call.docId, error));
    this.calls.clear();
  }
}
