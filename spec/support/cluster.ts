import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { spawnServer, type ServerProcess } from "./process.js";
import { startRedis, type RedisServer } from "./redis.js";
import { tempDir } from "./temp.js";

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  /** Ownership lease TTL of every node (short in failure specs). @default 3000 */
  leaseTtlMs?: number;
  /** Timeout of each proxied request. @default 2000 */
  requestTimeoutMs?: number;
  /** An already running redis-server to share (each cluster still gets its own key prefix). */
  redis?: RedisServer;
  /** More CLI arguments for every node (e.g. `--management-token`). @default none */
  extraArgs?: readonly string[];
}

/** n real `opstream serve` processes sharing a real redis-server and one SQLite file. */
export interface Cluster {
  readonly nodes: ServerProcess[];
  readonly redis: RedisServer;
  readonly keyPrefix: string;
  readonly storage: string;
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
  const redis = options.redis ?? (await startRedis());
  const keyPrefix = `spec-${randomUUID().slice(0, 8)}:`;
  const storage = join(tempDir(), "cluster.sqlite");
  const args = (index: number) => [
    "--redis",
    redis.url,
    "--key-prefix",
    keyPrefix,
    "--node-id",
    `node-${index + 1}`,
    "--lease-ttl-ms",
    String(options.leaseTtlMs ?? 3000),
    "--request-timeout-ms",
    String(options.requestTimeoutMs ?? 2000),
    "--no-sample",
    ...(options.extraArgs ?? []),
  ];
  const nodes = await Promise.all(
    Array.from({ length: n }, (_, i) => spawnServer({ storage, args: args(i) })),
  );
  return {
    nodes,
    redis,
    keyPrefix,
    storage,
    async restart(index) {
      const old = nodes[index];
      if (!old) throw new Error(`no node ${index}`);
      await old.stop("SIGKILL");
      const node = await spawnServer({ storage, port: old.port, args: args(index) });
      nodes[index] = node;
      return node;
    },
    async stop() {
      await Promise.all(nodes.map((node) => node.stop("SIGKILL")));
      if (!options.redis) await redis.stop();
    },
  };
}
