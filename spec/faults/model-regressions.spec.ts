import { strict as assert } from "node:assert";
import { join } from "node:path";
import { eventually } from "../support/eventually.js";
import { tempDir } from "../support/temp.js";
import { ModelClient, ModelCluster } from "./model-cluster.js";

/** Faults the model-based spec (model.spec.ts) turned up, each replayed step by step. */
describe("model-based faults: regressions", () => {
  let cluster: ModelCluster | undefined;
  const clients: ModelClient[] = [];
  afterEach(async () => {
    clients.splice(0).forEach((c) => c.destroy());
    await cluster?.stop();
    cluster = undefined;
  });

  const start = async (docId: string, nodes: number) => {
    const started = await ModelCluster.start(join(tempDir(), `${docId}.sqlite`), docId, nodes);
    cluster = started;
    return started;
  };
  const connect = async (docId: string, slot: number) => {
    const client = new ModelClient(docId, () => cluster!.route(slot));
    clients.push(client);
    await eventually(() => assert.ok(client.provider.synced, "synced"), 5000, 5);
    return client;
  };

  it("a client joining a relay whose owner was replaced hears the new owner", async function () {
    this.timeout(15_000);
    const docId = "stale-relay";
    const nodes = await start(docId, 3);
    const first = await connect(docId, 0);
    assert.equal(nodes.ownerSlot(), 0);
    await connect(docId, 1); // node 1 now relays to node 0
    // Node 0 dies and nothing tells node 1's relay: no op, and node 0's own client
    // has left, so it does not reconnect through node 1.
    first.disconnect();
    await nodes.kill(0);
    const successor = await connect(docId, 2);
    assert.equal(nodes.ownerSlot(), 2, "node 2 took the document over, with a new epoch");
    // The join goes through node 1's stale relay, is retried on node 2, and the new
    // epoch closes the relay: the client must rejoin, not stay on the closed relay,
    // where it could still write but would never hear another update.
    const late = await connect(docId, 1);
    successor.text.insert(0, "after the failover");
    await eventually(() => assert.equal(late.text.toString(), "after the failover"), 5000, 5);
  });

  it("a relay that lost the last op and then its heartbeat catches up while the document is quiet", async function () {
    this.timeout(15_000);
    const docId = "quiet-gap";
    const nodes = await start(docId, 2);
    const writer = await connect(docId, 0);
    const reader = await connect(docId, 1);
    nodes.arm({ action: "drop", filter: "update" });
    nodes.arm({ action: "drop", filter: "heartbeat" });
    writer.text.insert(0, "last words");
    // Nothing else is written: only a later heartbeat can tell node 1 it is behind.
    await eventually(() => assert.equal(reader.text.toString(), "last words"), 5000, 5);
    assert.equal(nodes.counts.dropped, 2);
  });
});
