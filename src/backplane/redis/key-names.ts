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
  /** The channel a node receives requests and responses on. */
  nodeChannel(nodeId: string): string;
  /** The ownership lease: the owner's node id, with the lease TTL. */
  ownerKey(docId: string): string;
  /** The document's progress mark (hash of `epoch` and `seq`, no TTL). */
  markKey(docId: string): string;
}

/** How the backplane reaches Redis, which decides the names. */
export type RedisTopology = "standalone" | "cluster";

/** The names for `topology` under `keyPrefix` (checked by `resolveRedisBackplaneOptions`). */
export function redisKeyNames(keyPrefix: string, topology: RedisTopology): RedisKeyNames {
  const id = topology === "cluster" ? (value: string) => `{${value}}` : (value: string) => value;
  return {
    documentChannel: (docId) => `${keyPrefix}doc:${id(docId)}`,
    nodeChannel: (nodeId) => `${keyPrefix}node:${id(nodeId)}`,
    ownerKey: (docId) => `${keyPrefix}owner:${id(docId)}`,
    markKey: (docId) => `${keyPrefix}epoch:${id(docId)}`,
  };
}
