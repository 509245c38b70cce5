import type { Cluster, Redis } from "ioredis";
import type { RedisClusterNode } from "./cluster-url.js";

/** Options of `RedisDocumentStore` (redis-store.ts). */
export interface RedisStoreOptions {
  /**
   * Where Redis is, e.g. `redis://:password@host:6379/0`, or a Redis Cluster:
   * `redis-cluster://[[user]:password@]host:port[,host:port…]` (one or more of its
   * nodes). Ignored when `redis` or `cluster` is given.
   * @default "redis://127.0.0.1:6379"
   */
  connectionString?: string;
  /**
   * Prepended to every key: `<prefix>ops:<docId>`, `<prefix>meta:<docId>`, `<prefix>docs`…
   * (on a Redis Cluster `<prefix>ops:{<docId>}`…, and it may not contain `{` or `}`).
   * @default "opstream:"
   */
  keyPrefix?: string;
  /**
   * Seed nodes of a Redis Cluster, e.g. `[{ host: "10.0.0.1", port: 7000 }]`: the
   * store opens an ioredis `Cluster` on them (it finds the other nodes itself) and
   * keys each document with a hash tag. For credentials write a `redis-cluster://`
   * `connectionString` instead; for TLS or NAT mapping pass your own `Cluster` as `redis`.
   * @default none: one Redis server, from `connectionString`
   */
  cluster?: readonly RedisClusterNode[];
  /**
   * A caller-owned ioredis client: a `Redis`, or a `Cluster` for cluster mode. The
   * store defines its scripts on it and never quits it. `commandTimeoutMs` does not
   * apply to it: create it with `commandTimeout` (a Cluster: in `redisOptions`) and
   * `maxRetriesPerRequest: 0` so calls fail instead of waiting in ioredis's offline
   * queue while Redis is unreachable.
   * @default a client of its own, made from `cluster` or `connectionString` and quit on close
   */
  redis?: Redis | Cluster;
  /**
   * How long a call waits for Redis (also while disconnected) before failing with
   * STORAGE_UNAVAILABLE. Applies to the store's own client.
   * @default 5000
   */
  commandTimeoutMs?: number;
}

export const REDIS_STORE_DEFAULTS: Readonly<{
  connectionString: string;
  keyPrefix: string;
  commandTimeoutMs: number;
}> = Object.freeze({
  connectionString: "redis://127.0.0.1:6379",
  keyPrefix: "opstream:",
  commandTimeoutMs: 5000,
});
