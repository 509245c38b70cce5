import { createHash } from "node:crypto";
import type pg from "pg";

/** One schema change. Versions are applied in order, each once, and never edited after release. */
export interface Migration {
  readonly version: number;
  /** The DDL, given the quoted schema name (e.g. `"public"`). */
  readonly sql: (schema: string) => string;
}

// `documents.epoch`/`last_seq` outlive a delete (`live = false`) so fencing holds across
// re-creation. Ids use the "C" collation so `list()` sorts by bytes whatever the
// database's locale (as SQLite and JavaScript do for ASCII ids).
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: (s) => `
CREATE TABLE ${s}.documents (
  id text COLLATE "C" PRIMARY KEY,
  epoch bigint NOT NULL DEFAULT 0,
  last_seq bigint NOT NULL DEFAULT 0,
  live boolean NOT NULL DEFAULT true,
  snapshot bytea,
  snapshot_seq bigint NOT NULL DEFAULT 0,
  snapshot_epoch bigint NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE ${s}.ops (
  doc_id text COLLATE "C" NOT NULL,
  seq bigint NOT NULL,
  epoch bigint NOT NULL,
  "update" bytea NOT NULL,
  PRIMARY KEY (doc_id, seq)
);
CREATE TABLE ${s}.consumer_offsets (
  doc_id text COLLATE "C" NOT NULL,
  consumer text NOT NULL,
  seq bigint NOT NULL,
  PRIMARY KEY (doc_id, consumer)
);`,
  },
  // Document history. The identity never hands an id out twice (a sequence), so a
  // document's version ids keep increasing across a delete and re-creation; its
  // sequence needs no grant of its own. `meta` is `encodeVersionMeta`'s JSON.
  {
    version: 2,
    sql: (s) => `
CREATE TABLE ${s}.versions (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  doc_id text COLLATE "C" NOT NULL,
  seq bigint NOT NULL,
  epoch bigint NOT NULL,
  time_ms bigint NOT NULL,
  bytes bigint NOT NULL,
  meta text NOT NULL,
  state bytea NOT NULL
);
CREATE INDEX versions_doc_id_id ON ${s}.versions (doc_id, id);`,
  },
];

/** The advisory lock key of one schema's migrations: nodes migrating other schemas do not wait. */
function lockKey(schemaName: string): string {
  return createHash("sha256")
    .update(`opstream:migrations:${schemaName}`)
    .digest()
    .readBigInt64BE(0)
    .toString();
}

/**
 * Creates the schema and applies the missing migrations. Run it inside one
 * transaction: it takes a transaction-scoped advisory lock first, so nodes starting
 * together queue on it and each later one finds the versions already recorded. The
 * DDL runs only when needed, so a role without CREATE privilege works on a schema
 * migrated beforehand.
 */
export async function applyMigrations(
  client: pg.ClientBase,
  schemaName: string,
  schema: string,
): Promise<void> {
  await client.query("SELECT pg_advisory_xact_lock($1::bigint)", [lockKey(schemaName)]);
  // CREATE ... IF NOT EXISTS checks the CREATE privilege before the existence, so look first.
  const exists = await client.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [schemaName]);
  if (exists.rowCount === 0) await client.query(`CREATE SCHEMA ${schema}`);
  const table = await client.query<{ present: boolean }>("SELECT to_regclass($1) IS NOT NULL AS present", [
    `${schema}.opstream_schema_migrations`,
  ]);
  if (table.rows[0]?.present !== true) {
    await client.query(
      `CREATE TABLE ${schema}.opstream_schema_migrations (
         version int PRIMARY KEY,
         applied_at timestamptz NOT NULL DEFAULT now()
       )`,
    );
  }
  const applied = await client.query<{ version: number }>(
    `SELECT version FROM ${schema}.opstream_schema_migrations`,
  );
  const done = new Set(applied.rows.map((row) => row.version));
  for (const migration of MIGRATIONS) {
    if (done.has(migration.version)) continue;
    await client.query(migration.sql(schema));
    await client.query(`INSERT INTO ${schema}.opstream_schema_migrations (version) VALUES ($1)`, [
      migration.version,
    ]);
  }
}

/** Every statement of the store, on the quoted schema `s`. */
export function statements(s: string) {
  return {
    claim: `INSERT INTO ${s}.documents (id, epoch) VALUES ($1, GREATEST(1, $2::bigint))
            ON CONFLICT (id) DO UPDATE
            SET epoch = GREATEST(documents.epoch + 1, $2::bigint), live = true, updated_at = now()
            RETURNING epoch`,
    // One statement: the existence check and the claim cannot be split by a delete.
    claimExisting: `UPDATE ${s}.documents SET epoch = GREATEST(epoch + 1, $2::bigint), updated_at = now()
                    WHERE id = $1 AND live RETURNING epoch`,
    // Every fenced write takes the document's row lock first: a concurrent claim (or
    // another write) waits for it, so the epoch checked is the epoch at commit.
    lock: `SELECT epoch, last_seq FROM ${s}.documents WHERE id = $1 FOR UPDATE`,
    setLastSeq: `UPDATE ${s}.documents SET last_seq = $2, updated_at = now() WHERE id = $1`,
    ops: `SELECT seq, epoch, "update" FROM ${s}.ops WHERE doc_id = $1 AND seq > $2 ORDER BY seq`,
    snapshot: `SELECT snapshot, snapshot_seq, snapshot_epoch FROM ${s}.documents WHERE id = $1`,
    saveSnapshot: `UPDATE ${s}.documents
                   SET snapshot = $2, snapshot_seq = $3, snapshot_epoch = $4, updated_at = now()
                   WHERE id = $1`,
    trim: `DELETE FROM ${s}.ops WHERE doc_id = $1 AND seq <= $2`,
    commitOffset: `INSERT INTO ${s}.consumer_offsets AS o (doc_id, consumer, seq) VALUES ($1, $2, $3)
                   ON CONFLICT (doc_id, consumer) DO UPDATE SET seq = GREATEST(o.seq, excluded.seq)`,
    offsets: `SELECT consumer, seq FROM ${s}.consumer_offsets WHERE doc_id = $1`,
    deleteOps: `DELETE FROM ${s}.ops WHERE doc_id = $1`,
    deleteOffsets: `DELETE FROM ${s}.consumer_offsets WHERE doc_id = $1`,
    tombstone: `UPDATE ${s}.documents
                SET live = false, snapshot = NULL, snapshot_seq = 0, snapshot_epoch = 0, updated_at = now()
                WHERE id = $1`,
    list: `SELECT id FROM ${s}.documents WHERE live ORDER BY id`,
  } as const;
}

/**
 * One multi-row INSERT of `count` ops: `$1` doc id, `$2` the last seq before the
 * batch, `$3` epoch, then one bytea parameter per op (sent in binary, not escaped).
 */
export function insertOpsStatement(s: string, count: number): string {
  const rows = Array.from({ length: count }, (_, i) => `($1, $2::bigint + ${i + 1}, $3, $${i + 4})`);
  return `INSERT INTO ${s}.ops (doc_id, seq, epoch, "update") VALUES ${rows.join(", ")}`;
}

/** The protocol allows 65535 parameters per statement; larger batches are split (still one transaction). */
export const MAX_OPS_PER_INSERT = 65_000;
