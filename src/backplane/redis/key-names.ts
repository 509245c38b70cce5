/**
 * Every Redis key and pub/sub channel name of the backplane and its ownership, in
 * one place (PROTOCOL.md, "Backplane").
 *
 * - **standalone** (one Redis): `<prefix>doc:<docId>`, `<prefix>node:<nodeId>`,
 *   `<prefix>owner:<docId>`, `<prefix>epoch:<docId>` — the names opstream has always
 *   used, so existing deployments need no migration.
 * - **cluster** (Redis Cluster): the same names with the id in a hash tag,
 *   `<prefix>doc:{<docId>}` and so on, so a document's channel, owner key and
 *   progress mark share one hash slot: one shard serves everything about a
 *   document, and a master's failover touches only the documents of its slots.
 *   (A document id containing `}` is tagged by its part before the first `}`;
 *   its names all share that tag, so they still share a slot.)
 */
export interface RedisKeyNames {
  /** The channel of a document's updates, awareness and control messages. */
  documentChannel(docId: string): string;
  /**
   * A channel a node receives requests and responses on: lane 0 is
   * `<prefix>node:<nodeId>` (`{<nodeId>}` on a cluster), lane k > 0 adds `#k` to the
   * id, so on a cluster each lane hashes to its own slot.
   */
  nodeChannel(nodeId: string, lane?: number): string;
  /** The ownership lease: the owner's node id, with the lease TTL. */
  ownerKey(docId: string): string;
  /** The document's progress mark (hash of `epoch` and `seq`, no TTL). */
  markKey(docId: string): string;
}

/**
 * RPC lanes per node on a Redis Cluster: a node's requests and answers, keyed by
 * document, spread over this many channels (so over the shards) instead of one.
 * One Redis gets one lane: the names opstream always used.
 */
export const CLUSTER_NODE_LANES = 8;

/** How the backplane reaches Redis, which decides the names. */
export type RedisTopology = "standalone" | "cluster";

/** The names for `topology` under `keyPrefix` (checked by `resolveRedisBackplaneOptions`). */
export function redisKeyNames(keyPrefix: string, topology: RedisTopology): RedisKeyNames {
  const id = topology === "cluster" ? (value: string) => `{${value}}` : (value: string) => value;
  return {
    documentChannel: (docId) => `${keyPrefix}doc:${id(docId)}`,
    nodeChannel: (nodeId, lane = 0) => `${keyPrefix}node:${id(lane === 0 ? nodeId : `${nodeId}#${lane}`)}`,
    ownerKey: (docId) => `${keyPrefix}owner:${id(docId)}`,
    markKey: (docId) => `${keyPrefix}epoch:${id(docId)}`,
  };
}
