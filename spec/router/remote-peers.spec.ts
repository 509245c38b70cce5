import { strict as assert } from "node:assert";
import { MemoryDocumentStore } from "../../src/index.js";
import { LocalBus } from "../../src/backplane/local/local-bus.js";
import { connectClient, synced, type Client } from "../support/clients.js";
import { eventually } from "../support/eventually.js";
import { startServer, type TestServer } from "../support/server.js";

const RENEWAL_MS = 100;

/**
 * An owner forgets clients of other nodes whose LEAVE never came: a relay closes its
 * clients without LEAVE when its node shuts down or loses the owner, and a crashed
 * node sends nothing. Found by the soak: the owner kept such clients for ever (a
 * heap that grew with every fault, and documents that never unloaded).
 */
describe("owner's clients of other nodes (remote peers) expire without renewal", () => {
  let nodes: TestServer[] = [];
  const clients: Client[] = [];
  afterEach(async () => {
    clients.splice(0).forEach((c) => c.destroy());
    await Promise.all(nodes.map((n) => n.stop()));
    nodes = [];
  });

  it("forgets a stopped relay node's client after 3 renewals, and keeps a live relay's renewed client", async function () {
    this.timeout(20_000);
    const bus = new LocalBus();
    const store = new MemoryDocumentStore();
    nodes = await Promise.all(
      [1, 2, 3].map(() =>
        startServer((b) => b.useLocalBackplane({ bus }).useStorage(store), {
          sessions: { remotePeerRenewalMs: RENEWAL_MS },
        }),
      ),
    );
    const [owner, live, stopped] = nodes as [TestServer, TestServer, TestServer];
    // In this order, so the live relay's client joined before the stopped one's last
    // renewal: without renewals it would expire in the same sweep, or earlier.
    for (const node of [owner, live, stopped]) {
      const client = connectClient(node.url, "doc");
      clients.push(client);
      await synced(client);
    }
    const session = owner.host.router.localSession("doc");
    assert.ok(session, "the first node owns the document");
    assert.equal(session.peerCount, 3);

    await stopped.stop(); // its relay closes its client without LEAVE
    nodes = nodes.filter((n) => n !== stopped);
    await eventually(() => assert.equal(session.peerCount, 2), 5000);
    assert.equal((await owner.host.metrics.remotePeersExpired.get()).values[0]?.value, 1);

    // The live relay's client is still there and still served.
    const liveClient = clients[1]!;
    liveClient.text.insert(0, "still here");
    await eventually(() => assert.equal(clients[0]!.text.toString(), "still here"));
    assert.equal(session.peerCount, 2);
  });
});
