import { strict as assert } from "node:assert";
import type { Authorizer, StatelessRequest } from "../../src/index.js";
import { connectClient, synced, type Client } from "../support/clients.js";
import { GatedStore } from "../support/engine.js";
import { eventually } from "../support/eventually.js";
import {
  PROVIDER_VERSIONS,
  allAcknowledged,
  connectHocuspocus,
  hpSynced,
  type HocuspocusClient,
  type StockSocket,
} from "../support/hocuspocus.js";
import { MANAGEMENT_TOKEN, api } from "../support/management.js";
import { startServer, type TestServer } from "../support/server.js";
import { sessionText } from "../support/session.js";

/** Tokens the specs' authorizer understands: "viewer" reads, "bad" and documents named `denied*` are refused. */
const authorizer =
  (seen: { docId: string; token: string | undefined }[]): Authorizer =>
  ({ docId, token }) => {
    seen.push({ docId, token });
    if (token === "bad" || docId.startsWith("denied")) return "deny";
    return token === "viewer" ? "readonly" : "read-write";
  };

/** The specs' stateless handler: `echo:x` is answered to the sender, `all:x` broadcast. */
function statelessHandler(received: StatelessRequest[]) {
  return async (request: StatelessRequest): Promise<void> => {
    received.push(request);
    if (request.payload.startsWith("echo:")) request.reply(request.payload);
    if (request.payload.startsWith("all:")) await request.broadcast(request.payload);
  };
}

