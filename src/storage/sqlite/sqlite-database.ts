import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { ErrorCodes, OpStreamError, isOpStreamError } from "../../errors.js";
import {
  decodeVersionMeta,
  documentNotFound,
  encodeVersionMeta,
  type NewVersion,
  type StoredDocument,
  type StoredOp,
  type StoredSnapshot,
  type StoredVersion,
  type VersionInfo,
} from "../document-store.js";
import { assertEpoch } from "../fencing.js";
import { versionInfo } from "../version-info.js";

// `documents.epoch`/`last_seq` outlive a delete (`live = 0`) so fencing holds across re-creation.
// Every statement is IF NOT EXISTS, so a file made by an older release gains the tables
// it lacks when it is opened. `versions.id` is AUTOINCREMENT: SQLite never hands an id
// out twice, not even after the rows holding the highest ids were deleted, so a
// document's version ids keep increasing across a delete and re-creation. `meta` is
// `encodeVersionMeta`'s JSON (kind, name, clients, authors, restoredFrom).
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
CREATE TABLE IF NOT EXISTS versions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  doc_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  epoch INTEGER NOT NULL,
  time INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  meta TEXT NOT NULL,
  state BLOB NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS versions_by_doc ON versions (doc_id, id);
`;

interface DocRow {
  epoch: number;
  last_seq: number;
}
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
interface VersionRow {
  id: number;
  seq: number;
  epoch: number;
  time: number;
  bytes: number;
  meta: string;
}

const toVersionInfo = ({ id, seq, epoch, time, bytes, meta }: VersionRow): VersionInfo => ({
  id,
  seq,
  epoch,
  time,
  bytes,
  ...decodeVersionMeta(meta),
});

/**
 * One write of a group commit: an append, or an epoch claim (a mass takeover
 * claims dozens of documents at once, and each claim alone would cost an fsync).
 */
export type GroupedWrite =
  | {
      readonly op: "append";
      readonly docId: string;
      readonly epoch: number;
      readonly updates: readonly Uint8Array[];
    }
  | {
      readonly op: "claimEpoch";
      readonly docId: string;
      readonly atLeast: number;
      readonly mustExist: boolean;
    };

/** What one write of a group commit came to, inside the shared transaction: an append's seqs, a claim's epoch. */
export type GroupOutcome = { value: number[] | number } | { error: unknown };

/**
 * One connection to a SQLite file, with the store's statements and transactions,
 * all synchronous (better-sqlite3). The store reads through one on its own thread
 * and writes through one on a writer thread (or the same one, inline).
 */
export class SqliteDatabase {
  private readonly db: Database.Database;
  private readonly stmts;
  // IMMEDIATE transactions: several connections may share one file (the writer
  // thread, or a cluster's processes on one machine), and the epoch check must hold
  // the write lock before it reads.
  private readonly appendTx: Database.Transaction<
    (docId: string, epoch: number, updates: readonly Uint8Array[]) => number[]
  >;
  private readonly groupTx: Database.Transaction<
    (group: readonly GroupedWrite[], outcomes: GroupOutcome[]) => void
  >;
  private readonly snapshotTx: Database.Transaction<
    (docId: string, epoch: number, state: Uint8Array, uptoSeq: number, trimThrough: number) => void
  >;
  private readonly commitTx: Database.Transaction<
    (docId: string, epoch: number, consumer: string, seq: number) => void
  >;
  private readonly saveVersionTx: Database.Transaction<
    (docId: string, epoch: number, version: NewVersion) => VersionInfo
  >;
  private readonly dropVersionsTx: Database.Transaction<
    (docId: string, epoch: number, ids: readonly number[]) => void
  >;
  private readonly deleteTx: Database.Transaction<(docId: string) => void>;
  private readonly claimTx: Database.Transaction<
    (docId: string, atLeast: number, mustExist: boolean) => number
  >;
  private readonly loadTx: Database.Transaction<(docId: string) => StoredDocument>;

  constructor(path: string, synchronous: "full" | "normal" = "full") {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma(`synchronous = ${synchronous === "normal" ? "NORMAL" : "FULL"}`);
    this.db.pragma("busy_timeout = 5000");
    this.db.exec(SCHEMA);
    const db = this.db;
    this.stmts = {
      claim: db.prepare<[string, number, number], { epoch: number }>(
        `INSERT INTO documents (id, epoch) VALUES (?, MAX(1, ?))
         ON CONFLICT(id) DO UPDATE SET epoch = MAX(epoch + 1, ?), live = 1 RETURNING epoch`,
      ),
      // One statement: the existence check and the claim cannot be split by a delete.
      claimExisting: db.prepare<[number, string], { epoch: number }>(
        "UPDATE documents SET epoch = MAX(epoch + 1, ?) WHERE id = ? AND live = 1 RETURNING epoch",
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
      insertVersion: db.prepare<[string, number, number, number, number, string, Uint8Array], { id: number }>(
        `INSERT INTO versions (doc_id, seq, epoch, time, bytes, meta, state) VALUES (?, ?, ?, ?, ?, ?, ?)
         RETURNING id`,
      ),
      versions: db.prepare<[string], VersionRow>(
        "SELECT id, seq, epoch, time, bytes, meta FROM versions WHERE doc_id = ? ORDER BY id",
      ),
      version: db.prepare<[string, number], VersionRow & { state: Buffer }>(
        "SELECT id, seq, epoch, time, bytes, meta, state FROM versions WHERE doc_id = ? AND id = ?",
      ),
      dropVersion: db.prepare<[string, number]>("DELETE FROM versions WHERE doc_id = ? AND id = ?"),
      deleteVersions: db.prepare<[string]>("DELETE FROM versions WHERE doc_id = ?"),
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
    this.groupTx = db.transaction((group: readonly GroupedWrite[], outcomes: GroupOutcome[]) => {
      for (const entry of group) {
        try {
          // Nested: better-sqlite3 runs it in a savepoint, undone alone when it throws.
          outcomes.push({
            value:
              entry.op === "append"
                ? this.appendTx(entry.docId, entry.epoch, entry.updates)
                : this.claimTx(entry.docId, entry.atLeast, entry.mustExist),
          });
        } catch (error) {
          // FENCED, DOCUMENT_NOT_FOUND and other coded errors belong to this write; anything else
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
    this.saveVersionTx = db.transaction((docId: string, epoch: number, version: NewVersion) => {
      assertEpoch(docId, epoch, this.stmts.doc.get(docId)?.epoch ?? 0);
      const { seq, time, state } = version;
      const meta = encodeVersionMeta(version);
      const row = this.stmts.insertVersion.get(docId, seq, epoch, time, state.byteLength, meta, state);
      if (!row) throw new Error("version insert returned no row");
      return versionInfo(row.id, epoch, version);
    });
    this.dropVersionsTx = db.transaction((docId: string, epoch: number, ids: readonly number[]) => {
      assertEpoch(docId, epoch, this.stmts.doc.get(docId)?.epoch ?? 0);
      for (const id of ids) this.stmts.dropVersion.run(docId, id);
    });
    this.loadTx = db.transaction((docId: string): StoredDocument => {
      const snapshot = this.readSnapshot(docId);
      return { snapshot, ops: this.readOps(docId, snapshot?.seq ?? 0) };
    });
    this.claimTx = db.transaction((docId: string, atLeast: number, mustExist: boolean) =>
      this.claimNow(docId, atLeast, mustExist),
    );
    this.deleteTx = db.transaction((docId: string) => {
      this.stmts.deleteOps.run(docId);
      this.stmts.deleteOffsets.run(docId);
      this.stmts.deleteVersions.run(docId);
      this.stmts.tombstone.run(docId);
    });
  }

  get open(): boolean {
    return this.db.open;
  }

  /** See `ClaimEpochOptions`; `mustExist` throws DOCUMENT_NOT_FOUND and writes nothing when the document is missing or deleted. */
  private claimNow(docId: string, atLeast: number, mustExist: boolean): number {
    if (mustExist) {
      const row = this.stmts.claimExisting.get(atLeast, docId);
      if (!row) throw documentNotFound(docId);
      return row.epoch;
    }
    const row = this.stmts.claim.get(docId, atLeast, atLeast);
    if (!row) throw new Error("claim returned no row");
    return row.epoch;
  }

  /** Commits `group` in one transaction; an outcome per write, or a throw when nothing committed. */
  writeGroup(group: readonly GroupedWrite[]): GroupOutcome[] {
    const outcomes: GroupOutcome[] = [];
    this.groupTx.immediate(group, outcomes);
    return outcomes;
  }

  saveSnapshot(docId: string, epoch: number, state: Uint8Array, uptoSeq: number, trimThrough: number): void {
    this.snapshotTx.immediate(docId, epoch, state, uptoSeq, trimThrough);
  }

  commitOffset(docId: string, epoch: number, consumer: string, seq: number): void {
    this.commitTx.immediate(docId, epoch, consumer, seq);
  }

  saveVersion(docId: string, epoch: number, version: NewVersion): VersionInfo {
    return this.saveVersionTx.immediate(docId, epoch, version);
  }

  dropVersions(docId: string, epoch: number, ids: readonly number[]): void {
    this.dropVersionsTx.immediate(docId, epoch, ids);
  }

  delete(docId: string): void {
    this.deleteTx.immediate(docId);
  }

  load(docId: string): StoredDocument {
    return this.loadTx(docId);
  }

  readSnapshot(docId: string): StoredSnapshot | null {
    const row = this.stmts.snapshot.get(docId);
    if (!row?.snapshot) return null;
    return { seq: row.snapshot_seq, epoch: row.snapshot_epoch, state: new Uint8Array(row.snapshot) };
  }

  readOps(docId: string, afterSeq: number): StoredOp[] {
    return this.stmts.ops
      .all(docId, afterSeq)
      .map((row) => ({ seq: row.seq, epoch: row.epoch, update: new Uint8Array(row.update) }));
  }

  readOffsets(docId: string): Map<string, number> {
    return new Map(this.stmts.offsets.all(docId).map((row) => [row.consumer, row.seq]));
  }

  listVersions(docId: string): VersionInfo[] {
    return this.stmts.versions.all(docId).map(toVersionInfo);
  }

  loadVersion(docId: string, id: number): StoredVersion | null {
    const row = this.stmts.version.get(docId, id);
    return row ? { ...toVersionInfo(row), state: new Uint8Array(row.state) } : null;
  }

  list(): string[] {
    return this.stmts.list.all().map((row) => row.id);
  }

  ping(): void {
    this.stmts.ping.get();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

/** A driver failure as STORAGE_UNAVAILABLE; FENCED and other coded errors pass as they are. */
export function storageError(operation: string, docId: string | undefined, error: unknown): Error {
  if (isOpStreamError(error)) return error;
  return new OpStreamError(
    ErrorCodes.STORAGE_UNAVAILABLE,
    `SQLite ${operation} failed${docId === undefined ? "" : ` for document "${docId}"`}: ${String(error)}`,
    { operation, docId },
    error,
  );
}
