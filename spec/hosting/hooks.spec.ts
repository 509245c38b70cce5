import { strict as assert } from "node:assert";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import * as Y from "yjs";
import {
  ErrorCodes,
  ServiceCollection,
  isOpStreamError,
  type ChangeEvent,
  type OpStreamBuilder,
} from "../../src/index.js";
import { SqliteDocumentStore } from "../../src/storage/sqlite/sqlite-store.js";
import { captureLogger } from "../support/capture-logger.js";
import { connectClient, synced, type Client } from "../support/clients.js";
import { eventually } from "../support/eventually.js";
import {
  PROVIDER_VERSIONS,
  connectHocuspocus,
  hpSynced,
  type HocuspocusClient,
} from "../support/hocuspocus.js";
import { calls, lifecycle, recordHooks, type Recorded } from "../support/hooks.js";
import { counted } from "../support/metrics.js";
import { startServer, testLogger, type TestServer } from "../support/server.js";
import { tempDir } from "../support/temp.js";

/** A real SQLite store that remembers the seqs of the appends that have committed. */
class CommitRecordingStore extends SqliteDocumentStore {
  readonly committed = new Set<number>();
  override async append(docId: string, epoch: number, updates: readonly Uint8Array[]): Promise<number[]> {
    const seqs = await super.append(docId, epoch, updates);
    for (const seq of seqs) this.committed.add(seq);
    return seqs;
  }
}

/** What a `change` hook found when it was called, and when it read the store back. */
interface DurabilityCheck {
  readonly seq: number;
  /** The append of `seq` had committed when the hook was called. */
  readonly committedBefore: boolean;
  /** The stored document, read back inside the hook, holds the change. */
  readonly readBack: boolean;
}

/** The document `store` holds for `docId` (latest snapshot + the ops after it). */
async function storedDoc(store: SqliteDocumentStore, docId: string): Promise<Y.Doc> {
  const { snapshot, ops } = await store.load(docId);
  const doc = new Y.Doc();
  if (snapshot) Y.applyUpdate(doc, snapshot.state);
  for (const op of ops) Y.applyUpdate(doc, op.update);
  return doc;
}

async function storedText(store: SqliteDocumentStore, docId: string): Promise<string> {
  const doc = await storedDoc(store, docId);
  const text = doc.getText("text").toString();
  doc.destroy();
  return text;
}

/** Whether the document `store` holds for `docId` already has everything in `update`. */
async function storeHolds(store: SqliteDocumentStore, docId: string, update: Uint8Array): Promise<boolean> {
  const doc = await storedDoc(store, docId);
  const before = Y.encodeStateVector(doc);
  Y.applyUpdate(doc, update);
  const holds = Buffer.from(Y.encodeStateVector(doc)).equals(Buffer.from(before));
  doc.destroy();
  return holds;
}

const IDLE_MS = 150;