async function rejected(server: TestServer, reason: string): Promise<number> {
  const metric = await server.host.metrics.updatesRejected.get();
  return metric.values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

const serverText = (server: TestServer, doc: string) => sessionText(server.host.router.localSession(doc));

for (const version of PROVIDER_VERSIONS) {
  describe(`Hocuspocus dialect with the stock @hocuspocus/provider ${version.name}`, () => {
    let server: TestServer;
    let url: string;
    const seen: { docId: string; token: string | undefined }[] = [];
    const received: StatelessRequest[] = [];
    const clients: (HocuspocusClient | Client)[] = [];
    const sockets: StockSocket[] = [];
    const connect = (doc: string, options: Parameters<typeof connectHocuspocus>[3] = {}) => {
      const client = connectHocuspocus(version, url, doc, options);
      clients.push(client);
      return client;
    };
    const sharedSocket = () => {
      const socket = version.socket(url);
      sockets.push(socket);
      return socket;
    };
    before(async () => {
      server = await startServer((b) =>
        b
          .useMemoryStorage()
          .useAuthorization(authorizer(seen))
          .addStatelessHandler(statelessHandler(received))
          .useManagementAuthorization(MANAGEMENT_TOKEN),
      );
      url = `${server.url}/hocuspocus`;
    });
    afterEach(() => {
      clients.splice(0).forEach((c) => c.destroy());
      sockets.splice(0).forEach((s) => s.destroy());
    });
    after(() => server.stop());

    it("authorizes each document with the token of its Auth message, then syncs", async () => {
      const a = connect("auth", { token: "secret" });
      const anonymous = connect("auth");
      await Promise.all([hpSynced(a), hpSynced(anonymous)]);
      assert.deepEqual(a.events.authenticated, ["read-write"]);
      assert.ok(seen.some((s) => s.docId === "auth" && s.token === "secret"));
      assert.ok(
        seen.some((s) => s.docId === "auth" && s.token === undefined),
        "an empty token is none",
      );
      a.text.insert(0, "hello");
      await eventually(() => assert.equal(anonymous.text.toString(), "hello"));
    });

    it("denies with PermissionDenied before loading; the socket's other documents carry on", async () => {
      const socket = sharedSocket();
      const denied = connect("denied-doc", { socket });
      const allowed = connect("allowed-doc", { socket });
      const other = connect("allowed-doc");
      await eventually(() => assert.deepEqual(denied.events.denied, ["permission-denied"]));
      assert.equal(denied.provider.isAuthenticated, false);
      assert.equal(server.host.router.localSession("denied-doc"), undefined, "never loaded");
      const before = await rejected(server, "denied");
      denied.text.insert(0, "not stored");
      await eventually(async () => assert.equal(await rejected(server, "denied"), before + 1));
      await Promise.all([hpSynced(allowed), hpSynced(other)]);
      allowed.text.insert(0, "still works");
      await eventually(() => assert.equal(other.text.toString(), "still works"));
      assert.equal(server.host.router.localSession("denied-doc"), undefined);
    });

    it("read-only scope: receives everything, its edits are refused and counted, never acknowledged", async () => {
      const writer = connect("readonly", { token: "secret" });
      await hpSynced(writer); // readers never create a document: the writer opens it first
      const viewer = connect("readonly", { token: "viewer" });
      await hpSynced(viewer);
      assert.deepEqual(viewer.events.authenticated, ["readonly"]);
      assert.equal(viewer.provider.authorizedScope, "readonly");
      await allAcknowledged(viewer); // its opening SyncStep2 held nothing new: acknowledged
      writer.text.insert(0, "from the writer");
      await eventually(() => assert.equal(viewer.text.toString(), "from the writer"));
      const before = await rejected(server, "readonly");
      viewer.text.insert(0, "viewer edit ");
      await eventually(async () => assert.equal(await rejected(server, "readonly"), before + 1));
      assert.equal(viewer.provider.hasUnsyncedChanges, true, "a refused edit stays unsynced");
      writer.text.insert(writer.text.length, "!");
      await eventually(async () => assert.equal(await serverText(server, "readonly"), "from the writer!"));
      assert.equal(writer.text.toString(), "from the writer!", "the viewer's edit reached nobody");
    });

    it("8 clients × 200 concurrent inserts converge; every burst is acknowledged", async function () {
      this.timeout(60_000);
      const group = Array.from({ length: 8 }, () => connect("concurrent"));
      await Promise.all(group.map((c) => hpSynced(c)));
      for (let burst = 1; burst <= 2; burst++) {
        await Promise.all(
          group.map(async (client, n) => {
            for (let i = 0; i < 100; i++) {
              const at = Math.floor(Math.random() * (client.text.length + 1));
              client.text.insert(at, String.fromCharCode(97 + n));
              if (i % 10 === 0) await new Promise((resolve) => setImmediate(resolve));
            }
          }),
        );
        await eventually(() => {
          const texts = group.map((c) => c.text.toString());
          assert.equal(texts[0]?.length, 800 * burst);
          for (const text of texts) assert.equal(text, texts[0]);
        }, 30_000);
        await Promise.all(group.map((c) => allAcknowledged(c, 10_000)));
      }
      assert.equal(await serverText(server, "concurrent"), group[0]?.text.toString());
      for (let n = 0; n < 8; n++) {
        const letter = String.fromCharCode(97 + n);
        assert.equal([...group[0]!.text.toString()].filter((ch) => ch === letter).length, 200);
      }
    });

    it("acknowledges an update only once it is durable", async () => {
      const store = new GatedStore();
      const gated = await startServer((b) =>
        b.useStorage(store).addStatelessHandler(statelessHandler(received)),
      );
      try {
        const gatedUrl = `${gated.url}/hocuspocus`;
        const a = connectHocuspocus(version, gatedUrl, "gated");
        const b = connectHocuspocus(version, gatedUrl, "gated");
        clients.push(a, b);
        await Promise.all([hpSynced(a), hpSynced(b), allAcknowledged(a)]);
        store.closeGate();
        a.text.insert(0, "held");
        await eventually(() => assert.equal(store.inFlight, 1));
        // The server answers this after it received the update: an early ack would be here first.
        a.provider.sendStateless("echo:after-update");
        await eventually(() => assert.deepEqual(a.events.stateless, ["echo:after-update"]));
        assert.equal(a.provider.hasUnsyncedChanges, true, "no ack while the append is held");
        assert.equal(b.text.toString(), "", "nobody sees it before it is durable");
        store.release();
        await allAcknowledged(a);
        await eventually(() => assert.equal(b.text.toString(), "held"));
      } finally {
        await gated.stop();
      }
    });

    it("carries awareness, gives it to newcomers and removes it when the socket closes", async () => {
      const a = connect("presence");
      const b = connect("presence");
      await Promise.all([hpSynced(a), hpSynced(b)]);
      a.provider.awareness!.setLocalStateField("user", { name: "Alice" });
      const aId = a.doc.clientID;
      await eventually(() =>
        assert.deepEqual(b.provider.awareness!.getStates().get(aId), { user: { name: "Alice" } }),
      );
      const late = connect("presence");
      await eventually(() =>
        assert.deepEqual(late.provider.awareness!.getStates().get(aId), { user: { name: "Alice" } }),
      );
      a.socket.disconnect(); // the provider sends no removal: the server must remove A's state
      await eventually(() => {
        assert.equal(b.provider.awareness!.getStates().has(aId), false);
        assert.equal(late.provider.awareness!.getStates().has(aId), false);
      });
    });

    it("stateless: reaches the handler with its context; reply to the sender, broadcast to all", async () => {
      const a = connect("chat", { token: "secret" });
      const b = connect("chat", { token: "viewer" });
      const yws = connectClient(server.url, "chat");
      clients.push(yws);
      await Promise.all([hpSynced(a), hpSynced(b), synced(yws)]);
      b.provider.sendStateless("echo:hello");
      await eventually(() => assert.deepEqual(b.events.stateless, ["echo:hello"]));
      const request = received.find((r) => r.payload === "echo:hello");
      assert.ok(request);
      assert.equal(request.docId, "chat");
      assert.equal(request.access, "readonly");
      assert.equal(request.token, "viewer");
      assert.ok(request.request.headers.host, "the upgrade request");
      a.provider.sendStateless("all:everyone");
      await eventually(() => {
        assert.deepEqual(a.events.stateless, ["all:everyone"]);
        assert.deepEqual(b.events.stateless, ["echo:hello", "all:everyone"]);
      });
      yws.text.insert(0, "y-websocket unaffected");
      await eventually(() => assert.equal(a.text.toString(), "y-websocket unaffected"));
      assert.equal(yws.provider.wsconnected, true);
    });

    it("multiplexes 50 documents on one socket", async function () {
      this.timeout(30_000);
      // The sockets of earlier specs are gone: count this spec's own.
      await eventually(() => assert.equal(server.host.transport.connectionCount, 0));
      const names = Array.from({ length: 50 }, (_, i) => `multi-${i}`);
      const readerSocket = sharedSocket();
      const readers = names.map((name) => connect(name, { socket: readerSocket }));
      await Promise.all(readers.map((c) => hpSynced(c, 10_000)));
      assert.equal(server.host.transport.connectionCount, 1, "one socket");
      const writerSocket = sharedSocket();
      const writers = names.map((name) => connect(name, { socket: writerSocket }));
      await Promise.all(writers.map((c) => hpSynced(c, 10_000)));
      writers.forEach((w, i) => w.text.insert(0, `doc ${i}`));
      readers.forEach((r, i) => r.text.insert(r.text.length, ` read ${i}`));
      await eventually(() => {
        readers.forEach((r, i) => assert.equal(r.text.toString(), writers[i]!.text.toString()));
        readers.forEach((r, i) => assert.match(r.text.toString(), new RegExp(`doc ${i}\\b`)));
      }, 10_000);
      await Promise.all([...readers, ...writers].map((c) => allAcknowledged(c)));
      assert.equal(server.host.transport.connectionCount, 2);
    });

    it("closes one document of a socket on the client's Close; the others keep working", async () => {
      const socket = sharedSocket();
      const one = connect("close-one", { socket });
      const two = connect("close-two", { socket });
      const peer = connect("close-two");
      await Promise.all([hpSynced(one), hpSynced(two), hpSynced(peer)]);
      const ws = socket.webSocket;
      one.destroy(); // detaches: sends Close for "close-one" only
      await eventually(() => assert.equal(server.host.router.localSession("close-one")?.peerCount, 0));
      two.text.insert(0, "two;");
      await eventually(() => assert.equal(peer.text.toString(), "two;"));
      peer.text.insert(peer.text.length, "back;");
      await eventually(() => assert.equal(two.text.toString(), "two;back;"));
      assert.equal(socket.webSocket, ws, "the same socket throughout");
    });

    it("closes one document of a socket when it is deleted; the others keep working", async () => {
      const socket = sharedSocket();
      const doomed = connect("deleted-soon", { socket });
      const kept = connect("kept", { socket });
      const peer = connect("kept");
      await Promise.all([hpSynced(doomed), hpSynced(kept), hpSynced(peer)]);
      doomed.text.insert(0, "bye");
      await allAcknowledged(doomed);
      const ws = socket.webSocket;
      const response = await api(`http://127.0.0.1:${server.port}`, "DELETE", "/deleted-soon");
      assert.equal(response.status, 204);
      await eventually(() => assert.deepEqual(doomed.events.closed, ["document deleted"]));
      const before = await rejected(server, "denied");
      doomed.text.insert(0, "resurrect?");
      await eventually(async () => assert.equal(await rejected(server, "denied"), before + 1));
      assert.equal(server.host.router.localSession("deleted-soon"), undefined, "not loaded again");
      kept.text.insert(0, "alive");
      await eventually(() => assert.equal(peer.text.toString(), "alive"));
      assert.equal(socket.webSocket, ws, "the socket stayed open");
    });

    it("re-runs the authorizer on a new token: downgrade to read-only, then denial closes the document", async () => {
      const a = connect("refresh", { token: "secret" });
      const b = connect("refresh");
      await Promise.all([hpSynced(a), hpSynced(b)]);
      a.provider.configuration.token = "viewer";
      await a.provider.sendToken();
      await eventually(() => assert.deepEqual(a.events.authenticated, ["read-write", "readonly"]));
      const before = await rejected(server, "readonly");
      a.text.insert(0, "refused");
      await eventually(async () => assert.equal(await rejected(server, "readonly"), before + 1));
      assert.equal(await serverText(server, "refresh"), "");
      a.provider.configuration.token = "bad";
      await a.provider.sendToken();
      await eventually(() => assert.deepEqual(a.events.denied, ["permission-denied"]));
      await eventually(() => assert.equal(server.host.router.localSession("refresh")?.peerCount, 1));
      assert.deepEqual(a.events.closed, ["permission-denied"]);
    });

    if (version.name === "v4") {
      it("sessionAwareness: two providers of one document on one socket, each answered on its own key", async () => {
        const socket = sharedSocket();
        const one = connect("sessions", { socket, provider: { sessionAwareness: true } });
        const two = connect("sessions", { socket, provider: { sessionAwareness: true } });
        await Promise.all([hpSynced(one), hpSynced(two)]);
        assert.equal(server.host.router.localSession("sessions")?.peerCount, 2);
        one.text.insert(0, "one;");
        await eventually(() => assert.equal(two.text.toString(), "one;"));
        two.provider.sendStateless("echo:two");
        await eventually(() => assert.deepEqual(two.events.stateless, ["echo:two"]));
        assert.deepEqual(one.events.stateless, [], "the answer went to the sender's key only");
        await Promise.all([allAcknowledged(one), allAcknowledged(two)]);
      });
    }

    it("interop: a y-websocket client and a Hocuspocus client edit one document and converge", async () => {
      const hp = connect("interop");
      const yws = connectClient(server.url, "interop");
      clients.push(yws);
      await Promise.all([hpSynced(hp), synced(yws)]);
      for (let i = 0; i < 50; i++) {
        hp.text.insert(Math.floor(Math.random() * (hp.text.length + 1)), "h");
        yws.text.insert(Math.floor(Math.random() * (yws.text.length + 1)), "y");
      }
      await eventually(() => {
        assert.equal(hp.text.length, 100);
        assert.equal(hp.text.toString(), yws.text.toString());
      });
      await allAcknowledged(hp);
      assert.equal(await serverText(server, "interop"), hp.text.toString());
    });
  });
}
