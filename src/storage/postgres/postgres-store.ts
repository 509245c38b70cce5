import type pg from "pg";
import { loadPg } from "../../drivers.js";
import { ErrorCodes, OpStreamError, isOpStreamError } from "../../errors.js";
import { createDefaultLogger } from "../../logging/logger.js";
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
import { documentNotFound, trimPoint } from "../document-store.js";
import { assertEpoch } from "../fencing.js";
import { MAX_OPS_PER_INSERT, applyMigrations, insertOpsStatement, statements } from "./schema.js";
import { PostgresVersions } from "./versions.js";

/** Options of {@link PostgresDocumentStore}. */
export interface PostgresStoreOptions {
  /**
   * Where Postgres is, e.g. `postgres://user:password@host:5432/db`. Ignored when `pool` is given.
   * @default pg's defaults: the `PG*` environment variables, else localhost:5432
   */
  connectionString?: string;
  /**
   * A caller-owned pool to use instead of one of the store's own. `close()` never ends
   * it, and its connections keep their own settings (set `statement_timeout` in its config).
   * @default a pool of the store's own, made from `connectionString` and ended by `close()`
   */
  pool?: pg.Pool;
  /** The schema holding opstream's tables; created and migrated on first use. @default "public" */
  schema?: string;
  /** Most connections of the store's own pool. @default 10 */
  poolSize?: number;
  /**
   * `statement_timeout` and `idle_in_transaction_session_timeout` of the store's own
   * connections: a statement running longer, or waiting longer for a row lock, fails;
   * a session idle inside a transaction that long is ended by the server, so a node
   * paused mid-transaction (GC, VM stall, SIGSTOP) cannot hold a document's row lock
   * and block its successor. Also bounds the wait for a connection. 0 disables all three.
   * @default 5000
   */
  statementTimeoutMs?: number;
  /** Where errors of idle pooled connections are reported (pino-compatible). @default the default pino logger */
  logger?: { warn(context: object, message: string): void };
}

export const POSTGRES_STORE_DEFAULTS: Readonly<{
  schema: string;
  poolSize: number;
  statementTimeoutMs: number;
}> = Object.freeze({ schema: "public", poolSize: 10, statementTimeoutMs: 5000 });

interface DocRow {
  epoch: string;
  last_seq: string;
}
interface OpRow {
  seq: string;
  epoch: string;
  update: Buffer;
}
interface SnapshotRow {
  snapshot: Buffer | null;
  snapshot_seq: string;
  snapshot_epoch: string;
}

function invalid(option: string, value: unknown, why: string): OpStreamError {
  const message = `PostgresStoreOptions.${option} ${why}, got ${String(value)}.`;
  return new OpStreamError(ErrorCodes.INVALID_OPTION, message, { option, value });
}

/** A driver error's text; a refused "localhost" connection is an AggregateError with one error per address. */
function driverMessage(error: unknown): string {
  if (error instanceof AggregateError) return error.errors.map((inner) => String(inner)).join("; ");
  return error instanceof Error ? error.message : String(error);
}

/** STORAGE_UNAVAILABLE for a driver or connection failure; `driverCode` is pg's SQLSTATE or the socket's errno code. */
function unavailable(operation: string, docId: string | undefined, error: unknown): OpStreamError {
  const code = (error as { code?: unknown } | null)?.code;
  return new OpStreamError(
    ErrorCodes.STORAGE_UNAVAILABLE,
    `Postgres ${operation} failed${docId === undefined ? "" : ` for document "${docId}"`}: ${driverMessage(error)}`,
    { operation, docId, ...(typeof code === "string" ? { driverCode: code } : {}) },
    error,
  );
}

const toOp = (row: OpRow): StoredOp => ({
  seq: Number(row.seq),
  epoch: Number(row.epoch),
  update: new Uint8Array(row.update),
});

/**
 * A Postgres server as the system of record, shared by every node of a cluster.
 * Each fenced write is one transaction that locks the document's row, checks the
 * epoch and commits; the schema is created and migrated on first use.
 * pg returns `bigint` columns as strings; they are converted to numbers here.
 */
export class PostgresDocumentStore implements DocumentStore {
  readonly kind = "postgres";
  private readonly pool: pg.Pool;
  private readonly ownsPool: boolean;
  private readonly schemaName: string;
  private readonly schema: string;
  private readonly sql: ReturnType<typeof statements>;
  private readonly versions: PostgresVersions;
  private ready: Promise<void> | undefined;
  private closed = false;

