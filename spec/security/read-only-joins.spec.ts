import { strict as assert } from "node:assert";
import { join } from "node:path";
import { Redis } from "ioredis";
import {
  CloseCodes,
  ErrorCodes,
  MemoryDocumentStore,
  isOpStreamError,
  type Authorizer,
} from "../../src/index.js";
import { RedisOwnership } from "../../src/backplane/redis/redis-ownership.js";
import { OwnerRequests } from "../../src/router/rpc.js";
import { connectClient, synced, type Client } from "../support/clients.js";
import { eventually } from "../support/eventually.js";
import {
  PROVIDER_VERSIONS,
  connectHocuspocus,
  hpSynced,
  type HocuspocusClient,
} from "../support/hocuspocus.js";
import { api } from "../support/management.js";
import { startRedis, type RedisServer } from "../support/redis.js";
import { MANAGEMENT_TOKEN } from "../support/management.js";
import { startServer, type TestServer } from "../support/server.js";
import { tempDir } from "../support/temp.js";
import { sessionText } from "../support/session.js";

/** Finding 4 of issue #23: a read-only peer must never create, resurrect or persist a document. */

/** "reader" reads every document; anything else writes. */
const authorizer: Authorizer = ({ token }) => (token === "reader" ? "readonly" : "read-write");
const v4 = PROVIDER_VERSIONS.find((version) => version.name === "v4")!;

