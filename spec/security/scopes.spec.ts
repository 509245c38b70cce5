// Regressions of issue #23's findings 2 and 3 against a live server with stock
// clients: the built-in JWT authorizer's scopes name the tenant, and no document
// name can be read as another scope.
//
// Each case also sends the token the review used (0.x grammar), which the old
// authorizer honoured: `opstream:notes` opened globex's notes from acme's token,
// `opstream:foo:read` wrote to `foo:read`, `opstream:team notes` opened `team`.
import { strict as assert } from "node:assert";
import WebSocket from "ws";
import { documentScope, type DocumentScopeOptions } from "../../src/index.js";
import { connectClient, synced, type Client } from "../support/clients.js";
import { eventually } from "../support/eventually.js";
import {
  PROVIDER_VERSIONS,
  allAcknowledged,
  connectHocuspocus,
  hpSynced,
  type HocuspocusClient,
  type StockSocket,
} from "../support/hocuspocus.js";
import { startServer, type TestServer } from "../support/server.js";
import { JWT_SECRET, signToken } from "../support/tokens.js";
import { refusedWith } from "../support/upgrade.js";
import { sessionText } from "../support/session.js";

const tokenFor = (...scopes: DocumentScopeOptions[]) => signToken(scopes.map(documentScope).join(" "));

/** The `ws` WebSocket sending `Host: <host>`: the stock providers construct it as `new WebSocket(url, protocols)`. */
function withHost(host: string): typeof globalThis.WebSocket {
  class HostedWebSocket extends WebSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols ?? [], { headers: { host } });
    }
  }
  return HostedWebSocket as unknown as typeof globalThis.WebSocket;
}

/** A stock y-websocket client connecting with `Host: <host>` and the token in the subprotocols. */
function connectAt(server: TestServer, host: string, docName: string, token: string): Client {
  return connectClient(server.url, docName, { protocols: ["opstream", token], webSocket: withHost(host) });
}

async function counter(server: TestServer, name: "upgradesRefused" | "updatesRejected", reason: string) {
  const metric = await server.host.metrics[name].get();
  return metric.values.filter((v) => v.labels.reason === reason).reduce((sum, v) => sum + v.value, 0);
}

const serverText = (server: TestServer, docId: string) => sessionText(server.host.router.localSession(docId));