  /** `new PostgresDocumentStore("postgres://…")` or `new PostgresDocumentStore({ … })`. */
  constructor(options: string | PostgresStoreOptions = {}) {
    const o = typeof options === "string" ? { connectionString: options } : options;
    const d = POSTGRES_STORE_DEFAULTS;
    this.schemaName = o.schema ?? d.schema;
    const poolSize = o.poolSize ?? d.poolSize;
    const statementTimeoutMs = o.statementTimeoutMs ?? d.statementTimeoutMs;
    if (this.schemaName === "") throw invalid("schema", '""', "must be a schema name");
    if (!Number.isInteger(poolSize) || poolSize < 1) {
      throw invalid("poolSize", poolSize, "must be an integer >= 1");
    }
    if (!Number.isInteger(statementTimeoutMs) || statementTimeoutMs < 0) {
      throw invalid("statementTimeoutMs", statementTimeoutMs, "must be a whole number of milliseconds >= 0");
    }
    const { Pool, escapeIdentifier } = loadPg();
    this.schema = escapeIdentifier(this.schemaName);
    this.sql = statements(this.schema);
    this.versions = new PostgresVersions(this.schema);
    this.ownsPool = o.pool === undefined;
    this.pool =
      o.pool ??
      new Pool({
        connectionString: o.connectionString,
        max: poolSize,
        // A startup parameter, so it holds for every statement on every connection.
        statement_timeout: statementTimeoutMs,
        idle_in_transaction_session_timeout: statementTimeoutMs,
        connectionTimeoutMillis: statementTimeoutMs,
        keepAlive: true,
        application_name: "opstream",
      });
    if (this.ownsPool) {
      // pg emits this when an idle pooled connection dies (server restart, network);
      // the pool has dropped it and the next operation connects again or fails coded.
      const logger = o.logger ?? createDefaultLogger();
      this.pool.on("error", (error) =>
        logger.warn({ err: error, schema: this.schemaName }, "postgres idle connection failed"),
      );
    }
  }

  /** Creates/migrates the schema once per store; a failed attempt is retried by the next call. */
  private ensureSchema(): Promise<void> {
    this.ready ??= this.transaction("READ COMMITTED", (client) =>
      applyMigrations(client, this.schemaName, this.schema),
    ).catch((error: unknown) => {
      this.ready = undefined;
      throw error;
    });
    return this.ready;
  }

  /** Runs `work` once the schema is ready; driver failures become STORAGE_UNAVAILABLE (FENCED passes). */
  private async run<T>(operation: string, docId: string | undefined, work: () => Promise<T>): Promise<T> {
    try {
      await this.ensureSchema();
      return await work();
    } catch (error) {
      throw isOpStreamError(error) ? error : unavailable(operation, docId, error);
    }
  }

