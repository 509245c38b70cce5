import type { Cluster, Redis } from "ioredis";
import { loadIoredis } from "../../drivers.js";
import { isRedisClusterUrl, parseRedisClusterUrl, type RedisClusterNode } from "./cluster-url.js";

/** Whether a caller's client is an ioredis `Cluster` (by ioredis's own flag: two copies of ioredis fail `instanceof`). */
export function isClusterClient(client: Redis | Cluster): client is Cluster {
  return client.isCluster;
}

/** The client a RedisDocumentStore works through, and whose it is. */
export interface StoreClient {
  readonly client: Redis | Cluster;
  /** Set in cluster mode: the same client, typed as a Cluster. */
  readonly cluster: Cluster | undefined;
  /** The store made it, so it quits it on close (and bounds the cluster's offline queue). */
  readonly owned: boolean;
}

/** The options that choose the client; see RedisStoreOptions for what each means. */
export interface StoreClientOptions {
  readonly connectionString: string;
  readonly cluster?: readonly RedisClusterNode[] | undefined;
  readonly redis?: Redis | Cluster | undefined;
  readonly commandTimeoutMs: number;
}

/**
 * The caller's client when one is given, else a Cluster on `cluster` seed nodes or a
 * `redis-cluster://` URL, else a Redis on the URL. Commands fail instead of being
 * re-sent after a reconnect: a write whose outcome is unknown is not repeated.
 */
export function openStoreClient(options: StoreClientOptions): StoreClient {
  if (options.redis) {
    const client = options.redis;
    return { client, cluster: isClusterClient(client) ? client : undefined, owned: false };
  }
  const nodeOptions = {
    // The timer also runs while a command waits in a node's offline queue.
    commandTimeout: options.commandTimeoutMs,
    // Reject in-flight and queued commands at each failed reconnect instead of
    // re-sending them later.
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
  };
  const ioredis = loadIoredis();
  const url = isRedisClusterUrl(options.connectionString)
    ? parseRedisClusterUrl(options.connectionString)
    : undefined;
  const seeds = options.cluster ?? url?.nodes;
  if (seeds) {
    const cluster = new ioredis.Cluster(
      seeds.map(({ host, port }) => ({ host, port })),
      {
        redisOptions: {
          ...nodeOptions,
          ...(url?.username === undefined ? {} : { username: url.username }),
          ...(url?.password === undefined ? {} : { password: url.password }),
        },
      },
    );
    return { client: cluster, cluster, owned: true };
  }
  return {
    client: new ioredis.Redis(options.connectionString, nodeOptions),
    cluster: undefined,
    owned: true,
  };
}

/**
 * `pending`, or a rejection once `ms` passed without its answer. The store's own
 * Cluster client needs it: its offline queue (while no node answers) has no timer,
 * unlike a Redis client's.
 */
export async function withDeadline<T>(pending: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from the Redis Cluster within ${ms} ms`)), ms);
  });
  // A late failure of `pending` is the one already reported as the timeout: observe
  // it so it is not an unhandled rejection.
  pending.catch(() => undefined);
  try {
    return await Promise.race([pending, expired]);
  } finally {
    clearTimeout(timer);
  }
}
