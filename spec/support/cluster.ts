import { randomUUID } from "node:crypto";
import { join } from "node:path";
import {
  PostgresDocumentStore,
  RedisDocumentStore,
  SqliteDocumentStore,
  type DocumentStore,
} from "../../src/index.js";
import { FaultProxy } from "./fault-proxy.js";
import { MANAGEMENT_TOKEN } from "./management.js";
import { freshDatabase, sharedPostgres } from "./postgres.js";
import { spawnServer, type ServerProcess } from "./process.js";
import { startRedis, type RedisServer } from "./redis.js";
import type { RedisCluster } from "./redis-cluster.js";
import { tempDir } from "./temp.js";

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  /**
   * Ownership lease TTL of every node (short in failure specs); `"default"` passes
   * no flag, so nodes run at the CLI's default, as users do. @default 3000
   */
  leaseTtlMs?: number | "default";
  /** Timeout of each proxied request; `"default"` passes no flag. @default 2000 */
  requestTimeoutMs?: number | "default";
  /** An already running redis-server to share (each cluster still gets its own key prefix). */
  redis?: RedisServer;
  /**
   * Run the backplane on this Redis Cluster (`--redis-cluster`) instead of a
   * redis-server; the cluster then has no `redis` (not with `faults`). @default none
   */
  redisCluster?: RedisCluster;
  /**
   * Where documents live: one SQLite file, a Redis of its own (not the backplane's,
   * which specs restart), or a fresh database on the suite's Postgres. @default "sqlite"
   */
  storage?: StorageKind;
  /**
   * Serve the sample editor pages (samples/editor/public) from every node, for
   * browser specs; other specs leave it off (`--no-sample`). @default false
   */
  sample?: boolean;
  /**
   * More CLI arguments for every node. Nodes get `--management-token
   * MANAGEMENT_TOKEN` unless these name one (ownersOf reads `/healthz?doc`, which
   * needs it). @default none
   */
  extraArgs?: readonly string[];
  /**
   * Put a {@link FaultProxy} between each node and Redis, and between each node and
   * a server store (one per node and link), so specs can break those links. @default false
   */
  faults?: boolean;
}

/** The storage backends cluster specs run on. */
export type StorageKind = "sqlite" | "redis" | "postgres";

/** n real `opstream serve` processes sharing a real redis-server (or Redis Cluster) and one SQLite file. */
export interface Cluster {
  readonly nodes: ServerProcess[];
  /** The backplane's redis-server; throws for a cluster on a Redis Cluster. */
  readonly redis: RedisServer;
  readonly keyPrefix: string;
  /** The `--storage` argument: a SQLite path or a redis:// / postgres:// URL. */
  readonly storage: string;
  /** A store on the nodes' storage, for assertions (close it after use). */
  openStore(): DocumentStore;
  /** With `faults`: node i's link to Redis. */
  readonly redisLinks: readonly FaultProxy[];
  /** With `faults` and a server store: node i's link to storage (one per node); empty otherwise. */
  readonly storageLinks: readonly FaultProxy[];
  /** Starts node `index` again (after a stop or kill) on its old port. */
  restart(index: number): Promise<ServerProcess>;
  /** Stops every node (SIGKILL) and the redis-server it started. */
  stop(): Promise<void>;
}

/**
 * Starts `n` nodes on free ports against a redis-server on a free port (started
 * here unless given), with a fresh key prefix and SQLite file. Resolves when every
 * node listens.
 */