  /** One transaction on one pooled connection; a connection that cannot roll back is discarded. */
  private async transaction<T>(
    isolation: "READ COMMITTED" | "REPEATABLE READ READ ONLY",
    work: (client: pg.PoolClient) => Promise<T>,
  ): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    // pg-pool removes its error listener while a client is checked out. A connection
    // that dies between two statements (the server ended an idle transaction of a
    // paused node, a network cut) would then emit an unhandled "error" and crash
    // the process: record it instead; the next statement fails with it anyway.
    const onError = (error: Error): void => {
      broken = error;
    };
    client.on("error", onError);
    try {
      await client.query(`BEGIN ISOLATION LEVEL ${isolation}`);
      const result = await work(client);
      await client.query("COMMIT");
      return result;
    } catch (error) {
      // The original error is what the caller needs; a failed ROLLBACK only means the
      // connection is unusable, so it is destroyed instead of returned to the pool.
      await client.query("ROLLBACK").catch((rollbackError: unknown) => {
        broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
      });
      throw error;
    } finally {
      client.off("error", onError);
      client.release(broken);
    }
  }

  /** Locks the document's row and throws FENCED unless `epoch` is current; returns the row's last seq. */
  private async lockEpoch(client: pg.PoolClient, docId: string, epoch: number): Promise<number> {
    const { rows } = await client.query<DocRow>(this.sql.lock, [docId]);
    const row = rows[0];
    assertEpoch(docId, epoch, row ? Number(row.epoch) : 0);
    return row ? Number(row.last_seq) : 0;
  }

  private async readSnapshot(client: pg.ClientBase | pg.Pool, docId: string): Promise<StoredSnapshot | null> {
    const { rows } = await client.query<SnapshotRow>(this.sql.snapshot, [docId]);
    const row = rows[0];
    if (!row?.snapshot) return null;
    return {
      seq: Number(row.snapshot_seq),
      epoch: Number(row.snapshot_epoch),
      state: new Uint8Array(row.snapshot),
    };
  }

  private async readOpsWith(
    client: pg.ClientBase | pg.Pool,
    docId: string,
    afterSeq: number,
  ): Promise<StoredOp[]> {
    const { rows } = await client.query<OpRow>(this.sql.ops, [docId, afterSeq]);
    return rows.map(toOp);
  }

  claimEpoch(docId: string, options: ClaimEpochOptions = {}): Promise<number> {
    return this.run("claimEpoch", docId, async () => {
      const statement = options.mustExist ? this.sql.claimExisting : this.sql.claim;
      const { rows } = await this.pool.query<{ epoch: string }>(statement, [docId, options.atLeast ?? 0]);
      if (!rows[0]) {
        if (options.mustExist) throw documentNotFound(docId);
        throw new Error("claim returned no row");
      }
      return Number(rows[0].epoch);
    });
  }

  append(docId: string, epoch: number, updates: readonly Uint8Array[]): Promise<number[]> {
    return this.run("append", docId, () =>
      this.transaction("READ COMMITTED", async (client) => {
        const lastSeq = await this.lockEpoch(client, docId, epoch);
        for (let start = 0; start < updates.length; start += MAX_OPS_PER_INSERT) {
          const chunk = updates.slice(start, start + MAX_OPS_PER_INSERT);
          await client.query(insertOpsStatement(this.schema, chunk.length), [
            docId,
            lastSeq + start,
            epoch,
            ...chunk,
          ]);
        }
        await client.query(this.sql.setLastSeq, [docId, lastSeq + updates.length]);
        return updates.map((_, i) => lastSeq + i + 1);
      }),
    );
  }

  readOps(docId: string, afterSeq: number): Promise<StoredOp[]> {
    return this.run("readOps", docId, () => this.readOpsWith(this.pool, docId, afterSeq));
  }

  loadSnapshot(docId: string): Promise<StoredSnapshot | null> {
    return this.run("loadSnapshot", docId, () => this.readSnapshot(this.pool, docId));
  }

  load(docId: string): Promise<StoredDocument> {
    // REPEATABLE READ: both reads see one snapshot, so a concurrent trim cannot drop
    // ops between reading the snapshot row and reading the ops after it.
    return this.run("load", docId, () =>
      this.transaction("REPEATABLE READ READ ONLY", async (client) => {
        const snapshot = await this.readSnapshot(client, docId);
        return { snapshot, ops: await this.readOpsWith(client, docId, snapshot?.seq ?? 0) };
      }),
    );
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
      this.transaction("READ COMMITTED", async (client) => {
        await this.lockEpoch(client, docId, epoch);
        await client.query(this.sql.saveSnapshot, [docId, state, uptoSeq, epoch]);
        await client.query(this.sql.trim, [docId, trimThrough]);
      }),
    );
  }

  commitOffset(docId: string, epoch: number, consumer: string, seq: number): Promise<void> {
    return this.run("commitOffset", docId, () =>
      this.transaction("READ COMMITTED", async (client) => {
        await this.lockEpoch(client, docId, epoch);
        await client.query(this.sql.commitOffset, [docId, consumer, seq]);
      }),
    );
  }

  readOffsets(docId: string): Promise<Map<string, number>> {
    return this.run("readOffsets", docId, async () => {
      const { rows } = await this.pool.query<{ consumer: string; seq: string }>(this.sql.offsets, [docId]);
      return new Map(rows.map((row) => [row.consumer, Number(row.seq)]));
    });
  }

  /** Fenced like an append: the document's row lock and epoch check, then the insert, in one transaction. */
  saveVersion(docId: string, epoch: number, version: NewVersion): Promise<VersionInfo> {
    return this.run("saveVersion", docId, () =>
      this.transaction("READ COMMITTED", async (client) => {
        await this.lockEpoch(client, docId, epoch);
        return this.versions.insert(client, docId, epoch, version);
      }),
    );
  }

  listVersions(docId: string): Promise<VersionInfo[]> {
    return this.run("listVersions", docId, () => this.versions.list(this.pool, docId));
  }

  loadVersion(docId: string, id: number): Promise<StoredVersion | null> {
    return this.run("loadVersion", docId, () => this.versions.load(this.pool, docId, id));
  }

  dropVersions(docId: string, epoch: number, ids: readonly number[]): Promise<void> {
    return this.run("dropVersions", docId, () =>
      this.transaction("READ COMMITTED", async (client) => {
        await this.lockEpoch(client, docId, epoch);
        await this.versions.drop(client, docId, ids);
      }),
    );
  }

  delete(docId: string): Promise<void> {
    // The row lock orders the delete after any append in flight, so none of its ops survive.
    return this.run("delete", docId, () =>
      this.transaction("READ COMMITTED", async (client) => {
        await client.query(this.sql.lock, [docId]);
        await client.query(this.sql.deleteOps, [docId]);
        await client.query(this.sql.deleteOffsets, [docId]);
        await this.versions.deleteAll(client, docId);
        await client.query(this.sql.tombstone, [docId]);
      }),
    );
  }

  list(): Promise<string[]> {
    return this.run("list", undefined, async () => {
      const { rows } = await this.pool.query<{ id: string }>(this.sql.list);
      return rows.map((row) => row.id);
    });
  }

  ping(): Promise<void> {
    // Not through run(): a ping answers whether the server does, migrated or not.
    return this.pool.query("SELECT 1").then(
      () => undefined,
      (error: unknown) => {
        throw unavailable("ping", undefined, error);
      },
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.ownsPool) return;
    try {
      await this.pool.end();
    } catch (error) {
      throw unavailable("close", undefined, error);
    }
  }
}