async function refusedJoins(server: TestServer, reason: string): Promise<number> {
  const { values } = await server.host.metrics.joinsRefused.get();
  return values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

/** Records the close codes a y-websocket client gets (it keeps reconnecting, as the stock provider does). */
function closeCodesOf(client: Client): number[] {
  const codes: number[] = [];
  client.provider.on("connection-close", (event: CloseEvent | null) => {
    if (event) codes.push(event.code);
  });
  return codes;
}

describe("security: read-only joins never create documents (finding 4)", function () {
  this.timeout(30_000);
  let server: TestServer;
  let base: string;
  const clients: { destroy(): void }[] = [];
  const track = <T extends { destroy(): void }>(client: T): T => {
    clients.push(client);
    return client;
  };

  beforeEach(async () => {
    server = await startServer(
      (b) =>
        b
          .useSqliteStorage(join(tempDir(), "read-only-joins.sqlite"))
          .useAuthorization(authorizer)
          .useManagementAuthorization(MANAGEMENT_TOKEN),
      // 800 providers on one socket send more frames at once than the default flood
      // limit allows; that limit has specs of its own. A socket whose every document
      // is denied is closed by the pre-auth timeout (10 s), and its providers would
      // then ask again: on a loaded machine that can land inside this spec.
      { transport: { messageRate: 0, authTimeoutMs: 0 } },
    );
    base = `http://127.0.0.1:${server.port}`;
  });
  afterEach(async () => {
    clients.splice(0).forEach((client) => client.destroy());
    await server.stop();
  });

  it("800 read-only joins on one Hocuspocus socket create no row and load no session; each is denied (document-not-found, or too-many-documents past the socket cap)", async () => {
    const socket = track(v4.socket(`${server.url}/hocuspocus`));
    const readers: HocuspocusClient[] = [];
    for (let i = 0; i < 800; i++) {
      readers.push(connectHocuspocus(v4, "", `missing-${i}`, { token: "reader", socket }));
    }
    clients.push(...readers);
    await eventually(() => {
      const denied = readers.filter((reader) => reader.events.denied.length > 0).length;
      assert.equal(denied, 800, `${denied} of 800 denied`);
    }, 20_000);
    // All 800 Auth frames arrive at once: past 100 joins in flight on the socket
    // (maxDocumentsPerSocket), the rest are refused before any storage work.
    for (const reader of readers) {
      assert.equal(reader.events.denied.length, 1);
      assert.ok(["document-not-found", "too-many-documents"].includes(reader.events.denied[0]!));
      assert.deepEqual(reader.events.authenticated, [], "never authenticated");
    }
    assert.deepEqual(await server.host.store.list(), [], "no storage row");
    assert.equal(server.host.router.sessionCount, 0, "no session loaded");
    const notFound = await refusedJoins(server, "document-not-found");
    assert.equal(notFound + (await refusedJoins(server, "socket-limit")), 800);
    assert.ok(notFound >= 100, `${notFound} reached storage`);

    // The same socket still serves a writer, and the writer's document its readers.
    const writer = track(connectHocuspocus(v4, "", "made-by-writer", { token: "writer", socket }));
    // Said in full on failure: a denial here would mean the socket's cap still counts the 800.
    await eventually(() => {
      assert.deepEqual(writer.events.denied, [], "the writer was denied");
      assert.ok(writer.provider.isSynced, `writer not synced yet (socket ${socket.status})`);
    }, 15_000);
    writer.text.insert(0, "hello");
    const reader = track(
      connectHocuspocus(v4, `${server.url}/hocuspocus`, "made-by-writer", { token: "reader" }),
    );
    await hpSynced(reader);
    await eventually(() => assert.equal(reader.text.toString(), "hello"));
    assert.deepEqual(await server.host.store.list(), ["made-by-writer"]);
  });

  it("y-websocket: a reader of a missing document is closed with 4005 and joins once a writer creates it", async () => {
    const reader = track(connectClient(server.url, "later", { params: { token: "reader" } }));
    const codes = closeCodesOf(reader);
    await eventually(() => assert.ok(codes.length >= 2, `close codes ${codes.join(", ")}`));
    assert.ok(
      codes.every((code) => code === CloseCodes.DOCUMENT_NOT_FOUND),
      `close codes ${codes.join(", ")}`,
    );
    assert.deepEqual(await server.host.store.list(), [], "its retries created nothing either");

    const writer = track(connectClient(server.url, "later", { params: { token: "writer" } }));
    await synced(writer);
    writer.text.insert(0, "now it exists");
    await synced(reader, 10_000); // the stock provider's reconnect
    await eventually(() => assert.equal(reader.text.toString(), "now it exists"));
  });

  it("a document deleted through the management API is not resurrected by readers of either dialect", async () => {
    const writer = track(connectClient(server.url, "doomed", { params: { token: "writer" } }));
    await synced(writer);
    writer.text.insert(0, "secret");
    await eventually(async () => assert.deepEqual(await server.host.store.list(), ["doomed"]));
    writer.provider.shouldConnect = false; // a writer would re-create it: that is its right
    assert.equal((await api(base, "DELETE", "/doomed")).status, 204);
    assert.deepEqual(await server.host.store.list(), []);

    const yReader = track(connectClient(server.url, "doomed", { params: { token: "reader" } }));
    const codes = closeCodesOf(yReader);
    const hpReader = track(connectHocuspocus(v4, `${server.url}/hocuspocus`, "doomed", { token: "reader" }));
    await eventually(() => assert.deepEqual(hpReader.events.denied, ["document-not-found"]));
    await eventually(() =>
      assert.ok(codes.includes(CloseCodes.DOCUMENT_NOT_FOUND), `codes ${codes.join(", ")}`),
    );
    assert.deepEqual(await server.host.store.list(), [], "still deleted");
    assert.equal((await api(base, "GET", "/doomed")).status, 404);
    assert.equal(yReader.text.toString(), "", "the reader saw nothing of the deleted content");
  });

  it("a reader joins a loaded document, and loads one a writer created but wrote nothing to", async () => {
    const writer = track(connectClient(server.url, "blank", { params: { token: "writer" } }));
    await synced(writer); // the writer's join created the (empty) record
    const [yReader, hpReader] = [
      track(connectClient(server.url, "blank", { params: { token: "reader" } })),
      track(connectHocuspocus(v4, `${server.url}/hocuspocus`, "blank", { token: "reader" })),
    ];
    await Promise.all([synced(yReader), hpSynced(hpReader)]);
    assert.deepEqual(hpReader.events.authenticated, ["readonly"]);
    for (const client of [writer, yReader, hpReader]) client.destroy();
    await eventually(() => assert.equal(server.host.router.localSession("blank")?.peerCount, 0));
    await server.host.router.localSession("blank")!.close("unloaded");

    const again = track(connectHocuspocus(v4, `${server.url}/hocuspocus`, "blank", { token: "reader" }));
    await hpSynced(again);
    assert.deepEqual(await server.host.store.list(), ["blank"]);
  });

  it("a reader loads an existing document that is not in memory", async () => {
    const writer = track(connectClient(server.url, "stored", { params: { token: "writer" } }));
    await synced(writer);
    writer.text.insert(0, "durable");
    await eventually(async () =>
      assert.equal(await sessionText(server.host.router.localSession("stored")), "durable"),
    );
    writer.destroy();
    await eventually(() => assert.equal(server.host.router.localSession("stored")?.peerCount, 0));
    await server.host.router.localSession("stored")!.close("unloaded");

    const reader = track(connectHocuspocus(v4, `${server.url}/hocuspocus`, "stored", { token: "reader" }));
    await hpSynced(reader);
    await eventually(() => assert.equal(reader.text.toString(), "durable"));
  });

  it("a writer and a reader joining a new document at once: the writer creates it, the reader gets in", async () => {
    for (let round = 0; round < 5; round++) {
      const name = `race-${round}`;
      const reader = track(connectClient(server.url, name, { params: { token: "reader" } }));
      const writer = track(connectClient(server.url, name, { params: { token: "writer" } }));
      await Promise.all([synced(writer), synced(reader, 10_000)]);
      writer.text.insert(0, name);
      await eventually(() => assert.equal(reader.text.toString(), name));
      clients.splice(0).forEach((client) => client.destroy());
    }
  });

  it("a management read of a missing document creates nothing, even past the API's own existence check", async () => {
    await assert.rejects(server.host.router.manage("never", OwnerRequests.STATE), (error: unknown) =>
      isOpStreamError(error, ErrorCodes.DOCUMENT_NOT_FOUND),
    );
    assert.equal((await api(base, "GET", "/never")).status, 404);
    assert.deepEqual(await server.host.store.list(), []);
  });
});

describe("security: a reader's failed claim frees its Redis lease at once", function () {
  this.timeout(20_000);
  let redisServer: RedisServer;
  let redis: Redis;
  before(async () => {
    redisServer = await startRedis();
    redis = new Redis(redisServer.url);
  });
  after(async () => {
    redis.disconnect();
    await redisServer.stop();
  });

  it("RedisOwnership: acquire with mustExist rejects DOCUMENT_NOT_FOUND, leaves no owner key and no record", async () => {
    const store = new MemoryDocumentStore();
    const keyPrefix = `read-only-joins:${Date.now()}:`;
    const reader = new RedisOwnership({ redis, nodeId: "reader-node", store, keyPrefix });
    const writer = new RedisOwnership({ redis, nodeId: "writer-node", store, keyPrefix });
    await assert.rejects(reader.acquire("doc", { mustExist: true }), (error: unknown) =>
      isOpStreamError(error, ErrorCodes.DOCUMENT_NOT_FOUND),
    );
    assert.equal(await reader.ownerOf("doc"), null, "the key was freed");
    assert.equal(await redis.exists(`${keyPrefix}epoch:doc`), 0, "no progress mark either");
    assert.deepEqual(await store.list(), []);
    const lease = await writer.acquire("doc");
    assert.ok(lease, "another node's writer takes it at once");
    assert.deepEqual(await store.list(), ["doc"]);
    const readerLease = await reader.acquire("doc", { mustExist: true });
    assert.equal(readerLease, null, "held by the writer's node: the reader relays");
    await lease.release();
  });
});
