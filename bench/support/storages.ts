/**
 * The three server stores as benchmark backends: each runs its own server (or temp
 * folder) and hands out isolated locations that `opstream serve` and an in-process
 * store can both open, plus cheap copies so every cold load starts from the same
 * bytes (a load changes what it loaded: the server snapshots a long log right away).
 */
import Database from "better-sqlite3";
import { copyFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { Redis } from "ioredis";
import pg from "pg";
import {
  PostgresDocumentStore,
  RedisDocumentStore,
  SqliteDocumentStore,
  type DocumentStore,
} from "../../src/index.js";
import { startPostgres } from "../../spec/support/postgres.js";
import { startRedis } from "../../spec/support/redis.js";
import { tempDir } from "../../spec/support/temp.js";

/** One isolated place to keep documents. */
export interface Location {
  /** `opstream serve --storage <storage>` */
  readonly storage: string;
  /** Further `opstream serve` flags that select this location. */
  readonly args: readonly string[];
  /** A store on this location in the calling process; close it when done. */
  open(): DocumentStore;
}

export interface Backend {
  readonly name: string;
  /** The server or library version, for the results. */
  readonly version: string;
  /** A fresh, empty location; `label` is a lower-case identifier unique per backend. */
  create(label: string): Promise<Location>;
  /** A copy of location `from` as location `to`; nothing may have `from` open. */
  copy(from: string, to: string): Promise<Location>;
  /** Stops what the backend started. Idempotent. */
  stop(): Promise<void>;
}

export function sqliteBackend(): Promise<Backend> {
  const dir = tempDir("opstream-bench-");
  const probe = new Database(":memory:");
  const version = probe.prepare<[], { v: string }>("SELECT sqlite_version() AS v").get()?.v ?? "?";
  probe.close();
  const location = (label: string): Location => {
    const path = join(dir, `${label}.sqlite`);
    return { storage: path, args: [], open: () => new SqliteDocumentStore({ path }) };
  };
  return Promise.resolve({
    name: "sqlite",
    version: `SQLite ${version}`,
    create: (label) => Promise.resolve(location(label)),
    copy(from, to) {
      const source = location(from).storage;
      const target = location(to).storage;
      copyFileSync(source, target);
      // Closing the last connection checkpoints the WAL; copy it anyway should one remain.
      if (existsSync(`${source}-wal`)) copyFileSync(`${source}-wal`, `${target}-wal`);
      return Promise.resolve(location(to));
    },
    stop: () => Promise.resolve(),
  });
}

/** Locations are key prefixes (`<label>:`) in one redis-server of the backend's own. */
export async function redisBackend(): Promise<Backend> {
  const server = await startRedis();
  const admin = new Redis(server.url, { maxRetriesPerRequest: 0 });
  try {
    const info = await admin.info("server");
    const version = /redis_version:(\S+)/.exec(info)?.[1] ?? "?";
    const location = (label: string): Location => ({
      storage: server.url,
      args: ["--key-prefix", `${label}:`],
      open: () => new RedisDocumentStore({ connectionString: server.url, keyPrefix: `${label}:` }),
    });
    let stopped = false;
    return {
      name: "redis",
      version: `Redis ${version}`,
      create: (label) => Promise.resolve(location(label)),
      async copy(from, to) {
        const stream = admin.scanStream({ match: `${from}:*`, count: 1000 });
        for await (const keys of stream as AsyncIterable<string[]>) {
          for (const key of keys) await admin.copy(key, `${to}:${key.slice(from.length + 1)}`);
        }
        return location(to);
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        admin.disconnect();
        await server.stop();
      },
    };
  } catch (error) {
    admin.disconnect();
    await server.stop();
    throw error;
  }
}

/** Locations are databases of one Postgres server of the backend's own; copies use `CREATE DATABASE … TEMPLATE`. */
export async function postgresBackend(): Promise<Backend> {
  const server = await startPostgres();
  const admin = new pg.Client({ connectionString: server.url });
  try {
    await admin.connect();
    const { rows } = await admin.query<{ server_version: string }>("SHOW server_version");
    const url = (label: string): string => server.url.replace(/\/postgres$/, `/${label}`);
    const location = (label: string): Location => ({
      storage: url(label),
      args: [],
      open: () => new PostgresDocumentStore(url(label)),
    });
    let stopped = false;
    return {
      name: "postgres",
      version: `PostgreSQL ${rows[0]?.server_version ?? "?"}`,
      async create(label) {
        await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(label)}`);
        return location(label);
      },
      async copy(from, to) {
        const [source, target] = [pg.escapeIdentifier(from), pg.escapeIdentifier(to)];
        await admin.query(`CREATE DATABASE ${target} TEMPLATE ${source}`);
        return location(to);
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        await admin.end().finally(() => server.stop());
      },
    };
  } catch (error) {
    await admin.end().finally(() => server.stop());
    throw error;
  }
}
