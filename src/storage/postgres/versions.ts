import type pg from "pg";
import {
  decodeVersionMeta,
  encodeVersionMeta,
  type NewVersion,
  type StoredVersion,
  type VersionInfo,
} from "../document-store.js";
import { versionInfo } from "../version-info.js";

/*
 * The version part of PostgresDocumentStore: the `versions` table (migration 2 in
 * schema.ts). The store runs the writes inside its fenced transactions, after the
 * document's row lock and epoch check; reads go straight to the pool.
 */

interface VersionRow {
  id: string;
  seq: string;
  epoch: string;
  time_ms: string;
  bytes: string;
  meta: string;
}

const COLUMNS = "id, seq, epoch, time_ms, bytes, meta";

const toInfo = (row: VersionRow): VersionInfo => ({
  id: Number(row.id),
  seq: Number(row.seq),
  epoch: Number(row.epoch),
  time: Number(row.time_ms),
  bytes: Number(row.bytes),
  ...decodeVersionMeta(row.meta),
});

/** Ids a bigint column can hold; any other (fractional, too large) names no version. */
const isId = (id: number): boolean => Number.isSafeInteger(id) && id > 0;

/** The version statements of the quoted schema `s`. */
export class PostgresVersions {
  private readonly sql;

  constructor(s: string) {
    this.sql = {
      insert: `INSERT INTO ${s}.versions (doc_id, seq, epoch, time_ms, bytes, meta, state)
               VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
      list: `SELECT ${COLUMNS} FROM ${s}.versions WHERE doc_id = $1 ORDER BY id`,
      load: `SELECT ${COLUMNS}, state FROM ${s}.versions WHERE doc_id = $1 AND id = $2`,
      drop: `DELETE FROM ${s}.versions WHERE doc_id = $1 AND id = ANY($2::bigint[])`,
      deleteAll: `DELETE FROM ${s}.versions WHERE doc_id = $1`,
    } as const;
  }

  /** Inserts `version`; the caller holds the document's row lock and has checked `epoch`. */
  async insert(
    client: pg.ClientBase,
    docId: string,
    epoch: number,
    version: NewVersion,
  ): Promise<VersionInfo> {
    const { seq, time, state } = version;
    const { rows } = await client.query<{ id: string }>(this.sql.insert, [
      docId,
      seq,
      epoch,
      time,
      state.byteLength,
      encodeVersionMeta(version),
      state,
    ]);
    if (!rows[0]) throw new Error("version insert returned no row");
    return versionInfo(Number(rows[0].id), epoch, version);
  }

  async list(pool: pg.Pool, docId: string): Promise<VersionInfo[]> {
    const { rows } = await pool.query<VersionRow>(this.sql.list, [docId]);
    return rows.map(toInfo);
  }

  async load(pool: pg.Pool, docId: string, id: number): Promise<StoredVersion | null> {
    if (!isId(id)) return null;
    const { rows } = await pool.query<VersionRow & { state: Buffer }>(this.sql.load, [docId, id]);
    const row = rows[0];
    return row ? { ...toInfo(row), state: new Uint8Array(row.state) } : null;
  }

  /** Deletes the versions `ids` (one statement); the caller holds the row lock and has checked the epoch. */
  async drop(client: pg.ClientBase, docId: string, ids: readonly number[]): Promise<void> {
    const known = ids.filter(isId);
    if (known.length > 0) await client.query(this.sql.drop, [docId, known]);
  }

  /** Deletes every version of the document (its delete). */
  async deleteAll(client: pg.ClientBase, docId: string): Promise<void> {
    await client.query(this.sql.deleteAll, [docId]);
  }
}
