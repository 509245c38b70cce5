import type { Cluster, Redis } from "ioredis";
import { MemoryDocumentStore } from "../../src/index.js";
import { redisKeyNames, type RedisTopology } from "../../src/backplane/redis/key-names.js";
import type { RedisBackplaneOptions } from "../../src/backplane/redis/options.js";
import type { RedisBackplane } from "../../src/backplane/redis/redis-backplane.js";
import type { BackplaneFactory, OwnershipFactory } from "../contracts/backplane.contract.js";

/**
 * The backplane and ownership factories of `backplaneContract` for RedisBackplane,
 * on one Redis or a Redis Cluster: `backplane` opens a node (the spec closes it),
 * `admin` reaches the owner keys behind the nodes' backs.
 */
export function redisContractFactories(
  topology: RedisTopology,
  backplane: (options: RedisBackplaneOptions) => Promise<RedisBackplane>,
  admin: () => Pick<Redis | Cluster, "pttl" | "del">,
  newPrefix: () => string,
): [BackplaneFactory, OwnershipFactory] {
  const nodes = (count: number, options: RedisBackplaneOptions): Promise<RedisBackplane[]> =>
    Promise.all(Array.from({ length: count }, () => backplane(options)));
  const closing = (started: RedisBackplane[]) => async (): Promise<void> =>
    void (await Promise.all(started.map((node) => node.close())));
  return [
    {
      async create(count) {
        const started = await nodes(count, { keyPrefix: newPrefix() });
        return { nodes: started, stop: closing(started) };
      },
    },
    {
      capabilities: { expiringLeases: true },
      async create(count, options = {}) {
        const keyPrefix = newPrefix();
        const names = redisKeyNames(keyPrefix, topology);
        const store = new MemoryDocumentStore();
        const client = admin();
        const started = await nodes(count, {
          keyPrefix,
          ...(options.leaseTtlMs ? { ownershipLeaseTtlMs: options.leaseTtlMs } : {}),
        });
        return {
          nodes: started.map((node) => ({ nodeId: node.nodeId, ownership: node.createOwnership(store) })),
          records: {
            ttlOf: (docId) => client.pttl(names.ownerKey(docId)),
            remove: async (docId) => void (await client.del(names.ownerKey(docId))),
          },
          stop: closing(started),
        };
      },
    },
  ];
}
