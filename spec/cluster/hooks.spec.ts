import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import * as Y from "yjs";
import { SqliteDocumentStore } from "../../src/storage/sqlite/sqlite-store.js";
import { connectClient, synced, type Client } from "../support/clients.js";
import { eventually } from "../support/eventually.js";
import {
  PROVIDER_VERSIONS,
  connectHocuspocus,
  hpSynced,
  type HocuspocusClient,
} from "../support/hocuspocus.js";
import { calls, lifecycle, recordHooks, type Recorded } from "../support/hooks.js";
import { startRedis, type RedisServer } from "../support/redis.js";
import { startServer, type TestServer } from "../support/server.js";
import { tempDir } from "../support/temp.js";

const IDLE_MS = 200;
const v4 = PROVIDER_VERSIONS.find((version) => version.name === "v4")!;

/** Whether the document `store` holds for `docId` has the seq `seq` and everything in `update`. */
async function stored(store: SqliteDocumentStore, docId: string, seq: number, update: Uint8Array) {
  const { snapshot, ops } = await store.load(docId);
  const doc = new Y.Doc();
  if (snapshot) Y.applyUpdate(doc, snapshot.state);
  for (const op of ops) Y.applyUpdate(doc, op.update);
  const before = Buffer.from(Y.encodeStateVector(doc));
  Y.applyUpdate(doc, update);
  const holds = before.equals(Buffer.from(Y.encodeStateVector(doc)));
  doc.destroy();
  return holds && ((snapshot?.seq ?? 0) >= seq || ops.some((op) => op.seq === seq));
}

