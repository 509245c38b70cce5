import { strict as assert } from "node:assert";
import * as Y from "yjs";
import type { Authorizer } from "../../src/index.js";
import { connectClient, synced, type Client } from "../support/clients.js";
import { CountingStore } from "../support/counting-store.js";
import { eventually } from "../support/eventually.js";
import { PROVIDER_VERSIONS, allAcknowledged, connectHocuspocus, hpSynced } from "../support/hocuspocus.js";
import { startServer, type TestServer } from "../support/server.js";
import { sessionText } from "../support/session.js";

/** The token "viewer" reads; anything else writes. */
const authorizer: Authorizer = ({ token }) => (token === "viewer" ? "readonly" : "read-write");

/** One client of either dialect, as these specs use it. */
interface Participant {
  readonly text: Y.Text;
  readonly doc: Y.Doc;
  readonly awareness: {
    setLocalStateField(field: string, value: unknown): void;
    getStates(): Map<number, unknown>;
  };
  ready(): Promise<void>;
  destroy(): void;
}

type Connect = (server: TestServer, doc: string, token: string | null) => Participant;

const yWebsocket: Connect = (server, doc, token) => {
  const client: Client = connectClient(server.url, doc, token ? { params: { token } } : {});
  return { ...client, awareness: client.provider.awareness, ready: () => synced(client) };
};

const dialects: { name: string; connect: Connect }[] = [
  { name: "y-websocket", connect: yWebsocket },
  ...PROVIDER_VERSIONS.map((version) => ({
    name: `Hocuspocus ${version.name}`,
    connect: ((server, doc, token) => {
      const client = connectHocuspocus(version, `${server.url}/hocuspocus`, doc, { token });
      return { ...client, awareness: client.provider.awareness!, ready: () => hpSynced(client) };
    }) satisfies Connect,
  })),
];

async function rejectedReadonly(server: TestServer): Promise<number> {
  const metric = await server.host.metrics.updatesRejected.get();
  return metric.values.find((v) => v.labels.reason === "readonly")?.value ?? 0;
}

describe("read-only connections", () => {
  let server: TestServer;
  let store: CountingStore;
  const participants: Participant[] = [];
  before(async () => {
    store = new CountingStore();
    server = await startServer((b) => b.useStorage(store).useAuthorization(authorizer));
  });
  afterEach(() => participants.splice(0).forEach((p) => p.destroy()));
  after(() => server.stop());

  for (const { name, connect } of dialects) {
    it(`${name}: an edit changes nothing, is never stored or broadcast, and is refused; presence is allowed`, async () => {
      const doc = `read-only-${name}`;
      const join = (token: string | null) => {
        const participant = connect(server, doc, token);
        participants.push(participant);
        return participant;
      };
      const opening = await rejectedReadonly(server);
      // Readers never create a document (PROTOCOL.md): the writer opens it first.
      const writer = join("writer");
      await writer.ready();
      const [viewer, observer] = [join("viewer"), join(null)];
      await Promise.all([viewer.ready(), observer.ready()]);
      writer.text.insert(0, "base;");
      await eventually(() => assert.equal(viewer.text.toString(), "base;"));
      await eventually(() => assert.equal(observer.text.toString(), "base;"));
      const session = server.host.router.localSession(doc)!;
      const vector = session.stateVector();
      const appends = store.appends.filter((d) => d === doc).length;
      const rejected = await rejectedReadonly(server);
      assert.equal(rejected, opening, "the viewer's opening sync refused nothing");

      viewer.text.insert(0, "viewer edit;");
      await eventually(async () => assert.equal(await rejectedReadonly(server), rejected + 1));

      assert.deepEqual(session.stateVector(), vector, "the server's document did not change");
      assert.equal(store.appends.filter((d) => d === doc).length, appends, "nothing was stored");
      // A later edit arrives after anything the viewer's edit could have caused.
      writer.text.insert(writer.text.length, "after;");
      await eventually(() => assert.equal(observer.text.toString(), "base;after;"));
      assert.equal(await sessionText(session), "base;after;");
      assert.equal(store.appends.filter((d) => d === doc).length, appends + 1);

      viewer.awareness.setLocalStateField("user", { name: "Viewer" });
      await eventually(() =>
        assert.deepEqual(writer.awareness.getStates().get(viewer.doc.clientID), { user: { name: "Viewer" } }),
      );
    });
  }

  for (const version of PROVIDER_VERSIONS) {
    it(`Hocuspocus ${version.name}: the refusal is SyncStatus 0, so the edit stays unsynced`, async () => {
      const url = `${server.url}/hocuspocus`;
      await (await server.host.documents.open("read-only-ack")).close(); // readers never create it
      const viewer = connectHocuspocus(version, url, "read-only-ack", { token: "viewer" });
      participants.push({ ...viewer, awareness: viewer.provider.awareness!, ready: () => hpSynced(viewer) });
      await hpSynced(viewer);
      await allAcknowledged(viewer); // the opening sync held nothing new: acknowledged
      const rejected = await rejectedReadonly(server);
      viewer.text.insert(0, "refused");
      await eventually(async () => assert.equal(await rejectedReadonly(server), rejected + 1));
      assert.equal(viewer.provider.hasUnsyncedChanges, true);
    });
  }
});