describe("JWT scopes carry the tenant (issue #23 finding 2)", () => {
  let server: TestServer;
  const clients: (Client | HocuspocusClient)[] = [];
  const sockets: StockSocket[] = [];
  const track = <T extends Client | HocuspocusClient>(client: T): T => {
    clients.push(client);
    return client;
  };
  before(async () => {
    server = await startServer((b) =>
      b
        .useMemoryStorage()
        .useJwtAuthorization({ secret: JWT_SECRET })
        // README's resolver: acme.example.com → "acme".
        .useTenantResolver((request) => request.headers.host?.split(".")[0]),
    );
  });
  afterEach(() => {
    clients.splice(0).forEach((client) => client.destroy());
    sockets.splice(0).forEach((socket) => socket.destroy());
  });
  after(() => server.stop());

  const ACME = { headers: { host: "acme.example.com" } };
  const GLOBEX = { headers: { host: "globex.example.com" } };

  it("y-websocket: acme's token for notes is refused 403 on globex's notes, and untenanted scopes open no tenant's document", async () => {
    const acme = await tokenFor({ access: "read-write", tenant: "acme", docId: "notes" });
    const reviewed = await signToken("opstream:notes");
    const untenanted = await tokenFor({ access: "read-write", allDocuments: true });
    const forbidden = await counter(server, "upgradesRefused", "forbidden");
    assert.equal(
      await refusedWith(`${server.url}/notes`, ["opstream", acme], GLOBEX),
      403,
      "acme's token at globex",
    );
    for (const token of [reviewed, untenanted]) {
      assert.equal(await refusedWith(`${server.url}/notes`, ["opstream", token], GLOBEX), 403);
      assert.equal(await refusedWith(`${server.url}/notes`, ["opstream", token], ACME), 403);
    }
    assert.equal(
      await counter(server, "upgradesRefused", "forbidden"),
      forbidden + 5,
      "every refusal is counted",
    );

    const owner = track(connectAt(server, "acme.example.com", "notes", acme));
    await synced(owner);
    owner.text.insert(0, "acme's notes");
    await eventually(async () => assert.equal(await serverText(server, "acme/notes"), "acme's notes"));
    assert.equal(server.host.router.localSession("globex/notes"), undefined, "globex's notes never loaded");
    assert.equal((await server.host.store.list()).includes("globex/notes"), false);
  });

  for (const version of PROVIDER_VERSIONS) {
    it(`Hocuspocus ${version.name}: acme's token gets PermissionDenied for globex's document`, async () => {
      const name = `hp-${version.name}`;
      const acme = await tokenFor({ access: "read-write", tenant: "acme", docId: name });
      const url = `${server.url}/hocuspocus`;
      const at = (host: string) => {
        const socket = version.socket(url, { WebSocketPolyfill: withHost(host) });
        sockets.push(socket);
        return socket;
      };
      const intruder = track(
        connectHocuspocus(version, url, name, { socket: at("globex.example.com"), token: acme }),
      );
      const reviewed = track(
        connectHocuspocus(version, url, name, {
          socket: at("globex.example.com"),
          token: await signToken(`opstream:${name}`),
        }),
      );
      const owner = track(
        connectHocuspocus(version, url, name, { socket: at("acme.example.com"), token: acme }),
      );
      await eventually(() => {
        assert.deepEqual(intruder.events.denied, ["permission-denied"]);
        assert.deepEqual(reviewed.events.denied, ["permission-denied"]);
      });
      await hpSynced(owner);
      assert.deepEqual(owner.events.authenticated, ["read-write"]);
      owner.text.insert(0, "acme");
      await allAcknowledged(owner);
      assert.equal(await serverText(server, `acme/${name}`), "acme");
      assert.equal(
        server.host.router.localSession(`globex/${name}`),
        undefined,
        "globex's document never loaded",
      );
    });
  }
});

