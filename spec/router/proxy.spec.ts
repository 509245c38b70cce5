import { strict as assert } from "node:assert";
import { MemoryDocumentStore } from "../../src/index.js";
import { LocalBus } from "../../src/backplane/local/local-bus.js";
import { assertAwarenessRoundTrip, connectClient, synced, type Client } from "../support/clients.js";
import { eventually } from "../support/eventually.js";
import { startServer, type TestServer } from "../support/server.js";
import { sessionText } from "../support/session.js";

/**
 * Three in-process nodes sharing a LocalBus and one store: the proxy path (relays
 * on non-owner nodes) with stock y-websocket clients, no Redis involved.
 */
describe("router proxying across in-process nodes", () => {
  let nodes: TestServer[];
  const clients: Client[] = [];
  const connect = (node: number, doc: string) => {
    const client = connectClient(nodes[node % nodes.length]!.url, doc);
    clients.push(client);
    return client;
  };
  const owners = (doc: string) => nodes.filter((n) => n.host.router.localSession(doc) !== undefined);

  beforeEach(async () => {
    const bus = new LocalBus();
    const store = new MemoryDocumentStore();
    nodes = await Promise.all(
      [1, 2, 3].map(() => startServer((b) => b.useLocalBackplane({ bus }).useStorage(store))),
    );
  });
  afterEach(async () => {
    clients.splice(0).forEach((c) => c.destroy());
    await Promise.all(nodes.map((n) => n.stop()));
  });

  it("serves clients on every node from one owner; concurrent edits converge", async () => {
    const group = Array.from({ length: 6 }, (_, i) => connect(i, "shared"));
    await Promise.all(group.map((c) => synced(c)));
    assert.equal(owners("shared").length, 1, "exactly one node holds a session");
    await Promise.all(
      group.map(async (client, n) => {
        for (let i = 0; i < 50; i++) {
          client.text.insert(Math.floor(Math.random() * (client.text.length + 1)), String(n));
          if (i % 5 === 0) await new Promise((resolve) => setImmediate(resolve));
        }
      }),
    );
    await eventually(() => {
      const texts = group.map((c) => c.text.toString());
      assert.equal(texts[0]?.length, 300);
      for (const text of texts) assert.equal(text, texts[0]);
    }, 15_000);
    const owner = owners("shared")[0]!;
    assert.equal(await sessionText(owner.host.router.localSession("shared")), group[0]?.text.toString());
    assert.equal(owners("shared").length, 1, "still exactly one owner");
  });

  it("a late joiner on a non-owner node receives the whole document", async () => {
    const writer = connect(0, "late");
    await synced(writer);
    writer.text.insert(0, "written on node one");
    await eventually(() => assert.ok(owners("late")[0]?.host.router.localSession("late")?.lastSeq));
    const reader = connect(2, "late");
    await synced(reader);
    assert.equal(reader.text.toString(), "written on node one");
  });

  it("carries awareness across nodes and removes it when the client disconnects", async () => {
    const a = connect(0, "aware");
    const b = connect(1, "aware");
    const c = connect(2, "aware");
    await Promise.all([a, b, c].map((x) => synced(x)));
    await assertAwarenessRoundTrip(b, [a, c]);
  });

  it("moves ownership when the owner shuts down; clients reconnect elsewhere and converge", async function () {
    this.timeout(20_000);
    const group = [connect(0, "move"), connect(1, "move"), connect(2, "move")];
    await Promise.all(group.map((c) => synced(c)));
    group[0]!.text.insert(0, "before;");
    await eventually(() => group.forEach((c) => assert.equal(c.text.toString(), "before;")));
    const [owner] = owners("move");
    assert.ok(owner);
    await owner.stop();
    nodes = nodes.filter((n) => n !== owner);
    // Clients of the stopped node keep retrying its port; only the others' clients matter now.
    const survivors = group.filter((c) => !c.provider.url.includes(`:${owner.port}/`));
    await eventually(() => assert.equal(owners("move").length, 1), 10_000);
    survivors[0]!.text.insert(survivors[0]!.text.length, "after;");
    await eventually(
      () => survivors.forEach((c) => assert.equal(c.text.toString(), "before;after;")),
      10_000,
    );
  });
});