export async function startCluster(n: number, options: ClusterOptions = {}): Promise<Cluster> {
  if (options.redisCluster && (options.faults || options.redis))
    throw new Error("startCluster: redisCluster goes without faults and redis");
  const redis = options.redisCluster ? undefined : (options.redis ?? (await startRedis()));
  const keyPrefix = `spec-${randomUUID().slice(0, 8)}:`;
  const kind = options.storage ?? "sqlite";
  const backing = await storageFor(kind);
  const storage = backing.url;
  const redisLinks =
    options.faults && redis
      ? await Promise.all(Array.from({ length: n }, () => FaultProxy.start({ port: redis.port })))
      : [];
  const storageLinks =
    options.faults && kind !== "sqlite"
      ? await Promise.all(
          Array.from({ length: n }, () => FaultProxy.start({ port: Number(new URL(storage).port) })),
        )
      : [];
  const nodeStorage = (index: number): string => {
    const link = storageLinks[index];
    return link ? viaPort(storage, link.port) : storage;
  };
  const backplane = (index: number): string[] => {
    if (!redis)
      return [
        "--redis-cluster",
        options.redisCluster!.nodes.map((node) => `${node.host}:${node.port}`).join(","),
      ];
    const link = redisLinks[index];
    return ["--redis", link ? viaPort(redis.url, link.port) : redis.url];
  };
  const args = (index: number) => [
    ...backplane(index),
    "--key-prefix",
    keyPrefix,
    "--node-id",
    `node-${index + 1}`,
    ...(options.leaseTtlMs === "default" ? [] : ["--lease-ttl-ms", String(options.leaseTtlMs ?? 3000)]),
    ...(options.requestTimeoutMs === "default"
      ? []
      : ["--request-timeout-ms", String(options.requestTimeoutMs ?? 2000)]),
    ...(options.sample ? [] : ["--no-sample"]),
    ...(options.extraArgs?.includes("--management-token") ? [] : ["--management-token", MANAGEMENT_TOKEN]),
    ...(options.extraArgs ?? []),
  ];
  const spawned = await Promise.allSettled(
    Array.from({ length: n }, (_, i) => spawnServer({ storage: nodeStorage(i), args: args(i) })),
  );
  const nodes = spawned.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
  const failed = spawned.find((result) => result.status === "rejected");
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((node) => node.stop("SIGKILL")));
    await Promise.all([...redisLinks, ...storageLinks].map((link) => link.close()));
    if (!options.redis) await redis?.stop();
    await backing.stop();
  };
  if (failed) {
    // Nobody gets a Cluster to stop: what did start would keep the spec process alive.
    await stop();
    throw failed.reason;
  }
  return {
    nodes,
    get redis(): RedisServer {
      if (!redis) throw new Error("this cluster's backplane runs on a Redis Cluster: it has no redis-server");
      return redis;
    },
    keyPrefix,
    storage,
    redisLinks,
    storageLinks,
    openStore() {
      if (kind === "redis") return new RedisDocumentStore({ connectionString: storage, keyPrefix });
      if (kind === "postgres") return new PostgresDocumentStore(storage);
      return new SqliteDocumentStore({ path: storage });
    },
    async restart(index) {
      const old = nodes[index];
      if (!old) throw new Error(`no node ${index}`);
      await old.stop("SIGKILL");
      const node = await spawnServer({ storage: nodeStorage(index), port: old.port, args: args(index) });
      nodes[index] = node;
      return node;
    },
    stop,
  };
}

/** A fresh storage location of `kind`, and how to drop it. */
async function storageFor(kind: StorageKind): Promise<{ url: string; stop(): Promise<void> }> {
  switch (kind) {
    case "sqlite":
      return { url: join(tempDir(), "cluster.sqlite"), stop: () => Promise.resolve() };
    case "redis": {
      const server = await startRedis();
      return { url: server.url, stop: () => server.stop() };
    }
    case "postgres": {
      const url = await freshDatabase(await sharedPostgres(), "cluster");
      return { url, stop: () => Promise.resolve() };
    }
  }
}

/** `url` with its port replaced (to go through a proxy on loopback). */
function viaPort(url: string, port: number): string {
  const parsed = new URL(url);
  parsed.hostname = "127.0.0.1";
  parsed.port = String(port);
  return parsed.toString();
}
