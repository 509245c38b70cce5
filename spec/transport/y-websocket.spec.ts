import { strict as assert } from "node:assert";
import { setTimeout as delay } from "node:timers/promises";
import WebSocket from "ws";
import { decodeAwarenessUpdate } from "../../src/engine/awareness.js";
import { YMessageType, decodeMessage } from "../../src/transport/y-websocket/messages.js";
import { connectClient, synced, type Client } from "../support/clients.js";
import { eventually } from "../support/eventually.js";
import { startServer, type TestServer } from "../support/server.js";
import { sessionText } from "../support/session.js";

describe("y-websocket dialect with the stock WebsocketProvider", () => {
  let server: TestServer;
  const clients: Client[] = [];
  const connect = (doc: string, options?: Parameters<typeof connectClient>[2]) => {
    const client = connectClient(server.url, doc, options);
    clients.push(client);
    return client;
  };
  before(async () => (server = await startServer()));
  afterEach(() => clients.splice(0).forEach((c) => c.destroy()));
  after(() => server.stop());

  it("8 clients × 200 concurrent random inserts converge to identical text of the right length", async function () {
    this.timeout(60_000);
    const group = Array.from({ length: 8 }, () => connect("concurrent"));
    await Promise.all(group.map((c) => synced(c)));
    await Promise.all(
      group.map(async (client, n) => {
        for (let i = 0; i < 200; i++) {
          const at = Math.floor(Math.random() * (client.text.length + 1));
          client.text.insert(at, String.fromCharCode(97 + n));
          if (i % 10 === 0) await new Promise((resolve) => setImmediate(resolve)); // interleave the clients
        }
      }),
    );
    await eventually(() => {
      const texts = group.map((c) => c.text.toString());
      assert.equal(texts[0]?.length, 1600);
      for (const text of texts) assert.equal(text, texts[0]);
    }, 30_000);
    const serverText = await sessionText(server.host.router.localSession("concurrent"));
    assert.equal(serverText, group[0]?.text.toString(), "the server's document matches");
    for (let n = 0; n < 8; n++) {
      const count = [...(group[0]?.text.toString() ?? "")].filter(
        (ch) => ch === String.fromCharCode(97 + n),
      ).length;
      assert.equal(count, 200, `all 200 inserts of client ${n}`);
    }
  });

  it("a late joiner receives the whole document", async () => {
    const writer = connect("late");
    await synced(writer);
    for (let i = 0; i < 50; i++) writer.text.insert(writer.text.length, `line ${i}\n`);
    const expected = writer.text.toString();
    await eventually(async () =>
      assert.equal(await sessionText(server.host.router.localSession("late")), expected),
    );
    const late = connect("late");
    await synced(late);
    assert.equal(late.text.toString(), expected);
  });

  it("awareness reaches the others and disappears when its client's connection drops", async () => {
    const a = connect("presence");
    const b = connect("presence");
    await Promise.all([synced(a), synced(b)]);
    a.provider.awareness.setLocalStateField("user", { name: "Alice" });
    const aId = a.doc.clientID;
    await eventually(() =>
      assert.deepEqual(b.provider.awareness.getStates().get(aId), { user: { name: "Alice" } }),
    );
    // Drop A's socket abruptly (no goodbye message): the server must remove A's state.
    a.provider.shouldConnect = false;
    const socket = a.provider.ws as unknown as { terminate(): void };
    socket.terminate();
    await eventually(() => assert.equal(b.provider.awareness.getStates().has(aId), false));
  });

  it("a newly joined client receives the current awareness states", async () => {
    const a = connect("presence-join");
    await synced(a);
    a.provider.awareness.setLocalStateField("user", { name: "Ann" });
    await eventually(() => assert.ok(server.host.router.localSession("presence-join")?.awarenessStates()));
    const b = connect("presence-join");
    await eventually(() =>
      assert.deepEqual(b.provider.awareness.getStates().get(a.doc.clientID), { user: { name: "Ann" } }),
    );
  });

  it("answers QueryAwareness with every current state", async () => {
    const a = connect("query");
    await synced(a);
    a.provider.awareness.setLocalStateField("user", { name: "Q" });
    await eventually(() => assert.ok(server.host.router.localSession("query")?.awarenessStates()));
    const raw = new WebSocket(`${server.url}/query`);
    const frames: Uint8Array[] = [];
    raw.on("message", (data: Buffer) => frames.push(new Uint8Array(data)));
    // The opening frames: SyncStep1, then the current awareness.
    await eventually(() => assert.equal(frames.length, 2));
    raw.send(new Uint8Array([3]));
    await eventually(() => assert.equal(frames.length, 3));
    const answer = decodeMessage(frames.at(-1)!);
    assert.equal(answer.type, YMessageType.Awareness);
    const states = answer.type === YMessageType.Awareness ? decodeAwarenessUpdate(answer.update) : [];
    assert.deepEqual(
      states.map((s) => [s.clientId, JSON.parse(s.json) as unknown]),
      [[a.doc.clientID, { user: { name: "Q" } }]],
    );
    raw.close();
  });

  it("an offline client's edits merge on reconnect", async () => {
    const a = connect("offline");
    const b = connect("offline");
    await Promise.all([synced(a), synced(b)]);
    a.text.insert(0, "shared ");
    await eventually(() => assert.equal(b.text.toString(), "shared "));
    a.provider.disconnect();
    await eventually(() => assert.equal(a.provider.wsconnected, false));
    a.text.insert(a.text.length, "offline-A ");
    b.text.insert(b.text.length, "online-B ");
    await eventually(async () =>
      assert.ok((await sessionText(server.host.router.localSession("offline")))?.includes("online-B")),
    );
    assert.ok(!b.text.toString().includes("offline-A"), "B cannot see A's edit while A is offline");
    a.provider.connect();
    await eventually(() => {
      assert.equal(a.text.toString(), b.text.toString());
      assert.ok(a.text.toString().includes("offline-A"));
      assert.ok(a.text.toString().includes("online-B"));
    });
  });

  it("keeps a client idle for 60 s connected (the server sends real traffic)", async function () {
    this.timeout(90_000);
    const idle = connect("idle");
    await synced(idle);
    const statuses: string[] = [];
    idle.provider.on("status", ({ status }: { status: string }) => statuses.push(status));
    const socket = idle.provider.ws;
    // Time is the subject here: the stock client drops a socket after 30 s without a message.
    await delay(60_000);
    assert.deepEqual(statuses, [], "no disconnect or reconnect while idle");
    assert.equal(idle.provider.ws, socket, "still the same socket");
    assert.equal(idle.provider.wsconnected, true);
    const other = connect("idle");
    await synced(other);
    idle.text.insert(0, "still here");
    await eventually(() => assert.equal(other.text.toString(), "still here"));
  });
});