describe("lifecycle hooks on one node", function () {
  this.timeout(20_000);
  let server: TestServer;
  let store: CommitRecordingStore;
  let recorded: Recorded[];
  let checks: DurabilityCheck[];
  const clients: (Client | HocuspocusClient)[] = [];

  beforeEach(async () => {
    recorded = [];
    checks = [];
    store = new CommitRecordingStore({ path: join(tempDir(), "hooks.sqlite") });
    server = await startServer(
      (b) => {
        recordHooks(b.useStorage(store), recorded);
        b.on("change", async ({ docId, seq, update }) => {
          const committedBefore = store.committed.has(seq);
          checks.push({ seq, committedBefore, readBack: await storeHolds(store, docId, update) });
        });
      },
      { sessions: { idleTimeoutMs: IDLE_MS } },
    );
  });
  afterEach(async () => {
    clients.splice(0).forEach((client) => client.destroy());
    await server.stop();
  });

  it("y-websocket: loaded, connect, durable changes, disconnect, then unloaded once idle", async () => {
    const client = connectClient(server.url, "yws");
    clients.push(client);
    await synced(client);
    client.text.insert(0, "hello");
    client.text.insert(5, " world");
    await eventually(async () => assert.equal(await storedText(store, "yws"), "hello world"));
    await eventually(() => assert.equal(checks.length, calls(recorded, "change").length));
    const [connect] = calls(recorded, "connect");
    assert.ok(connect, "connect fired");
    assert.deepEqual(
      { ...connect },
      {
        docId: "yws",
        nodeId: server.host.nodeId,
        peerId: connect.peerId,
        dialect: "y-websocket",
        access: "read-write",
      },
    );
    for (const change of calls(recorded, "change")) {
      assert.deepEqual(change.origin, { kind: "client", peerId: connect.peerId, nodeId: server.host.nodeId });
      assert.equal(change.docId, "yws");
    }
    for (const check of checks) {
      assert.ok(check.committedBefore, `the append of seq ${check.seq} committed before its change hook ran`);
      assert.ok(check.readBack, `the store held seq ${check.seq}'s change when the hook read it back`);
    }
    const [loaded] = calls(recorded, "loaded");
    assert.deepEqual(
      { ...loaded },
      { docId: "yws", nodeId: server.host.nodeId, epoch: loaded?.epoch, seq: 0 },
    );

    client.destroy();
    await eventually(() => assert.equal(calls(recorded, "unloaded").length, 1), 5000);
    assert.deepEqual(lifecycle(recorded, "yws"), ["loaded", "connect", "change", "disconnect", "unloaded"]);
    const [disconnect] = calls(recorded, "disconnect");
    assert.deepEqual({ ...disconnect }, { ...connect, reason: "closed" });
    assert.deepEqual(
      { ...calls(recorded, "unloaded")[0] },
      { docId: "yws", nodeId: server.host.nodeId, epoch: loaded?.epoch, reason: "idle" },
    );
  });

  for (const version of PROVIDER_VERSIONS) {
    it(`@hocuspocus/provider ${version.name}: the same events, with the Hocuspocus dialect`, async () => {
      const client = connectHocuspocus(version, `${server.url}/hocuspocus`, "hp");
      clients.push(client);
      await hpSynced(client);
      client.text.insert(0, "from hocuspocus");
      await eventually(() => assert.equal(checks.length >= 1, true));
      const [connect] = calls(recorded, "connect");
      assert.equal(connect?.dialect, "hocuspocus");
      assert.equal(connect?.access, "read-write");
      const changes = calls(recorded, "change");
      assert.ok(
        changes.every((c) => c.origin.peerId === connect?.peerId && c.origin.kind === "client"),
        "each change names the connection it came from",
      );
      assert.ok(
        checks.every((c) => c.committedBefore && c.readBack),
        "every change was durable when its hook ran",
      );
      client.destroy();
      clients.pop();
      await eventually(() => assert.equal(calls(recorded, "unloaded").length, 1), 5000);
      assert.deepEqual(lifecycle(recorded, "hp"), ["loaded", "connect", "change", "disconnect", "unloaded"]);
    });
  }

  it("awareness: fires on the owner with the client ids added, updated and removed", async () => {
    const watcher = connectClient(server.url, "presence");
    const sender = connectClient(server.url, "presence");
    clients.push(watcher, sender);
    await Promise.all([synced(watcher), synced(sender)]);
    const id = sender.doc.clientID;
    const about = () =>
      calls(recorded, "awareness").filter(
        (e) => e.added.includes(id) || e.updated.includes(id) || e.removed.includes(id),
      );
    sender.provider.awareness.setLocalStateField("user", { name: "Ada" });
    await eventually(() => assert.ok(about().some((e) => e.updated.includes(id) || e.added.includes(id))));
    sender.provider.awareness.setLocalStateField("user", { name: "Ada L." });
    await eventually(() =>
      assert.ok(
        about().some((e) => e.updated.includes(id)),
        "a change is an update",
      ),
    );
    sender.destroy();
    await eventually(() =>
      assert.ok(
        about().some((e) => e.removed.includes(id)),
        "leaving removes it",
      ),
    );
    const kinds = about().map((e) =>
      e.added.includes(id) ? "added" : e.updated.includes(id) ? "updated" : "removed",
    );
    assert.equal(kinds[0], "added", "the first state of a client is an addition");
    assert.equal(kinds.at(-1), "removed");
    const last = about().at(-1)!;
    assert.equal(last.docId, "presence");
    assert.equal(last.nodeId, server.host.nodeId);
    assert.ok(last.update.byteLength > 0, "the y-protocols update is passed on");
  });

  it("server-side documents: changes have a server origin and no connect", async () => {
    const handle = await server.host.documents.open("api");
    await handle.transact((doc) => doc.getText("text").insert(0, "from the server"));
    await eventually(() => assert.equal(checks.length, 1));
    const [change] = calls(recorded, "change");
    assert.deepEqual(change?.origin, { kind: "server", peerId: handle.id, nodeId: server.host.nodeId });
    assert.ok(checks[0]?.committedBefore, "durable before the hook");
    assert.equal(calls(recorded, "connect").length, 0, "a server-side document is not a connection");
    await handle.close();
  });

  it("listen after listening, then on shutdown: disconnect and unloaded (shutdown), destroy last", async () => {
    const [listen] = calls(recorded, "listen");
    assert.equal(listen?.port, server.port);
    assert.equal(listen?.server, server.server);
    const client = connectClient(server.url, "stop");
    clients.push(client);
    await synced(client);
    client.provider.shouldConnect = false;
    await server.stop();
    assert.deepEqual(
      recorded.map((r) => r.name).filter((name) => name !== "awareness" && name !== "change"),
      ["listen", "loaded", "connect", "disconnect", "unloaded", "destroy"],
    );
    assert.equal(calls(recorded, "disconnect")[0]?.reason, "shutdown");
    assert.equal(calls(recorded, "unloaded")[0]?.reason, "shutdown");
    assert.deepEqual({ ...calls(recorded, "destroy")[0] }, { nodeId: server.host.nodeId });
  });
});

