import { strict as assert } from "node:assert";
import { once } from "node:events";
import * as encoding from "lib0/encoding";
import WebSocket from "ws";
import { decodeAwarenessUpdate, encodeAwarenessUpdate } from "../../src/engine/awareness.js";
import { AwarenessGuard, type AwarenessRefusal } from "../../src/transport/awareness-guard.js";
import { encode as encodeHocuspocus } from "../../src/transport/hocuspocus/messages.js";
import { encodeAwareness } from "../../src/transport/y-websocket/messages.js";
import { connectClient, synced, type Client } from "../support/clients.js";
import { eventually } from "../support/eventually.js";
import {
  PROVIDER_VERSIONS,
  connectHocuspocus,
  hpSynced,
  type HocuspocusClient,
} from "../support/hocuspocus.js";
import { startServer, type TestServer } from "../support/server.js";

type Entry = [clientId: number, clock: number, state: unknown];
const update = (...entries: Entry[]) =>
  encodeAwarenessUpdate(
    entries.map(([clientId, clock, state]) => ({ clientId, clock, json: JSON.stringify(state) })),
  );
const ids = (bytes: Uint8Array | null) => (bytes ? decodeAwarenessUpdate(bytes).map((r) => r.clientId) : []);

describe("AwarenessGuard", () => {
  let refused: [AwarenessRefusal, number][];
  let guard: AwarenessGuard;
  beforeEach(() => {
    refused = [];
    guard = new AwarenessGuard(64, {
      awarenessRefused: (reason, clientId) => void refused.push([reason, clientId]),
    });
  });

  it("the first id a connection sets is its own; newer states for other ids are refused and counted", () => {
    assert.deepEqual(ids(guard.filter(update([1, 1, { me: 1 }]))), [1]);
    assert.deepEqual(ids(guard.filter(update([1, 2, { me: 2 }], [2, 5, { spoof: true }]))), [1]);
    assert.deepEqual(refused, [["foreign-client", 2]]);
    assert.deepEqual(ids(guard.filter(update([1, 3, null]))), [1], "its own removal");
  });

  it("drops echoes of what the server sent, and removals of other ids, without counting them", () => {
    guard.sent(update([7, 4, { other: true }]));
    assert.equal(guard.filter(update([7, 4, { other: true }])), null, "an echo is not a claim");
    assert.deepEqual(
      ids(guard.filter(update([1, 1, { me: 1 }], [7, 4, { other: true }], [8, 9, null]))),
      [1],
    );
    assert.deepEqual(refused, []);
    assert.equal(guard.filter(update([7, 5, { other: "changed" }])), null);
    assert.deepEqual(refused, [["foreign-client", 7]]);
  });

  it("never binds an id the server sent it, whatever the clock (issue #23, finding 5)", () => {
    guard.sent(update([7, 4, { victim: true }]));
    assert.equal(guard.filter(update([7, 1000, { spoofed: true }])), null, "a first entry cannot claim it");
    assert.deepEqual(refused, [["foreign-client", 7]]);
    assert.deepEqual(ids(guard.filter(update([1, 1, { me: 1 }]))), [1], "its own id still binds");
    assert.equal(guard.filter(update([7, 1001, { spoofed: true }])), null);
    assert.deepEqual(refused, [
      ["foreign-client", 7],
      ["foreign-client", 7],
    ]);
  });

  it("a reconnecting client reclaims its id once the server removed the stale state it sent", () => {
    guard.sent(update([3, 10, { me: "old" }]));
    assert.equal(guard.filter(update([3, 10, { me: "old" }])), null, "its re-announcement is an echo");
    assert.equal(guard.filter(update([3, 11, { me: "again" }])), null, "the old connection still owns it");
    assert.deepEqual(refused, [["foreign-client", 3]]);
    guard.sent(update([3, 11, null])); // the old connection is gone
    assert.deepEqual(ids(guard.filter(update([3, 12, { me: "again" }]))), [3]);
    assert.deepEqual(ids(guard.filter(update([3, 13, { me: "later" }]))), [3]);
    assert.equal(refused.length, 1);
  });

  it("refuses states larger than the limit and states that are not JSON", () => {
    assert.equal(guard.filter(update([1, 1, { big: "x".repeat(100) }])), null);
    const invalid = encodeAwarenessUpdate([{ clientId: 1, clock: 1, json: "{not json" }]);
    assert.equal(guard.filter(invalid), null);
    assert.deepEqual(refused, [
      ["too-large", 1],
      ["invalid-json", 1],
    ]);
  });
});

