import { strict as assert } from "node:assert";
import { MANAGEMENT_TOKEN as TOKEN, api, closeCodes } from "../support/management.js";
import { connectClient, synced, type Client } from "../support/clients.js";
import { startCluster, type Cluster } from "../support/cluster.js";
import { eventually } from "../support/eventually.js";
import { ownersOf } from "./support.js";

describe("management API on a 3-node cluster, called on a node that does not own the document", function () {
  this.timeout(60_000);
  let cluster: Cluster;
  const clients: Client[] = [];
  before(async () => {
    cluster = await startCluster(3, { extraArgs: ["--management-token", TOKEN] });
  });
  after(async () => {
    clients.splice(0).forEach((client) => client.destroy());
    await cluster.stop();
  });

  it("lists, gets, compacts and deletes through the owner", async () => {
    const [owner, , other] = cluster.nodes as [(typeof cluster.nodes)[0], unknown, (typeof cluster.nodes)[0]];
    const client = connectClient(owner.url, "managed");
    clients.push(client);
    const codes = closeCodes(client);
    await synced(client, 10_000);
    client.text.insert(0, "managed text");
    assert.deepEqual(await ownersOf(cluster.nodes, "managed"), [0]);
    const base = other.httpUrl;

    assert.equal((await api(base, "GET", "", null)).status, 403);
    assert.deepEqual(await (await api(base, "GET", "")).json(), { documents: ["managed"] });
    await eventually(async () => {
      const body = (await (await api(base, "GET", "/managed")).json()) as { content: unknown };
      assert.deepEqual(body.content, { text: "managed text" });
    });
    assert.deepEqual(
      await ownersOf(cluster.nodes, "managed"),
      [0],
      "the non-owner did not take the document",
    );

    const compact = await api(base, "POST", "/managed/compact");
    assert.equal(compact.status, 200);
    const { snapshotSeq } = (await compact.json()) as { snapshotSeq: number };
    const store = cluster.openStore();
    try {
      assert.equal((await store.loadSnapshot("managed"))?.seq, snapshotSeq);
      assert.deepEqual(await store.readOps("managed", 0), []);

      assert.equal((await api(base, "DELETE", "/managed")).status, 204);
      await eventually(() => assert.ok(codes.includes(4004), `close codes ${codes.join(", ")}`));
      assert.deepEqual(await store.list(), []);
      assert.deepEqual(await (await api(base, "GET", "")).json(), { documents: [] });
      await eventually(async () => assert.deepEqual(await ownersOf(cluster.nodes, "managed"), []));
    } finally {
      await store.close();
    }
  });
});