describe("a read scope grants reading its document only, whatever the names (issue #23 finding 3)", () => {
  let server: TestServer;
  const clients: (Client | HocuspocusClient)[] = [];
  const track = <T extends Client | HocuspocusClient>(client: T): T => {
    clients.push(client);
    return client;
  };
  const write = (docId: string) => tokenFor({ access: "read-write", docId });
  before(async () => {
    server = await startServer((b) => b.useMemoryStorage().useJwtAuthorization({ secret: JWT_SECRET }));
  });
  afterEach(() => clients.splice(0).forEach((client) => client.destroy()));
  after(() => server.stop());

  /** A writer creates `docId` with `text` (so a reader's join finds it), and stays connected. */
  async function created(docId: string, text: string): Promise<Client> {
    const writer = track(connectClient(server.url, docId, { protocols: ["opstream", await write(docId)] }));
    await synced(writer);
    writer.text.insert(0, text);
    await eventually(async () => assert.equal(await serverText(server, docId), text));
    return writer;
  }

  /** `reader` edits; the edit is refused (counted) and reaches neither the server nor `writer`. */
  async function refusedEdit(reader: Client, writer: Client, docId: string): Promise<void> {
    const before = await counter(server, "updatesRejected", "readonly");
    const text = writer.text.toString();
    reader.text.insert(0, "reader;");
    await eventually(async () =>
      assert.equal(await counter(server, "updatesRejected", "readonly"), before + 1),
    );
    writer.text.insert(writer.text.length, ";after");
    await eventually(async () => assert.equal(await serverText(server, docId), `${text};after`));
    assert.equal(writer.text.toString(), `${text};after`, "the reader's edit reached nobody");
  }

  it("y-websocket: a read scope for foo opens neither foo:read nor read:foo (403), and foo read-only", async () => {
    const reader = await tokenFor({ access: "readonly", docId: "foo" });
    const reviewed = await signToken("opstream:foo:read");
    for (const docId of ["foo:read", "read:foo", "opstream.read:foo", "foo:read:read"]) {
      for (const token of [reviewed, reader]) {
        assert.equal(
          await refusedWith(`${server.url}/${encodeURIComponent(docId)}`, ["opstream", token]),
          403,
          docId,
        );
      }
    }
    assert.equal(
      await refusedWith(`${server.url}/foo`, ["opstream", reviewed]),
      403,
      "the 0.x grammar grants nothing",
    );
    const writer = await created("foo", "foo's own");
    const viewer = track(connectClient(server.url, "foo", { protocols: ["opstream", reader] }));
    await synced(viewer);
    await eventually(() => assert.equal(viewer.text.toString(), "foo's own"));
    await refusedEdit(viewer, writer, "foo");
  });

  it("y-websocket: a global read scope opens *:read read-only; `opstream:*:read` and foo's read scope open nothing", async () => {
    const everyReader = await tokenFor({ access: "readonly", allDocuments: true });
    const fooReader = await tokenFor({ access: "readonly", docId: "foo" });
    for (const token of [await signToken("opstream:*:read"), fooReader]) {
      assert.equal(await refusedWith(`${server.url}/*:read`, ["opstream", token]), 403);
    }
    const writer = await created("*:read", "stars");
    const viewer = track(connectClient(server.url, "*:read", { protocols: ["opstream", everyReader] }));
    await synced(viewer);
    await eventually(() => assert.equal(viewer.text.toString(), "stars"));
    await refusedEdit(viewer, writer, "*:read");
  });

  it("y-websocket: a document named with a space leaks no grant on its first (or last) word", async () => {
    const team = await tokenFor({ access: "read-write", docId: "team notes" });
    const reviewed = await signToken("opstream:team notes");
    for (const token of [team, reviewed]) {
      assert.equal(await refusedWith(`${server.url}/team`, ["opstream", token]), 403);
      assert.equal(await refusedWith(`${server.url}/notes`, ["opstream", token]), 403);
    }
    const member = track(connectClient(server.url, "team notes", { protocols: ["opstream", team] }));
    await synced(member);
    member.text.insert(0, "agenda");
    await eventually(async () => assert.equal(await serverText(server, "team notes"), "agenda"));
  });

  for (const version of PROVIDER_VERSIONS) {
    it(`Hocuspocus ${version.name}: a read scope for foo is denied foo:read and *:read, and read-only on foo`, async () => {
      const [foo, fooRead, starRead] = [`${version.name}-foo`, `${version.name}-foo:read`, "*:read"];
      const url = `${server.url}/hocuspocus`;
      const reader = await tokenFor({ access: "readonly", docId: foo });
      const reviewed = await signToken(`opstream:${foo}:read opstream:*:read`);
      const denied = [fooRead, starRead].flatMap((name) =>
        [reviewed, reader].map((token) => track(connectHocuspocus(version, url, name, { token }))),
      );
      await eventually(() =>
        denied.forEach((client) => assert.deepEqual(client.events.denied, ["permission-denied"])),
      );
      const writer = track(connectHocuspocus(version, url, foo, { token: await write(foo) }));
      await hpSynced(writer);
      writer.text.insert(0, "written");
      await allAcknowledged(writer);
      const viewer = track(connectHocuspocus(version, url, foo, { token: reader }));
      await hpSynced(viewer);
      assert.deepEqual(viewer.events.authenticated, ["readonly"]);
      const before = await counter(server, "updatesRejected", "readonly");
      viewer.text.insert(0, "refused ");
      await eventually(async () =>
        assert.equal(await counter(server, "updatesRejected", "readonly"), before + 1),
      );
      writer.text.insert(writer.text.length, ";after");
      await allAcknowledged(writer);
      assert.equal(await serverText(server, foo), "written;after");
    });
  }
});
