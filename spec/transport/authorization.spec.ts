import { strict as assert } from "node:assert";
import type { WebSocket } from "ws";
import { CloseCodes, documentScope, type Access, type AuthorizationRequest } from "../../src/index.js";
import { connectClient, synced, type Client } from "../support/clients.js";
import { CountingStore } from "../support/counting-store.js";
import { eventually } from "../support/eventually.js";
import { PROVIDER_VERSIONS, allAcknowledged, connectHocuspocus, hpSynced } from "../support/hocuspocus.js";
import type { HocuspocusClient, StockSocket } from "../support/hocuspocus.js";
import { startServer, type TestServer } from "../support/server.js";
import { JWT_SECRET, signToken } from "../support/tokens.js";
import { refusedWith } from "../support/upgrade.js";
import { sessionText } from "../support/session.js";

const inSeconds = (seconds: number) => Math.floor(Date.now() / 1000) + seconds;
const writeScope = (docId: string) => documentScope({ access: "read-write", docId });
const WRITE_ALL = documentScope({ access: "read-write", allDocuments: true });
const READ_ALL = documentScope({ access: "readonly", allDocuments: true });

async function refusals(server: TestServer, reason: string): Promise<number> {
  const metric = await server.host.metrics.upgradesRefused.get();
  return metric.values.filter((v) => v.labels.reason === reason).reduce((sum, v) => sum + v.value, 0);
}

