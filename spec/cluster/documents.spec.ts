import { strict as assert } from "node:assert";
import { connectClient, synced, type Client } from "../support/clients.js";
import { startCluster, type Cluster } from "../support/cluster.js";
import { eventually } from "../support/eventually.js";
import { startServer, type TestServer } from "../support/server.js";
import { ownersOf, storedText } from "./support.js";

const LEASE_TTL_MS = 3000;

describe("server-side document API on a cluster, from a node that does not own the document", function () {
  this.timeout(60_000);
  let cluster: Cluster;
  let node: TestServer;
  const clients: Client[] = [];
  before(async () => {
    cluster = await startCluster(3, { leaseTtlMs: LEASE_TTL_MS, requestTimeoutMs: 2000 });
    // A fourth node in this process, on the cluster's Redis, key prefix and store.
    node = await startServer((b) =>
      b
        .useRedisBackplane({
          connectionString: cluster.redis.url,
          keyPrefix: cluster.keyPrefix,
          ownershipLeaseTtlMs: LEASE_TTL_MS,
          requestTimeoutMs: 2000,
        })
        .useStorage(() => cluster.openStore()),
    );
  });
  after(async () => {
    clients.splice(0).forEach((client) => client.destroy());
    await node.stop();
    await cluster.stop();
  });

  it("a transact is seen by every client and survives a kill -9 of the owner", async () => {
    const [first, second, third] = cluster.nodes as [
      (typeof cluster.nodes)[0],
      (typeof cluster.nodes)[0],
      (typeof cluster.nodes)[0],
    ];
    for (const process of [first, second, third]) clients.push(connectClient(process.url, "api"));
    await Promise.all(clients.map((client) => synced(client, 10_000)));
    const [owner] = await ownersOf(cluster.nodes, "api");
    assert.ok(owner !== undefined);
    assert.equal(node.host.router.localSession("api"), undefined);

    const handle = await node.host.documents.open("api");
    assert.equal(
      node.host.router.localSession("api"),
      undefined,
      "the in-process node relays, it does not own",
    );
    await handle.transact((doc) => doc.getText("text").insert(0, "one;"));
    await eventually(() => clients.forEach((client) => assert.equal(client.text.toString(), "one;")));

    await cluster.nodes[owner]!.stop("SIGKILL");
    const survivors = clients.filter((_, index) => index !== owner);
    // Issued right after the kill: it must wait out the dead owner's lease and land on the next one.
    await handle.transact((doc) => doc.getText("text").insert(4, "two;"));
    await eventually(
      () => survivors.forEach((client) => assert.equal(client.text.toString(), "one;two;")),
      LEASE_TTL_MS + 10_000,
    );
    assert.equal(await storedText(cluster, "api"), "one;two;");
    assert.equal(handle.doc.getText("text").toString(), "one;two;");
    await handle.close();
  });
});
