import type { Cluster, Redis } from "ioredis";

/*
 * `list()` on a Redis Cluster. The standalone store keeps an index (`<prefix>docs`)
 * that every claim and delete updates in the same script as the document's keys;
 * on a cluster that index would live in another slot than the document, which no
 * script may touch. So there is no index: the meta keys are the index, and a list
 * SCANs every master for them, then asks each one's `live` flag.
 *
 * It costs a full keyspace SCAN of every master (all keys, not only the store's)
 * plus one HGET per document, so list() is for the management API and tools, not
 * for a hot path.
 *
 * It must never answer with documents missing. So it scans the masters that the
 * client's slot map names for all 16384 slots, and reads `live` through the
 * cluster client, which follows redirections. When the map is stale (a slot
 * without a master the client is connected to, a node that is no longer a master,
 * a node that does not answer: a failover happened) it refreshes the map and tries
 * once more, then fails: the caller gets STORAGE_UNAVAILABLE rather than a short
 * list. ioredis refreshes its map by itself only on a MOVED reply, which list()'s
 * keyless SCANs never get, hence the explicit refresh.
 */

const SLOTS = 16_384;
/** SCAN COUNT and HGETs in flight per batch. */
const BATCH = 1000;

/** The clients' node key: the `host:port` that `Cluster.slots` names. */
const nodeKey = (node: Redis): string => `${node.options.host ?? "localhost"}:${node.options.port ?? 6379}`;

/** The master of every slot, as the client's slot map has it; throws when a slot has none. */
function mastersOfAllSlots(cluster: Cluster): Redis[] {
  const keys = new Set<string>();
  for (let slot = 0; slot < SLOTS; slot++) {
    const master = cluster.slots[slot]?.[0];
    if (master === undefined)
      throw new Error(`the client knows no master for slot ${slot}: is the cluster ok?`);
    keys.add(master);
  }
  const nodes = new Map(cluster.nodes("all").map((node) => [nodeKey(node), node]));
  return [...keys].map((key) => {
    const node = nodes.get(key);
    if (!node) throw new Error(`the client has no connection to master ${key} yet`);
    return node;
  });
}

/** Every key of `node` matching `pattern`, after checking that it is a master. */
async function scanMaster(node: Redis, pattern: string): Promise<string[]> {
  const [role] = (await node.role()) as [string, ...unknown[]];
  if (role !== "master") {
    throw new Error(
      `${nodeKey(node)} is a ${role} now (a failover is under way): retry once the client's map is fresh`,
    );
  }
  const found: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] = await node.scan(cursor, "MATCH", pattern, "COUNT", BATCH, "TYPE", "hash");
    found.push(...keys);
    cursor = next;
  } while (cursor !== "0");
  return found;
}

/** Every master's keys matching `pattern`; on a stale map, once more after refreshing it. */
async function scanAllMasters(cluster: Cluster, pattern: string): Promise<string[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      const scanned = await Promise.all(mastersOfAllSlots(cluster).map((node) => scanMaster(node, pattern)));
      return scanned.flat();
    } catch (error) {
      if (attempt >= 2) throw error;
      await new Promise<void>((resolve, reject) =>
        cluster.refreshSlotsCache((refreshError) => (refreshError ? reject(refreshError) : resolve())),
      );
    }
  }
}

/**
 * The ids of live documents on every master, deduplicated and sorted in byte
 * order (UTF-8), as the standalone store's ZSET returns them.
 */
export async function listClusterDocuments(
  cluster: Cluster,
  metaPattern: string,
  docIdOfMetaKey: (key: string) => string | undefined,
): Promise<string[]> {
  const metaKeys = [...new Set(await scanAllMasters(cluster, metaPattern))];
  const live: string[] = [];
  for (let start = 0; start < metaKeys.length; start += BATCH) {
    const batch = metaKeys.slice(start, start + BATCH);
    const flags = await Promise.all(batch.map((key) => cluster.hget(key, "live")));
    batch.forEach((key, i) => {
      const docId = flags[i] === "1" ? docIdOfMetaKey(key) : undefined;
      if (docId !== undefined) live.push(docId);
    });
  }
  return live
    .map((docId) => ({ docId, bytes: Buffer.from(docId) }))
    .sort((a, b) => Buffer.compare(a.bytes, b.bytes))
    .map(({ docId }) => docId);
}
