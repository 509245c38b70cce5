import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { MemoryDocumentStore, type OpStreamBuilder, type StatelessRequest } from "../../src/index.js";
import { LocalBus } from "../../src/backplane/local/local-bus.js";
import { connectClient, synced, type Client } from "../support/clients.js";
import { eventually } from "../support/eventually.js";
import {
  PROVIDER_VERSIONS,
  allAcknowledged,
  connectHocuspocus,
  hpSynced,
  type HocuspocusClient,
} from "../support/hocuspocus.js";
import { startRedis, type RedisServer } from "../support/redis.js";
import { startServer, type TestServer } from "../support/server.js";
import { sessionText } from "../support/session.js";

/** How the nodes of one cluster share a backplane: an in-process bus, or a real redis-server. */
interface Fabric {
  readonly name: string;
  /** A fresh cluster: how to configure its node `node`. */
  cluster(): (builder: OpStreamBuilder, node: number) => OpStreamBuilder;
}

let redis: RedisServer | undefined;
const fabrics: Fabric[] = [
  {
    name: "LocalBus",
    cluster: () => {
      const bus = new LocalBus();
      return (b) => b.useLocalBackplane({ bus });
    },
  },
  {
    name: "Redis",
    cluster: () => {
      const keyPrefix = `spec-${randomUUID().slice(0, 8)}:`;
      return (b, node) =>
        b.useRedisBackplane({ connectionString: redis!.url, keyPrefix, nodeId: `node-${node}` });
    },
  },
];

describe("Hocuspocus clients across 3 in-process nodes", () => {
  before(async () => (redis = await startRedis()));
  after(() => redis?.stop());

  for (const fabric of fabrics) {
    for (const version of PROVIDER_VERSIONS) {
      describe(`${version.name} on ${fabric.name}`, function () {
        this.timeout(30_000);
        let nodes: TestServer[];
        const handled: { node: number; payload: string }[] = [];
        const clients: (HocuspocusClient | Client)[] = [];
        const hp = (node: number, doc: string, token?: string) => {
          const url = `${nodes[node]!.url}/hocuspocus`;
          const client = connectHocuspocus(version, url, doc, { token: token ?? null });
          clients.push(client);
          return client;
        };
        const yws = (node: number, doc: string) => {
          const client = connectClient(nodes[node]!.url, doc);
          clients.push(client);
          return client;
        };
        const owner = (doc: string) => nodes.findIndex((n) => n.host.router.localSession(doc) !== undefined);

        beforeEach(async () => {
          const store = new MemoryDocumentStore();
          const configure = fabric.cluster();
          nodes = await Promise.all(
            [0, 1, 2].map((node) =>
              startServer((b) =>
                configure(b, node)
                  .useStorage(store)
                  .useAuthorization(({ token }) => (token === "viewer" ? "readonly" : "read-write"))
                  .addStatelessHandler(async (request: StatelessRequest) => {
                    handled.push({ node, payload: request.payload });
                    if (request.payload.startsWith("all:")) await request.broadcast(request.payload);
                  }),
              ),
            ),
          );
        });
        afterEach(async () => {
          clients.splice(0).forEach((c) => c.destroy());
          handled.length = 0;
          await Promise.all(nodes.map((n) => n.stop()));
        });

        it("stateless: the hook runs where the sender is; its broadcast reaches every node", async () => {
          const first = hp(0, "chat");
          await hpSynced(first);
          const group = [first, hp(1, "chat"), hp(2, "chat")];
          const plain = yws(2, "chat");
          await Promise.all([...group.map((c) => hpSynced(c)), synced(plain)]);
          assert.equal(owner("chat"), 0);
          group[1]!.provider.sendStateless("all:from node 1");
          await eventually(() =>
            group.forEach((c) => assert.deepEqual(c.events.stateless, ["all:from node 1"])),
          );
          assert.deepEqual(handled, [{ node: 1, payload: "all:from node 1" }]);
          plain.text.insert(0, "y-websocket unaffected");
          await eventually(() =>
            group.forEach((c) => assert.equal(c.text.toString(), "y-websocket unaffected")),
          );
        });

        it("a server broadcast from a node without clients of the document reaches all of them", async () => {
          const first = hp(0, "announce");
          await hpSynced(first);
          const second = hp(1, "announce");
          await hpSynced(second);
          await nodes[2]!.host.router.broadcastStateless("announce", "maintenance at noon");
          await eventually(() => {
            assert.deepEqual(first.events.stateless, ["maintenance at noon"]);
            assert.deepEqual(second.events.stateless, ["maintenance at noon"]);
          });
          assert.equal(nodes[2]!.host.router.localSession("announce"), undefined, "nothing loaded for it");
        });

        it("interop: y-websocket and Hocuspocus clients on different nodes converge; acks through relays", async () => {
          const first = yws(0, "interop");
          await synced(first);
          const group = [hp(1, "interop"), hp(2, "interop")];
          await Promise.all(group.map((c) => hpSynced(c)));
          await Promise.all(
            [first, ...group].map(async (client, n) => {
              for (let i = 0; i < 50; i++) {
                client.text.insert(Math.floor(Math.random() * (client.text.length + 1)), String(n));
                if (i % 5 === 0) await new Promise((resolve) => setImmediate(resolve));
              }
            }),
          );
          await eventually(() => {
            const texts = [first, ...group].map((c) => c.text.toString());
            assert.equal(texts[0]?.length, 150);
            for (const text of texts) assert.equal(text, texts[0]);
          }, 15_000);
          await Promise.all(group.map((c) => allAcknowledged(c)));
          assert.equal(
            await sessionText(nodes[0]!.host.router.localSession("interop")),
            first.text.toString(),
          );
        });

        it("read-only through a relay: acknowledged sync, refused edits", async () => {
          const writer = hp(0, "viewer-relay");
          await hpSynced(writer);
          const viewer = hp(2, "viewer-relay", "viewer");
          await hpSynced(viewer);
          await allAcknowledged(viewer); // the owner confirmed its SyncStep2 held nothing new
          writer.text.insert(0, "shared");
          await eventually(() => assert.equal(viewer.text.toString(), "shared"));
          viewer.text.insert(0, "nope ");
          await eventually(async () => {
            const metric = await nodes[2]!.host.metrics.updatesRejected.get();
            assert.equal(metric.values.find((v) => v.labels.reason === "readonly")?.value, 1);
          });
          assert.equal(viewer.provider.hasUnsyncedChanges, true);
          writer.text.insert(writer.text.length, "!");
          await eventually(() => assert.equal(viewer.text.toString(), "nope shared!"));
          assert.equal(await sessionText(nodes[0]!.host.router.localSession("viewer-relay")), "shared!");
          assert.equal(writer.text.toString(), "shared!", "the viewer's edit reached nobody");
        });
      });
    }
  }
});
