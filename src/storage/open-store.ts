import type { DocumentStore } from "./document-store.js";

/**
 * What a `--storage` value names: a redis:// (rediss://) or redis-cluster:// URL
 * (one Redis server or a Redis Cluster), a postgres:// (postgresql://) URL, else a
 * SQLite file. Both Redis forms are the Redis store: its `connectionString` tells
 * them apart.
 */
export function storageKind(storage: string): "redis" | "postgres" | "sqlite" {
  if (/^(rediss?|redis-cluster):\/\//.test(storage)) return "redis";
  if (/^postgres(ql)?:\/\//.test(storage)) return "postgres";
  return "sqlite";
}

/** Options of {@link openStore}, for the CLI's tools that open a store outside a server. */
export interface OpenStoreOptions {
  /** Key prefix of Redis storage (what `opstream serve --key-prefix` was given). @default the Redis store's default, "opstream:" */
  keyPrefix?: string;
}

/**
 * Opens the store a `--storage` value names, the way `opstream serve` reads it.
 * The driver's module is loaded only for the kind named. SQLite is written on the
 * calling thread: a one-shot tool has no event loop to keep free.
 */
export async function openStore(storage: string, options: OpenStoreOptions = {}): Promise<DocumentStore> {
  switch (storageKind(storage)) {
    case "redis": {
      const { RedisDocumentStore } = await import("./redis/redis-store.js");
      return new RedisDocumentStore({
        connectionString: storage,
        ...(options.keyPrefix === undefined ? {} : { keyPrefix: options.keyPrefix }),
      });
    }
    case "postgres": {
      const { PostgresDocumentStore } = await import("./postgres/postgres-store.js");
      return new PostgresDocumentStore(storage);
    }
    case "sqlite": {
      const { SqliteDocumentStore } = await import("./sqlite/sqlite-store.js");
      return new SqliteDocumentStore({ path: storage, writerThread: false });
    }
  }
}
