import type { RedisBackplaneOptions } from "./backplane/redis/options.js";

/** The backplane flags of `opstream serve` as given (flag, else its variable). */
export interface BackplaneFlags {
  /** `--redis` / OPSTREAM_REDIS_URL */
  readonly redis?: string | undefined;
  /** `--redis-cluster` / OPSTREAM_REDIS_CLUSTER */
  readonly redisCluster?: string | undefined;
}

/**
 * Where the Redis backplane connects, from `--redis <url>` or `--redis-cluster
 * host:port[,host:port…]`, or undefined when neither is given (local backplane).
 * Throws an Error that names the flags when both are given or a node is malformed,
 * so the node refuses to start.
 */
export function redisBackplaneFromFlags(
  flags: BackplaneFlags,
): Pick<RedisBackplaneOptions, "connectionString" | "cluster"> | undefined {
  if (flags.redis !== undefined && flags.redisCluster !== undefined) {
    throw new Error(
      "--redis (OPSTREAM_REDIS_URL) and --redis-cluster (OPSTREAM_REDIS_CLUSTER) exclude each other: " +
        "give --redis for one Redis, or --redis-cluster for a Redis Cluster.",
    );
  }
  if (flags.redis !== undefined) return { connectionString: flags.redis };
  if (flags.redisCluster === undefined) return undefined;
  const entries = flags.redisCluster
    .split(",")
    .map((entry) => entry.trim())
    .filter(Boolean);
  if (entries.length === 0) throw new Error("--redis-cluster wants host:port[,host:port…], got nothing");
  return { cluster: entries.map(clusterNode) };
}

/** `host:port` or `[ipv6]:port`. */
function clusterNode(entry: string): { host: string; port: number } {
  const colon = entry.lastIndexOf(":");
  const host = entry.slice(0, Math.max(colon, 0)).replace(/^\[(.*)\]$/, "$1");
  const port = Number(entry.slice(colon + 1));
  if (colon <= 0 || host === "" || !Number.isInteger(port) || port <= 0 || port > 65_535) {
    throw new Error(`--redis-cluster wants host:port entries, e.g. 10.0.0.5:6379, got ${entry}`);
  }
  return { host, port };
}
