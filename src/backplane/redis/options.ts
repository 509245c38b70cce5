import type { Redis } from "ioredis";
import { ErrorCodes, OpStreamError } from "../../errors.js";
import type { OpStreamMetrics } from "../../metrics.js";
import type { BackplaneLogger } from "../backplane-logger.js";

/** Options of {@link RedisBackplane} (and `useRedisBackplane()`). */
export interface RedisBackplaneOptions {
  /** Where Redis is, e.g. `redis://:password@host:6379/0`. Ignored when `redis` is given. @default "redis://127.0.0.1:6379" */
  connectionString?: string;
  /** Prepended to every channel and key: `<prefix>doc:<docId>`, `<prefix>node:<nodeId>`, `<prefix>owner:<docId>`. @default "opstream:" */
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
  Pick<RedisBackplaneOptions, "redis" | "nodeId" | "metrics" | "logger">;

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

export function resolveRedisBackplaneOptions(options: RedisBackplaneOptions): ResolvedRedisBackplaneOptions {
  const d = REDIS_BACKPLANE_DEFAULTS;
  return {
    ...options,
    connectionString: options.connectionString ?? d.connectionString,
    keyPrefix: options.keyPrefix ?? d.keyPrefix,
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
