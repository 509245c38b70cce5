import type { ClusterOptions, Redis } from "ioredis";
import { ErrorCodes, OpStreamError } from "../../errors.js";
import type { OpStreamMetrics } from "../../metrics.js";
import type { BackplaneLogger } from "../backplane-logger.js";

/** Options of {@link RedisBackplane} (and `useRedisBackplane()`). */
export interface RedisBackplaneOptions {
  /** Where Redis is, e.g. `redis://:password@host:6379/0`. Ignored when `redis` is given. @default "redis://127.0.0.1:6379" */
  connectionString?: string;
  /**
   * Nodes of a Redis Cluster (Redis 7 or newer) to start from, e.g. `[{ host: "10.0.0.5", port: 6379 }]`;
   * the others are discovered. Used instead of `connectionString` (give one or the other, and no
   * `redis`): channels use sharded pub/sub, and every key and channel of a document carries a
   * `{docId}` hash tag so they share one slot (PROTOCOL.md). @default none: one Redis at `connectionString`
   */
  cluster?: { host: string; port: number }[];
  /**
   * More ioredis `ClusterOptions` for the `cluster` client, e.g. a managed cluster's
   * credentials and TLS: `{ redisOptions: { username, password, tls: {} } }`, or
   * `natMap`. The backplane's own settings win: `shardedSubscribers`,
   * `slotsRefreshInterval` and `clusterRetryStrategy`.
   * @default none (ioredis's defaults)
   */
  clusterOptions?: ClusterOptions;
  /**
   * Prepended to every channel and key: `<prefix>doc:<docId>`, `<prefix>node:<nodeId>`, `<prefix>owner:<docId>`
   * (with `cluster`: `<prefix>doc:{<docId>}` and so on; the prefix may then hold no `{` or `}`). @default "opstream:"
   */
  keyPrefix?: string;
  /**
   * How long an ownership lease lives without renewal; renewed every third of it.
   * It bounds how long a hung owner (SIGSTOP, a long GC pause, a partition from
   * Redis) blocks its documents; a crashed one is replaced at once (OPERATIONS.md,
   * "Failover"). @default 5000
   */
  ownershipLeaseTtlMs?: number;
  /** How long a request to another node waits for its answer. @default 5000 */
  requestTimeoutMs?: number;
  /** How long `ping()` (for `/readyz`) waits for Redis before rejecting. @default 1000 */
  pingTimeoutMs?: number;
  /**
   * How often the node sends a request to itself through Redis to prove its
   * subscriber still receives. Once no check sent in the last 3 intervals has been
   * answered, the subscriber is reconnected, so a link that goes silent is reset
   * within 3 intervals (a half-open link would otherwise stay silent forever);
   * relays then resync. 0 turns the check off. @default 1000
   */
  subscriberCheckIntervalMs?: number;
  /**
   * A caller-owned ioredis client, used to publish and for lease commands. The
   * backplane duplicates it for subscribing (and for `ping()`) and never quits it.
   * @default a client of its own, made from `connectionString` and quit on close
   */
  redis?: Redis;
  /** This node's id, unique in the cluster. @default a random UUID */
  nodeId?: string;
  /** Counts `rpcTimeouts` and `backplaneResubscribes` (and, for the ownership, lease events). @default none (not counted) */
  metrics?: OpStreamMetrics;
  /** Where connection errors and dropped frames are reported (pino-compatible). @default the default pino logger */
  logger?: BackplaneLogger;
}

export const REDIS_BACKPLANE_DEFAULTS: Readonly<{
  connectionString: string;
  keyPrefix: string;
  ownershipLeaseTtlMs: number;
  requestTimeoutMs: number;
  pingTimeoutMs: number;
  subscriberCheckIntervalMs: number;
}> = Object.freeze({
  connectionString: "redis://127.0.0.1:6379",
  keyPrefix: "opstream:",
  ownershipLeaseTtlMs: 5_000,
  requestTimeoutMs: 5000,
  pingTimeoutMs: 1000,
  subscriberCheckIntervalMs: 1000,
});

/** The options with their defaults applied and checked. */
export type ResolvedRedisBackplaneOptions = Required<
  Pick<
    RedisBackplaneOptions,
    | "connectionString"
    | "keyPrefix"
    | "ownershipLeaseTtlMs"
    | "requestTimeoutMs"
    | "pingTimeoutMs"
    | "subscriberCheckIntervalMs"
  >
> &
  Pick<RedisBackplaneOptions, "redis" | "cluster" | "clusterOptions" | "nodeId" | "metrics" | "logger">;

function positive(name: keyof typeof REDIS_BACKPLANE_DEFAULTS, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new OpStreamError(
      ErrorCodes.INVALID_OPTION,
      `RedisBackplaneOptions.${name} must be a positive number of milliseconds, got ${String(value)}.`,
      { option: name, value },
    );
  }
  return value;
}

function invalid(option: string, value: unknown, message: string): OpStreamError {
  return new OpStreamError(ErrorCodes.INVALID_OPTION, `RedisBackplaneOptions.${option} ${message}`, {
    option,
    value,
  });
}

/** Checks `cluster` and what it excludes; returns the key prefix. */
function checkTopology(options: RedisBackplaneOptions, keyPrefix: string): string {
  const { cluster } = options;
  if (cluster === undefined) return keyPrefix;
  if (!Array.isArray(cluster) || cluster.length === 0) {
    throw invalid(
      "cluster",
      cluster,
      'must list at least one node, e.g. [{ host: "10.0.0.5", port: 6379 }].',
    );
  }
  const bad = cluster.find(
    (node) =>
      typeof node?.host !== "string" || node.host === "" || !Number.isInteger(node.port) || node.port <= 0,
  );
  if (bad !== undefined)
    throw invalid("cluster", bad, "wants { host, port } entries with a host name and a port number.");
  for (const other of ["connectionString", "redis"] as const) {
    if (options[other] !== undefined) {
      throw invalid(
        other,
        "(given)",
        "cannot be given with `cluster`: the backplane connects to the cluster's nodes itself.",
      );
    }
  }
  if (/[{}]/.test(keyPrefix)) {
    throw invalid(
      "keyPrefix",
      keyPrefix,
      "may not contain { or } with `cluster`: Redis would hash every key by the prefix's braces and put them all in one slot.",
    );
  }
  return keyPrefix;
}

export function resolveRedisBackplaneOptions(options: RedisBackplaneOptions): ResolvedRedisBackplaneOptions {
  const d = REDIS_BACKPLANE_DEFAULTS;
  return {
    ...options,
    connectionString: options.connectionString ?? d.connectionString,
    keyPrefix: checkTopology(options, options.keyPrefix ?? d.keyPrefix),
    ownershipLeaseTtlMs: positive(
      "ownershipLeaseTtlMs",
      options.ownershipLeaseTtlMs ?? d.ownershipLeaseTtlMs,
    ),
    requestTimeoutMs: positive("requestTimeoutMs", options.requestTimeoutMs ?? d.requestTimeoutMs),
    pingTimeoutMs: positive("pingTimeoutMs", options.pingTimeoutMs ?? d.pingTimeoutMs),
    subscriberCheckIntervalMs:
      options.subscriberCheckIntervalMs === 0
        ? 0
        : positive(
            "subscriberCheckIntervalMs",
            options.subscriberCheckIntervalMs ?? d.subscriberCheckIntervalMs,
          ),
  };
}