describe("lifecycle hooks across two nodes (Redis backplane, one SQLite file)", function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let nodes: TestServer[];
  /** What each node's hooks were told, by node index. */
  let recorded: Recorded[][];
  /** Per node: whether the store held each change when that node's `change` hook read it back. */
  let readBack: boolean[][];
  const clients: (Client | HocuspocusClient)[] = [];

  before(async () => (redis = await startRedis()));
  after(() => redis.stop());

  beforeEach(async () => {
    const keyPrefix = `spec-${randomUUID().slice(0, 8)}:`;
    const path = join(tempDir(), "hooks-cluster.sqlite");
    recorded = [[], []];
    readBack = [[], []];
    nodes = [];
    // One after the other: the first node creates the file's schema.
    for (const index of [0, 1]) {
      const store = new SqliteDocumentStore({ path });
      nodes.push(
        await startServer(
          (b) => {
            recordHooks(b, recorded[index]!)
              .useRedisBackplane({ connectionString: redis.url, keyPrefix, nodeId: `node-${index}` })
              .useStorage(store)
              .on("change", async ({ docId, seq, update }) => {
                readBack[index]!.push(await stored(store, docId, seq, update));
              });
          },
          { sessions: { idleTimeoutMs: IDLE_MS } },
        ),
      );
    }
  });
  afterEach(async () => {
    clients.splice(0).forEach((client) => client.destroy());
    await Promise.all(nodes.map((node) => node.stop()));
  });

  it("connect and disconnect fire on the node a client is on; loaded, change, awareness and unloaded on the owner", async () => {
    const [owner, relay] = [0, 1];
    const local = connectClient(nodes[owner]!.url, "doc");
    clients.push(local);
    await synced(local);
    const hp = connectHocuspocus(v4, `${nodes[relay]!.url}/hocuspocus`, "doc");
    const yws = connectClient(nodes[relay]!.url, "doc");
    clients.push(hp, yws);
    await Promise.all([hpSynced(hp), synced(yws)]);
    assert.ok(nodes[owner]!.host.router.localSession("doc"), "the first node owns the document");

    const connects = calls(recorded[relay]!, "connect");
    assert.deepEqual(connects.map((e) => [e.nodeId, e.dialect, e.docId]).sort(), [
      ["node-1", "hocuspocus", "doc"],
      ["node-1", "y-websocket", "doc"],
    ]);
    assert.deepEqual(
      calls(recorded[owner]!, "connect").map((e) => e.nodeId),
      ["node-0"],
      "the owner is told only of its own client",
    );

    hp.text.insert(0, "hp;");
    await eventually(() => assert.equal(local.text.toString(), "hp;"));
    yws.text.insert(0, "yws;");
    await eventually(() => assert.equal(local.text.toString(), "yws;hp;"));
    const handle = await nodes[relay]!.host.documents.open("doc");
    await handle.transact((doc) => doc.getText("text").insert(0, "api;"));
    await eventually(() => assert.equal(local.text.toString(), "api;yws;hp;"));

    const changes = calls(recorded[owner]!, "change");
    const byPeer = (peerId: string | undefined) => changes.filter((e) => e.origin.peerId === peerId);
    const hpConnect = connects.find((e) => e.dialect === "hocuspocus");
    const ywsConnect = connects.find((e) => e.dialect === "y-websocket");
    for (const connect of [hpConnect, ywsConnect]) {
      const theirs = byPeer(connect?.peerId);
      assert.ok(theirs.length > 0, `the ${connect?.dialect} client's change fired on the owner`);
      for (const change of theirs)
        assert.deepEqual(change.origin, { kind: "client", peerId: connect?.peerId, nodeId: "node-1" });
    }
    assert.deepEqual(
      byPeer(handle.id).map((e) => e.origin),
      [{ kind: "server", peerId: handle.id, nodeId: "node-1" }],
    );
    assert.ok(changes.every((e) => e.nodeId === "node-0"));
    assert.equal(calls(recorded[relay]!, "change").length, 0, "a relay never fires change");
    await eventually(() => assert.equal(readBack[owner]!.length, changes.length));
    assert.ok(
      readBack[owner]!.every(Boolean),
      "every change was in the store when the owner's hook read it back",
    );

    hp.provider.awareness?.setLocalStateField("user", { name: "Relayed" });
    const hpClient = hp.doc.clientID;
    await eventually(() =>
      assert.ok(
        calls(recorded[owner]!, "awareness").some(
          (e) => e.added.includes(hpClient) || e.updated.includes(hpClient),
        ),
        "the relayed client's presence fired on the owner",
      ),
    );
    assert.equal(calls(recorded[relay]!, "awareness").length, 0, "a relay never fires awareness");

    await handle.close();
    hp.destroy();
    yws.destroy();
    clients.splice(1);
    await eventually(() => assert.equal(calls(recorded[relay]!, "disconnect").length, 2));
    assert.deepEqual(
      calls(recorded[relay]!, "disconnect").map((e) => e.reason),
      ["closed", "closed"],
    );
    assert.ok(
      calls(recorded[owner]!, "awareness").some((e) => e.removed.includes(hpClient)),
      "the relayed client's presence was removed on the owner",
    );
    local.destroy();
    clients.splice(0);
    await eventually(() => assert.equal(calls(recorded[owner]!, "unloaded").length, 1), 5000);

    assert.deepEqual(lifecycle(recorded[owner]!, "doc"), [
      "loaded",
      "connect",
      "change",
      "disconnect",
      "unloaded",
    ]);
    assert.deepEqual(lifecycle(recorded[relay]!, "doc"), ["connect", "connect", "disconnect", "disconnect"]);
    assert.equal(calls(recorded[owner]!, "unloaded")[0]?.reason, "idle");
  });

  it("an owner that shuts down unloads; the relay that takes over loads, and its clients' changes fire there", async () => {
    const first = connectClient(nodes[0]!.url, "moving");
    clients.push(first);
    await synced(first);
    const second = connectClient(nodes[1]!.url, "moving");
    clients.push(second);
    await synced(second);
    const [loadedFirst] = calls(recorded[0]!, "loaded");
    first.provider.shouldConnect = false;

    await nodes[0]!.stop();
    assert.equal(calls(recorded[0]!, "unloaded")[0]?.reason, "shutdown");
    await eventually(() => assert.equal(calls(recorded[1]!, "loaded").length, 1));
    const [loadedSecond] = calls(recorded[1]!, "loaded");
    assert.ok(loadedSecond!.epoch > loadedFirst!.epoch, "the new owner claimed a newer epoch");

    second.text.insert(0, "after the move");
    await eventually(() => assert.equal(calls(recorded[1]!, "change").length, 1));
    const [connect] = calls(recorded[1]!, "connect");
    assert.deepEqual(calls(recorded[1]!, "change")[0]?.origin, {
      kind: "client",
      peerId: connect?.peerId,
      nodeId: "node-1",
    });
    assert.deepEqual(
      lifecycle(recorded[1]!, "moving"),
      ["connect", "loaded", "change"],
      "no second connect: the client stayed",
    );
    await eventually(() => assert.deepEqual(readBack[1], [true]));
  });
});