describe("lifecycle hooks: registration and failures", function () {
  this.timeout(20_000);
  const clients: Client[] = [];
  afterEach(() => clients.splice(0).forEach((client) => client.destroy()));

  it("listen fires for a server given to attach(), once it listens", async () => {
    const recorded: Recorded[] = [];
    const services = new ServiceCollection();
    recordHooks(
      services.addOpStream({ processMetrics: false }).useLogger(testLogger()).useMemoryStorage(),
      recorded,
    );
    const host = services.build();
    const server = createServer();
    host.attach(server);
    assert.equal(calls(recorded, "listen").length, 0, "not before the server listens");
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    assert.deepEqual(
      calls(recorded, "listen").map((e) => e.port),
      [(server.address() as AddressInfo).port],
    );
    await host.shutdown();
    assert.equal(calls(recorded, "destroy").length, 1);
  });

  it("refuses an unknown event or a handler that is not a function", () => {
    const builder = new ServiceCollection().addOpStream({ processMetrics: false });
    const on = builder.on.bind(builder) as (event: string, handler: unknown) => OpStreamBuilder;
    assert.throws(
      () => on("onConnect", () => undefined),
      (error: unknown) => isOpStreamError(error, ErrorCodes.INVALID_OPTION) && /connect/.test(error.message),
    );
    assert.throws(
      () => on("change", "not a function"),
      (error: unknown) => isOpStreamError(error, ErrorCodes.INVALID_OPTION),
    );
  });

  it("a throwing or rejecting hook is logged and counted; later handlers still run and clients converge", async () => {
    const capture = captureLogger();
    const seen: string[] = [];
    const server = await startServer((b) =>
      b
        .useMemoryStorage()
        .useLogger(capture.logger)
        .on("change", () => {
          seen.push("first");
          throw new Error("change hook exploded");
        })
        .on("change", () => void seen.push("second"))
        .on("connect", () => Promise.reject(new Error("connect hook rejected")))
        .on("awareness", () => {
          throw new Error("awareness hook exploded");
        })
        .on("disconnect", () => {
          throw new Error("disconnect hook exploded");
        }),
    );
    try {
      const a = connectClient(server.url, "broken-hooks");
      const b = connectClient(server.url, "broken-hooks");
      clients.push(a, b);
      await Promise.all([synced(a), synced(b)]);
      for (let i = 0; i < 5; i++) {
        a.text.insert(a.text.length, `a${i};`);
        b.text.insert(0, `b${i};`);
      }
      a.provider.awareness.setLocalStateField("user", { name: "A" });
      await eventually(() => {
        assert.equal(a.text.toString(), b.text.toString());
        assert.equal(a.text.length, 30);
      });
      await eventually(() =>
        assert.equal(b.provider.awareness.getStates().get(a.doc.clientID)?.user !== undefined, true),
      );
      assert.ok(seen.length >= 4, "both change handlers ran, for several changes");
      for (let i = 0; i + 1 < seen.length; i += 2) {
        assert.deepEqual(seen.slice(i, i + 2), ["first", "second"], "in registration order, each time");
      }
      clients.pop()?.destroy();
      const metric = server.host.metrics.hookErrors;
      await eventually(async () => {
        for (const event of ["change", "connect", "awareness", "disconnect"]) {
          assert.ok((await counted(metric, { event })) >= 1, `a failing ${event} hook is counted`);
        }
      });
      const warnings = capture
        .lines()
        .map(
          (line) =>
            JSON.parse(line) as { level: number; event?: string; msg: string; err?: { message: string } },
        )
        .filter((entry) => entry.level === 40 && entry.event !== undefined);
      for (const event of ["change", "connect", "awareness", "disconnect"]) {
        assert.ok(
          warnings.some((w) => w.event === event && w.err?.message.includes("hook")),
          `a failing ${event} hook is logged at warn with the event name`,
        );
      }
      assert.equal(
        warnings.filter((w) => w.event === "change").length,
        1,
        "a hook failing on every change is logged once per interval, not per change",
      );
      // The session still works after every failure.
      a.text.insert(0, "after;");
      const late = connectClient(server.url, "broken-hooks");
      clients.push(late);
      await synced(late);
      await eventually(() =>
        assert.ok(late.text.toString().startsWith("after;"), "the session still serves"),
      );
    } finally {
      await server.stop();
    }
  });
});

describe("lifecycle hook payloads", () => {
  it("are frozen: one handler cannot change what the next sees", async () => {
    const seen: ChangeEvent[] = [];
    const frozen: boolean[] = [];
    const builder = (b: OpStreamBuilder) =>
      b
        .useMemoryStorage()
        .on("change", (event) => void frozen.push(Object.isFrozen(event)))
        .on("change", (event) => void seen.push(event));
    const server = await startServer(builder);
    try {
      const handle = await server.host.documents.open("frozen");
      const seq = await handle.transact((doc) => doc.getText("text").insert(0, "x"));
      await eventually(() => assert.equal(seen[0]?.seq, seq));
      assert.deepEqual(frozen, [true]);
      await handle.close();
    } finally {
      await server.stop();
    }
  });
});