async function rejected(server: TestServer, reason: string): Promise<number> {
  const metric = await server.host.metrics.updatesRejected.get();
  return metric.values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

const serverText = (server: TestServer, doc: string) => sessionText(server.host.router.localSession(doc));

describe("authorization with useJwtAuthorization, end to end", () => {
  let server: TestServer;
  let store: CountingStore;
  const clients: (Client | HocuspocusClient)[] = [];
  const track = <T extends Client | HocuspocusClient>(client: T): T => {
    clients.push(client);
    return client;
  };
  before(async () => {
    store = new CountingStore();
    server = await startServer((b) =>
      b.useStorage(store).useJwtAuthorization({ secret: JWT_SECRET, clockToleranceSec: 0 }),
    );
  });
  afterEach(() => clients.splice(0).forEach((c) => c.destroy()));
  after(() => server.stop());

  describe("y-websocket", () => {
    it("refuses no, invalid and expired tokens with 401, another document's token with 403, before any load", async () => {
      const forA = await signToken(writeScope("doc-a"));
      const expired = await signToken(WRITE_ALL, inSeconds(-60));
      const [unauthenticated, forbidden] = [
        await refusals(server, "unauthenticated"),
        await refusals(server, "forbidden"),
      ];
      assert.equal(await refusedWith(`${server.url}/doc-a`), 401, "no token");
      assert.equal(await refusedWith(`${server.url}/doc-a?token=not.a.jwt`), 401, "invalid token");
      assert.equal(await refusedWith(`${server.url}/doc-a`, ["opstream", expired]), 401, "expired");
      assert.equal(await refusedWith(`${server.url}/doc-b?token=${forA}`), 403, "A's token on B");
      assert.equal(await refusedWith(`${server.url}/doc-b`, ["opstream", forA]), 403, "A's token on B");
      assert.equal(await refusals(server, "unauthenticated"), unauthenticated + 3);
      assert.equal(await refusals(server, "forbidden"), forbidden + 2);
      assert.equal(store.touched("doc-a") || store.touched("doc-b"), false, "nothing was loaded");
      assert.deepEqual(await store.list(), []);
    });

    it("takes the token from the subprotocol (answering `opstream`) or the query; scopes decide the access", async () => {
      const writer = track(
        connectClient(server.url, "scoped", {
          protocols: ["opstream", await signToken(writeScope("scoped"))],
        }),
      );
      const viewer = track(
        connectClient(server.url, "scoped", {
          params: { token: await signToken(documentScope({ access: "readonly", docId: "scoped" })) },
        }),
      );
      const everything = track(
        connectClient(server.url, "scoped", { params: { token: await signToken(WRITE_ALL) } }),
      );
      await Promise.all([synced(writer), synced(viewer), synced(everything)]);
      assert.equal((writer.provider.ws as unknown as WebSocket).protocol, "opstream");
      writer.text.insert(0, "w;");
      everything.text.insert(0, "e;");
      await eventually(() => assert.equal(viewer.text.toString(), writer.text.toString()));
      viewer.text.insert(0, "viewer;");
      writer.text.insert(writer.text.length, "after;");
      await eventually(() => assert.equal(everything.text.toString(), writer.text.toString()));
      assert.equal(writer.text.toString().includes("viewer;"), false, "the read-only edit reached nobody");
      assert.equal(await serverText(server, "scoped"), writer.text.toString());
    });

    it("closes a live connection with 4003 when its token expires", async function () {
      this.timeout(10_000);
      const client = track(
        connectClient(server.url, "expiring", {
          params: { token: await signToken(writeScope("expiring"), inSeconds(2)) },
        }),
      );
      const codes: number[] = [];
      client.provider.on("connection-close", (event) => codes.push(event?.code ?? 0));
      await synced(client);
      const refused = await refusals(server, "unauthenticated");
      await eventually(() => assert.equal(codes[0], CloseCodes.ACCESS_EXPIRED), 5000);
      // Reconnecting with the same token is refused at the upgrade (401): the client stays out.
      await eventually(async () => assert.ok((await refusals(server, "unauthenticated")) > refused));
      assert.equal(client.provider.wsconnected, false);
      assert.equal(server.host.router.localSession("expiring")?.peerCount ?? 0, 0);
    });
  });

  for (const version of PROVIDER_VERSIONS) {
    describe(`Hocuspocus ${version.name}`, () => {
      const url = () => `${server.url}/hocuspocus`;

      it("denies no, invalid and expired tokens as unauthenticated, another document's as permission-denied, before any load", async () => {
        const forA = await signToken(writeScope(`${version.name}-a`));
        const expired = await signToken(WRITE_ALL, inSeconds(-60));
        const docB = `${version.name}-b`;
        const none = track(connectHocuspocus(version, url(), docB));
        const invalid = track(connectHocuspocus(version, url(), docB, { token: "not.a.jwt" }));
        const stale = track(connectHocuspocus(version, url(), docB, { token: expired }));
        const other = track(connectHocuspocus(version, url(), docB, { token: forA }));
        await eventually(() => {
          for (const client of [none, invalid, stale])
            assert.deepEqual(client.events.denied, ["unauthenticated"]);
          assert.deepEqual(other.events.denied, ["permission-denied"]);
        });
        assert.equal(store.touched(docB), false, "nothing was loaded");
      });

      it("honours read and read-write scopes", async () => {
        const doc = `${version.name}-scoped`;
        const writer = track(
          connectHocuspocus(version, url(), doc, { token: await signToken(writeScope(doc)) }),
        );
        await hpSynced(writer); // readers never create a document: the writer opens it first
        const reader = track(connectHocuspocus(version, url(), doc, { token: await signToken(READ_ALL) }));
        await hpSynced(reader);
        assert.deepEqual(writer.events.authenticated, ["read-write"]);
        assert.deepEqual(reader.events.authenticated, ["readonly"]);
        writer.text.insert(0, "written");
        await eventually(() => assert.equal(reader.text.toString(), "written"));
        const before = await rejected(server, "readonly");
        reader.text.insert(0, "refused ");
        await eventually(async () => assert.equal(await rejected(server, "readonly"), before + 1));
        await allAcknowledged(writer);
        assert.equal(await serverText(server, doc), "written");
      });

      it("closes the socket with 4003 when a token expires; a token function then reconnects with a fresh one", async function () {
        this.timeout(10_000);
        const doc = `${version.name}-expiring`;
        const tokens = [await signToken(writeScope(doc), inSeconds(2)), await signToken(writeScope(doc))];
        let calls = 0;
        const token = () => tokens[Math.min(calls++, 1)]!;
        const client = track(connectHocuspocus(version, url(), doc, { provider: { token } }));
        const peer = track(connectHocuspocus(version, url(), doc, { token: tokens[1]! }));
        const codes: number[] = [];
        client.socket.on("close", ({ event }: { event: { code: number } }) => codes.push(event.code));
        await Promise.all([hpSynced(client), hpSynced(peer)]);
        await eventually(() => assert.deepEqual(codes, [CloseCodes.ACCESS_EXPIRED]), 5000);
        await eventually(() => assert.deepEqual(client.events.authenticated, ["read-write", "read-write"]));
        client.text.insert(0, "after the refresh");
        await eventually(() => assert.equal(peer.text.toString(), "after the refresh"));
      });
    });
  }
});

describe("authorization decisions are made once per connection (and per Hocuspocus Auth), never per message", () => {
  let server: TestServer;
  const calls: AuthorizationRequest[] = [];
  const clients: (Client | HocuspocusClient)[] = [];
  const sockets: StockSocket[] = [];
  // A plain-Access authorizer (no grant object) keeps working.
  const counting = (request: AuthorizationRequest): Access => {
    calls.push(request);
    return "read-write";
  };
  before(async () => (server = await startServer((b) => b.useMemoryStorage().useAuthorization(counting))));
  afterEach(() => {
    clients.splice(0).forEach((c) => c.destroy());
    sockets.splice(0).forEach((s) => s.destroy());
  });
  after(() => server.stop());

  it("y-websocket: one call per connection, however many updates and awareness changes follow", async () => {
    const a = connectClient(server.url, "cached");
    const b = connectClient(server.url, "cached");
    clients.push(a, b);
    await Promise.all([synced(a), synced(b)]);
    for (let i = 0; i < 30; i++) {
      a.text.insert(a.text.length, `${i};`);
      b.provider.awareness.setLocalStateField("cursor", i);
    }
    await eventually(() => assert.equal(b.text.toString(), a.text.toString()));
    await eventually(() => assert.equal(a.provider.awareness.getStates().get(b.doc.clientID)?.cursor, 29));
    assert.equal(calls.filter((c) => c.docId === "cached").length, 2);
  });

  for (const version of PROVIDER_VERSIONS) {
    it(`Hocuspocus ${version.name}: one call per document's Auth, and one more per new token`, async () => {
      const url = `${server.url}/hocuspocus`;
      const socket = version.socket(url);
      sockets.push(socket);
      const [one, two] = [`${version.name}-one`, `${version.name}-two`];
      const a = connectHocuspocus(version, url, one, { socket, token: "t" });
      const b = connectHocuspocus(version, url, two, { socket, token: "t" });
      clients.push(a, b);
      await Promise.all([hpSynced(a), hpSynced(b)]);
      for (let i = 0; i < 30; i++) a.text.insert(a.text.length, `${i};`);
      await allAcknowledged(a);
      const count = () => calls.filter((c) => c.docId === one || c.docId === two).length;
      assert.equal(count(), 2);
      await a.provider.sendToken();
      await eventually(() => assert.equal(count(), 3));
    });
  }
});
