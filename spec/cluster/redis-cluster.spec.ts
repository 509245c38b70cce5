import { strict as assert } from "node:assert";
import { synced, type Client } from "../support/clients.js";
import { startCluster, type Cluster } from "../support/cluster.js";
import { eventually } from "../support/eventually.js";
import { allAcknowledged, hpSynced, type HocuspocusClient } from "../support/hocuspocus.js";
import type { ServerProcess } from "../support/process.js";
import { startRedisCluster, type RedisCluster } from "../support/redis-cluster.js";
import { clientsOn } from "./editing.js";
import {
  assertConvergedWith,
  keepWriting,
  ownersOf,
  receivedTokens,
  storedText,
  tokensOf,
  type Editor,
} from "./support.js";

const LEASE_TTL_MS = 3000;

/**
 * Three real node processes whose backplane runs on a real Redis Cluster (3
 * masters, 3 replicas, sharded pub/sub), with stock y-websocket and Hocuspocus
 * clients. One Redis Cluster and one set of nodes for the whole file; the cases
 * run in order and the last ones break things (a Redis master, an opstream node).
 */
describe("cluster of 3 nodes on a Redis Cluster (sharded pub/sub)", function () {
  this.timeout(60_000);
  let redis: RedisCluster;
  let cluster: Cluster;
  const editors: { destroy(): void }[] = [];

  before(async function () {
    this.timeout(90_000);
    redis = await startRedisCluster();
    cluster = await startCluster(3, { redisCluster: redis, leaseTtlMs: LEASE_TTL_MS });
  });
  after(async () => {
    await cluster?.stop();
    await redis?.stop();
  });
  afterEach(() => {
    editors.splice(0).forEach((editor) => editor.destroy());
  });

  const { yws, hocuspocus } = clientsOn(editors);
  /** One y-websocket and one Hocuspocus client on each of `nodes`, all synced. */
  async function mixedClients(
    nodes: readonly ServerProcess[],
    doc: string,
  ): Promise<{ ys: Client[]; hps: HocuspocusClient[] }> {
    const ys = nodes.map((node) => yws(node, doc));
    const hps = nodes.map((node) => hocuspocus(node, doc));
    await Promise.all([...ys.map((c) => synced(c, 10_000)), ...hps.map((c) => hpSynced(c, 10_000))]);
    return { ys, hps };
  }
  /** Every client holds what each had received, and storage holds the converged text. */
  async function assertSettled(doc: string, clients: readonly Editor[], received: ReadonlySet<string>) {
    await eventually(() => assertConvergedWith(clients, received), 20_000);
    await eventually(
      async () => assert.equal(await storedText(cluster, doc), clients[0]!.text.toString()),
      10_000,
    );
  }

  it("serves y-websocket and Hocuspocus clients on every node: one owner, all converge, storage agrees", async () => {
    const { ys, hps } = await mixedClients(cluster.nodes, "mixed");
    const clients: Editor[] = [...ys, ...hps];
    assert.equal((await ownersOf(cluster.nodes, "mixed")).length, 1, "exactly one node holds a session");
    const writing = keepWriting(clients, 10);
    await eventually(() => assert.ok(receivedTokens(clients).size > 120), 20_000);
    await writing.stop();
    await Promise.all(hps.map((client) => allAcknowledged(client, 10_000)));
    await assertSettled("mixed", clients, receivedTokens(clients));
  });

  it("a Redis master fails while clients type on every node: its replica is promoted, all converge, no acknowledged edit is lost", async () => {
    const doc = "busy";
    const { ys, hps } = await mixedClients(cluster.nodes, doc);
    const clients: Editor[] = [...ys, ...hps];
    const writing = keepWriting(clients, 10);
    await eventually(() => assert.ok(receivedTokens(clients).size > 100), 20_000);
    // The shard of the document's hash slot: its channel, lease and progress mark.
    const master = await redis.masterOf(`${cluster.keyPrefix}owner:{${doc}}`);
    assert.equal(await redis.masterOf(`${cluster.keyPrefix}doc:{${doc}}`), master, "one slot per document");
    redis.kill(master);
    const atKill = receivedTokens(clients);
    await redis.promoted(master);
    // Edits flow across nodes again after the promotion.
    await eventually(() => assert.ok(receivedTokens(clients).size > atKill.size + 100), 30_000);
    await writing.stop();
    await Promise.all(hps.map((client) => allAcknowledged(client, 20_000)));
    const received = receivedTokens(clients);
    await assertSettled(doc, clients, received);
    const stored = tokensOf(await storedText(cluster, doc));
    const acknowledged = [...received, ...hps.flatMap((client) => [...tokensOf(client.text.toString())])];
    assert.deepEqual(
      acknowledged.filter((token) => !stored.has(token)),
      [],
      "every token a client received, and every Hocuspocus change acknowledged, is stored",
    );
    assert.equal((await ownersOf(cluster.nodes, doc)).length, 1, "still exactly one owner");
  });

  it("kill -9 of a document's owner: relay clients keep their sockets, another node takes over, nothing received is lost", async () => {
    const doc = "owner-kill";
    const owner = 0;
    const opener = yws(cluster.nodes[owner]!, doc);
    await synced(opener, 10_000);
    const relays = cluster.nodes.filter((_, index) => index !== owner);
    const { ys, hps } = await mixedClients(relays, doc);
    assert.deepEqual(await ownersOf(cluster.nodes, doc), [owner]);
    let disconnects = 0;
    for (const client of ys)
      client.provider.on("status", ({ status }: { status: string }) => {
        if (status === "disconnected") disconnects += 1;
      });
    const clients: Editor[] = [...ys, ...hps];
    // The opener goes first: a provider retrying a dead port only adds noise.
    editors.splice(editors.indexOf(opener), 1);
    opener.destroy();
    const writing = keepWriting(clients, 10);
    await eventually(() => assert.ok(receivedTokens(clients).size > 60), 20_000);
    await cluster.nodes[owner]!.stop("SIGKILL");
    const atKill = receivedTokens(clients);
    await eventually(async () => assert.equal((await ownersOf(relays, doc)).length, 1), LEASE_TTL_MS + 5000);
    await eventually(() => assert.ok(receivedTokens(clients).size > atKill.size + 60), 20_000);
    await writing.stop();
    await Promise.all(hps.map((client) => allAcknowledged(client, 10_000)));
    await assertSettled(doc, clients, receivedTokens(clients));
    assert.equal(disconnects, 0, "no relay y-websocket client lost its socket");
    assert.deepEqual(
      hps.map((client) => client.events.closed),
      hps.map(() => []),
      "no relay Hocuspocus socket closed",
    );
  });
});