async function refusals(server: TestServer, reason: AwarenessRefusal): Promise<number> {
  const { values } = await server.host.metrics.awarenessRefused.get();
  return values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

/** A stock client of either dialect, as these specs use it. */
interface Peer {
  readonly clientId: number;
  readonly awareness: {
    setLocalStateField(field: string, value: unknown): void;
    getStates(): Map<number, unknown>;
  };
  destroy(): void;
}

const dialects = [
  {
    name: "y-websocket",
    path: (doc: string) => `/${doc}`,
    frame: (_doc: string, bytes: Uint8Array) => encodeAwareness(bytes),
    async connect(server: TestServer, doc: string): Promise<Peer> {
      const client: Client = connectClient(server.url, doc);
      await synced(client);
      return {
        clientId: client.doc.clientID,
        awareness: client.provider.awareness,
        destroy: () => client.destroy(),
      };
    },
  },
  ...PROVIDER_VERSIONS.map((version) => ({
    name: `Hocuspocus ${version.name}`,
    path: () => "/hocuspocus",
    frame: (doc: string, bytes: Uint8Array) => encodeHocuspocus.awareness(doc, bytes),
    async connect(server: TestServer, doc: string): Promise<Peer> {
      const client: HocuspocusClient = connectHocuspocus(version, `${server.url}/hocuspocus`, doc);
      await hpSynced(client);
      return {
        clientId: client.doc.clientID,
        awareness: client.provider.awareness!,
        destroy: () => client.destroy(),
      };
    },
  })),
];

function hocuspocusAuth(doc: string): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarString(encoder, doc);
  encoding.writeVarUint(encoder, 2);
  encoding.writeVarUint(encoder, 0);
  encoding.writeVarString(encoder, "");
  return encoding.toUint8Array(encoder);
}

describe("awareness limits on a live server", () => {
  let server: TestServer;
  const peers: Peer[] = [];
  before(async () => (server = await startServer(undefined, { transport: { maxAwarenessStateBytes: 256 } })));
  afterEach(() => peers.splice(0).forEach((p) => p.destroy()));
  after(() => server.stop());

  for (const dialect of dialects) {
    it(`${dialect.name}: a connection cannot set another client's awareness, nor an oversized state`, async () => {
      const doc = `spoof-${dialect.name.replace(" ", "-")}`;
      const [alice, bob] = [await dialect.connect(server, doc), await dialect.connect(server, doc)];
      peers.push(alice, bob);
      alice.awareness.setLocalStateField("user", { name: "Alice" });
      await eventually(() =>
        assert.deepEqual(bob.awareness.getStates().get(alice.clientId), { user: { name: "Alice" } }),
      );

      const mallory = new WebSocket(`${server.url}${dialect.path(doc)}`);
      await once(mallory, "open");
      if (dialect.name !== "y-websocket") mallory.send(hocuspocusAuth(doc));
      const send = (...entries: Entry[]) => mallory.send(dialect.frame(doc, update(...entries)));
      const [foreign, large] = [
        await refusals(server, "foreign-client"),
        await refusals(server, "too-large"),
      ];
      send([4242, 1, { user: { name: "Mallory" } }]);
      await eventually(() =>
        assert.deepEqual(bob.awareness.getStates().get(4242), { user: { name: "Mallory" } }),
      );
      send([alice.clientId, 1000, { user: { name: "Mallory as Alice" } }]);
      send([4242, 2, { user: { name: "x".repeat(300) } }]);
      await eventually(async () => {
        assert.equal(await refusals(server, "foreign-client"), foreign + 1);
        assert.equal(await refusals(server, "too-large"), large + 1);
      });
      send([4242, 3, { user: { name: "Mallory, later" } }]);
      await eventually(() =>
        assert.deepEqual(bob.awareness.getStates().get(4242), { user: { name: "Mallory, later" } }),
      );
      assert.deepEqual(bob.awareness.getStates().get(alice.clientId), { user: { name: "Alice" } });
      assert.equal(mallory.readyState, WebSocket.OPEN, "refused entries are dropped, the socket stays");
      mallory.close();
    });

    it(`${dialect.name}: stock clients passing on each other's awareness are never counted as spoofing`, async () => {
      const doc = `echoes-${dialect.name.replace(" ", "-")}`;
      const before = await refusals(server, "foreign-client");
      const group = [
        await dialect.connect(server, doc),
        await dialect.connect(server, doc),
        await dialect.connect(server, doc),
      ];
      peers.push(...group);
      for (let round = 0; round < 3; round++) {
        group.forEach((peer, i) => peer.awareness.setLocalStateField("cursor", { round, i }));
        await eventually(() => {
          for (const viewer of group)
            for (const [i, peer] of group.entries())
              assert.deepEqual(viewer.awareness.getStates().get(peer.clientId), { cursor: { round, i } });
        });
      }
      const leaving = group.pop()!;
      peers.splice(peers.indexOf(leaving), 1);
      leaving.destroy(); // its removal is passed on by the others too
      await eventually(() => assert.equal(group[0]!.awareness.getStates().size, 2));
      const late = await dialect.connect(server, doc);
      peers.push(late);
      await eventually(() => assert.equal(late.awareness.getStates().size, 3));
      assert.equal(await refusals(server, "foreign-client"), before);
    });
  }
});
