import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { ErrorCodes, OpStreamError, isOpStreamError } from "../../errors.js";
import type {
  ClaimEpochOptions,
  DocumentStore,
  SaveSnapshotOptions,
  StoredDocument,
  StoredOp,
  StoredSnapshot,
} from "../document-store.js";
import { trimPoint } from "../document-store.js";
import { assertEpoch } from "../fencing.js";

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
}

// `documents.epoch`/`last_seq` outlive a delete (`live = 0`) so fencing holds across re-creation.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS documents (
  id TEXT PRIMARY KEY,
  epoch INTEGER NOT NULL DEFAULT 0,
  last_seq INTEGER NOT NULL DEFAULT 0,
  live INTEGER NOT NULL DEFAULT 1,
  snapshot BLOB,
  snapshot_seq INTEGER NOT NULL DEFAULT 0,
  snapshot_epoch INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE TABLE IF NOT EXISTS ops (
  doc_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  epoch INTEGER NOT NULL,
  "update" BLOB NOT NULL,
  PRIMARY KEY (doc_id, seq)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS consumer_offsets (
  doc_id TEXT NOT NULL,
  consumer TEXT NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY (doc_id, consumer)
) STRICT, WITHOUT ROWID;
`;

interface DocRow {
  epoch: number;
  last_seq: number;
}
/** An append waiting for the next group commit. */
interface PendingAppend {
  readonly docId: string;
  readonly epoch: number;
  readonly updates: readonly Uint8Array[];
  readonly resolve: (seqs: number[]) => void;
  readonly reject: (error: unknown) => void;
}

/** What one append of a group commit came to, inside the shared transaction. */
type AppendOutcome = { seqs: number[] } | { error: unknown };

interface OpRow {
  seq: number;
  epoch: number;
  update: Buffer;
}
interface SnapshotRow {
  snapshot: Buffer | null;
  snapshot_seq: number;
  snapshot_epoch: number;
}

/**
 * The embedded default: one SQLite file in WAL mode. better-sqlite3 is synchronous,
 * so each call runs to completion on the event loop; batches keep that short.
 *
 * Appends are group-committed across documents: every append made during one turn
 * of the event loop is written by a single IMMEDIATE transaction at the end of the
 * turn (`setImmediate`), so they share one fsync. While that fsync blocks the loop,
 * the next turn's frames pile up in the sockets and form the next group, so the
 * group grows with the load. Each append keeps its own epoch check (a savepoint):
 * a fenced append fails alone, and its neighbours commit. A promise settles only
 * once the shared transaction has committed.
 */
export class SqliteDocumentStore implements DocumentStore {
  readonly kind = "sqlite";
  private readonly db: Database.Database;
  private readonly stmts;
  // IMMEDIATE transactions: several node processes may share one file (a cluster on
  // one machine), and the epoch check must hold the write lock before it reads.
  private readonly appendTx: Database.Transaction<
    (docId: string, epoch: number, updates: readonly Uint8Array[]) => number[]
  >;
  private readonly snapshotTx: Database.Transaction<
    (docId: string, epoch: number, state: Uint8Array, uptoSeq: number, trimThrough: number) => void
  >;
  private readonly commitTx: Database.Transaction<
    (docId: string, epoch: number, consumer: string, seq: number) => void
  >;
  private readonly loadTx: (docId: string) => StoredDocument;
  private readonly groupTx: Database.Transaction<
    (group: readonly PendingAppend[], outcomes: AppendOutcome[]) => void
  >;
  private pending: PendingAppend[] = [];
  private flushScheduled = false;

  constructor(options: SqliteStoreOptions) {
    if (options.path !== ":memory:") mkdirSync(dirname(options.path), { recursive: true });
    this.db = new Database(options.path);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma(`synchronous = ${options.synchronous === "normal" ? "NORMAL" : "FULL"}`);
    this.db.pragma("busy_timeout = 5000");
    this.db.exec(SCHEMA);
    const db = this.db;
    this.stmts = {
      claim: db.prepare<[string, number, number], { epoch: number }>(
        `INSERT INTO documents (id, epoch) VALUES (?, MAX(1, ?))
         ON CONFLICT(id) DO UPDATE SET epoch = MAX(epoch + 1, ?), live = 1 RETURNING epoch`,
      ),
      doc: db.prepare<[string], DocRow>("SELECT epoch, last_seq FROM documents WHERE id = ?"),
      insertOp: db.prepare<[string, number, number, Uint8Array]>(
        `INSERT INTO ops (doc_id, seq, epoch, "update") VALUES (?, ?, ?, ?)`,
      ),
      setLastSeq: db.prepare<[number, string]>("UPDATE documents SET last_seq = ? WHERE id = ?"),
      ops: db.prepare<[string, number], OpRow>(
        `SELECT seq, epoch, "update" FROM ops WHERE doc_id = ? AND seq > ? ORDER BY seq`,
      ),
      snapshot: db.prepare<[string], SnapshotRow>(
        "SELECT snapshot, snapshot_seq, snapshot_epoch FROM documents WHERE id = ?",
      ),
      saveSnapshot: db.prepare<[Uint8Array, number, number, string]>(
        "UPDATE documents SET snapshot = ?, snapshot_seq = ?, snapshot_epoch = ? WHERE id = ?",
      ),
      trim: db.prepare<[string, number]>("DELETE FROM ops WHERE doc_id = ? AND seq <= ?"),
      deleteOps: db.prepare<[string]>("DELETE FROM ops WHERE doc_id = ?"),
      commitOffset: db.prepare<[string, string, number]>(
        `INSERT INTO consumer_offsets (doc_id, consumer, seq) VALUES (?, ?, ?)
         ON CONFLICT(doc_id, consumer) DO UPDATE SET seq = MAX(seq, excluded.seq)`,
      ),
      offsets: db.prepare<[string], { consumer: string; seq: number }>(
        "SELECT consumer, seq FROM consumer_offsets WHERE doc_id = ?",
      ),
      deleteOffsets: db.prepare<[string]>("DELETE FROM consumer_offsets WHERE doc_id = ?"),
      tombstone: db.prepare<[string]>(
        "UPDATE documents SET live = 0, snapshot = NULL, snapshot_seq = 0, snapshot_epoch = 0 WHERE id = ?",
      ),
      list: db.prepare<[], { id: string }>("SELECT id FROM documents WHERE live = 1 ORDER BY id"),
      ping: db.prepare<[], { one: number }>("SELECT 1 AS one"),
    };
    this.appendTx = db.transaction((docId: string, epoch: number, updates: readonly Uint8Array[]) => {
      const row = this.stmts.doc.get(docId);
      assertEpoch(docId, epoch, row?.epoch ?? 0);
      let seq = row?.last_seq ?? 0;
      const seqs = updates.map((update) => {
        seq += 1;
        this.stmts.insertOp.run(docId, seq, epoch, update);
        return seq;
      });
      this.stmts.setLastSeq.run(seq, docId);
      return seqs;
    });
    this.groupTx = db.transaction((group: readonly PendingAppend[], outcomes: AppendOutcome[]) => {
      for (const entry of group) {
        try {
          // Nested: better-sqlite3 runs it in a savepoint, undone alone when it throws.
          outcomes.push({ seqs: this.appendTx(entry.docId, entry.epoch, entry.updates) });
        } catch (error) {
          // FENCED and other coded errors belong to this append; anything else
          // (I/O, a full disk) fails the whole group, which then commits nothing.
          if (!isOpStreamError(error)) throw error;
          outcomes.push({ error });
        }
      }
    });
    this.snapshotTx = db.transaction(
      (docId: string, epoch: number, state: Uint8Array, uptoSeq: number, trimThrough: number) => {
        assertEpoch(docId, epoch, this.stmts.doc.get(docId)?.epoch ?? 0);
        this.stmts.saveSnapshot.run(state, uptoSeq, epoch, docId);
        this.stmts.trim.run(docId, trimThrough);
      },
    );
    this.commitTx = db.transaction((docId: string, epoch: number, consumer: string, seq: number) => {
      assertEpoch(docId, epoch, this.stmts.doc.get(docId)?.epoch ?? 0);
      this.stmts.commitOffset.run(docId, consumer, seq);
    });
    this.loadTx = db.transaction((docId: string): StoredDocument => {
      const snapshot = this.readSnapshot(docId);
      return { snapshot, ops: this.readOpsNow(docId, snapshot?.seq ?? 0) };
    });
  }

  /** Runs `work` and turns driver failures into STORAGE_UNAVAILABLE (FENCED and other coded errors pass). */
  private run<T>(operation: string, docId: string | undefined, work: () => T): Promise<T> {
    try {
      return Promise.resolve(work());
    } catch (error) {
      return Promise.reject(storageError(operation, docId, error));
    }
  }

  /** Commits every pending append in one transaction and settles each. */
  private flush(): void {
    this.flushScheduled = false;
    const group = this.pending;
    if (group.length === 0) return;
    this.pending = [];
    const outcomes: AppendOutcome[] = [];
    try {
      this.groupTx.immediate(group, outcomes);
    } catch (error) {
      for (const entry of group) entry.reject(storageError("append", entry.docId, error));
      return;
    }
    group.forEach((entry, i) => {
      const outcome = outcomes[i];
      if (outcome && "seqs" in outcome) entry.resolve(outcome.seqs);
      else entry.reject(outcome?.error ?? new Error("group commit lost an outcome"));
    });
  }

  private readSnapshot(docId: string): StoredSnapshot | null {
    const row = this.stmts.snapshot.get(docId);
    if (!row?.snapshot) return null;
    return { seq: row.snapshot_seq, epoch: row.snapshot_epoch, state: new Uint8Array(row.snapshot) };
  }

  private readOpsNow(docId: string, afterSeq: number): StoredOp[] {
    return this.stmts.ops
      .all(docId, afterSeq)
      .map((row) => ({ seq: row.seq, epoch: row.epoch, update: new Uint8Array(row.update) }));
  }

  claimEpoch(docId: string, options: ClaimEpochOptions = {}): Promise<number> {
    const atLeast = options.atLeast ?? 0;
    return this.run("claimEpoch", docId, () => {
      const row = this.stmts.claim.get(docId, atLeast, atLeast);
      if (!row) throw new Error("claim returned no row");
      return row.epoch;
    });
  }

  /** Durable once it resolves; committed with every other append of this event-loop turn. */
  append(docId: string, epoch: number, updates: readonly Uint8Array[]): Promise<number[]> {
    return new Promise((resolve, reject) => {
      this.pending.push({ docId, epoch, updates, resolve, reject });
      if (this.flushScheduled) return;
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    });
  }

  readOps(docId: string, afterSeq: number): Promise<StoredOp[]> {
    return this.run("readOps", docId, () => this.readOpsNow(docId, afterSeq));
  }

  loadSnapshot(docId: string): Promise<StoredSnapshot | null> {
    return this.run("loadSnapshot", docId, () => this.readSnapshot(docId));
  }

  load(docId: string): Promise<StoredDocument> {
    return this.run("load", docId, () => this.loadTx(docId));
  }

  saveSnapshot(
    docId: string,
    epoch: number,
    state: Uint8Array,
    uptoSeq: number,
    options: SaveSnapshotOptions = {},
  ): Promise<void> {
    const trimThrough = trimPoint(uptoSeq, options);
    return this.run("saveSnapshot", docId, () =>
      this.snapshotTx.immediate(docId, epoch, state, uptoSeq, trimThrough),
    );
  }

  commitOffset(docId: string, epoch: number, consumer: string, seq: number): Promise<void> {
    return this.run("commitOffset", docId, () => this.commitTx.immediate(docId, epoch, consumer, seq));
  }

  readOffsets(docId: string): Promise<Map<string, number>> {
    return this.run(
      "readOffsets",
      docId,
      () => new Map(this.stmts.offsets.all(docId).map((row) => [row.consumer, row.seq])),
    );
  }

  delete(docId: string): Promise<void> {
    return this.run("delete", docId, () => {
      this.db
        .transaction(() => {
          this.stmts.deleteOps.run(docId);
          this.stmts.deleteOffsets.run(docId);
          this.stmts.tombstone.run(docId);
        })
        .immediate();
    });
  }

  list(): Promise<string[]> {
    return this.run("list", undefined, () => this.stmts.list.all().map((row) => row.id));
  }

  ping(): Promise<void> {
    return this.run("ping", undefined, () => {
      this.stmts.ping.get();
    });
  }

  close(): Promise<void> {
    return this.run("close", undefined, () => {
      // Appends already handed to the store are committed, not dropped.
      if (this.db.open) this.flush();
      if (this.db.open) this.db.close();
    });
  }
}

/** A driver failure as STORAGE_UNAVAILABLE; FENCED and other coded errors pass as they are. */
function storageError(operation: string, docId: string | undefined, error: unknown): Error {
  if (isOpStreamError(error)) return error;
  return new OpStreamError(
    ErrorCodes.STORAGE_UNAVAILABLE,
    `SQLite ${operation} failed${docId === undefined ? "" : ` for document "${docId}"`}: ${String(error)}`,
    { operation, docId },
    error,
  );
}
