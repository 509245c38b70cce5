import { strict as assert } from "node:assert";
import { once } from "node:events";
import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import WebSocket from "ws";
import {
  ChannelMessageType,
  MemoryDocumentStore,
  type AccessGrant,
  type OpStreamBuilder,
  type Authorizer,
} from "../../src/index.js";
import { LocalBus } from "../../src/backplane/local/local-bus.js";
import { decodeAwarenessUpdate, encodeAwarenessUpdate } from "../../src/engine/awareness.js";
import { encode as encodeHocuspocus } from "../../src/transport/hocuspocus/messages.js";
import { encodeAwareness } from "../../src/transport/y-websocket/messages.js";
import { connectClient, synced } from "../support/clients.js";
import { eventually } from "../support/eventually.js";
import { PROVIDER_VERSIONS, connectHocuspocus, hpSynced } from "../support/hocuspocus.js";
import { startServer, type TestServer } from "../support/server.js";

/**
 * Issue #23, finding 5: a read-only connection took over another user's presence by
 * sending an awareness entry for the victim's client id (which the server had sent
 * it) with a higher clock. Its first entry became "its own" id: the victim's
 * renewals were ignored from then on, and nothing was counted.
 */

/** The token "viewer" reads; anything else writes. */
const authorizer: Authorizer = ({ token }): AccessGrant => ({
  access: token === "viewer" ? "readonly" : "read-write",
});

const SPOOFED = { user: { name: "Mallory as the victim" } };

/** A stock client of either dialect, as these specs use it. */
interface Participant {
  readonly clientId: number;
  readonly awareness: {
    setLocalStateField(field: string, value: unknown): void;
    getStates(): Map<number, unknown>;
    on(event: "change", listener: (change: { added: number[]; updated: number[] }) => void): void;
  };
  destroy(): void;
}

/** A raw socket for what no stock client sends: the awareness entries it is sent, as they arrive. */
interface Attacker {
  readonly ws: WebSocket;
  /** The highest clock the server sent this socket for each client id. */
  readonly clocks: Map<number, number>;
  spoof(clientId: number, clock: number, state: unknown): void;
}

interface Dialect {
  readonly name: string;
  connect(server: TestServer, doc: string): Promise<Participant>;
  attack(server: TestServer, doc: string): Promise<Attacker>;
}

function awarenessBytes(clientId: number, clock: number, state: unknown): Uint8Array {
  return encodeAwarenessUpdate([{ clientId, clock, json: JSON.stringify(state) }]);
}

/** Opens a raw socket; `payloadOf` returns the awareness update a received frame carries, if any. */
async function openAttacker(
  url: string,
  payloadOf: (decoder: decoding.Decoder) => Uint8Array | undefined,
  frame: (update: Uint8Array) => Uint8Array,
  opening: Uint8Array[] = [],
): Promise<Attacker> {
  const ws = new WebSocket(url);
  const clocks = new Map<number, number>();
  ws.on("message", (data: Buffer) => {
    const update = payloadOf(decoding.createDecoder(new Uint8Array(data)));
    if (!update) return;
    for (const { clientId, clock } of decodeAwarenessUpdate(update)) {
      clocks.set(clientId, Math.max(clock, clocks.get(clientId) ?? 0));
    }
  });
  await once(ws, "open");
  for (const bytes of opening) ws.send(bytes);
  return { ws, clocks, spoof: (id, clock, state) => ws.send(frame(awarenessBytes(id, clock, state))) };
}

function hocuspocusAuth(doc: string, token: string): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarString(encoder, doc);
  encoding.writeVarUint(encoder, 2); // Auth
  encoding.writeVarUint(encoder, 0); // Token
  encoding.writeVarString(encoder, token);
  return encoding.toUint8Array(encoder);
}

const yWebsocket: Dialect = {
  name: "y-websocket",
  async connect(server, doc) {
    const client = connectClient(server.url, doc, { params: { token: "writer" } });
    await synced(client);
    return {
      clientId: client.doc.clientID,
      awareness: client.provider.awareness,
      destroy: () => client.destroy(),
    };
  },
  attack: (server, doc) =>
    openAttacker(
      `${server.url}/${doc}?token=viewer`,
      (decoder) => (decoding.readVarUint(decoder) === 1 ? decoding.readVarUint8Array(decoder) : undefined),
      encodeAwareness,
    ),
};

const dialects: Dialect[] = [
  yWebsocket,
  ...PROVIDER_VERSIONS.map((version): Dialect => ({
    name: `Hocuspocus ${version.name}`,
    async connect(server, doc) {
      const client = connectHocuspocus(version, `${server.url}/hocuspocus`, doc, { token: "writer" });
      await hpSynced(client);
      return {
        clientId: client.doc.clientID,
        awareness: client.provider.awareness!,
        destroy: () => client.destroy(),
      };
    },
    attack: (server, doc) =>
      openAttacker(
        `${server.url}/hocuspocus`,
        (decoder) => {
          decoding.readVarString(decoder); // the routing key
          return decoding.readVarUint(decoder) === 1 ? decoding.readVarUint8Array(decoder) : undefined;
        },
        (update) => encodeHocuspocus.awareness(doc, update),
        [hocuspocusAuth(doc, "viewer")],
      ),
  })),
];

async function foreignRefusals(server: TestServer): Promise<number> {
  const { values } = await server.host.metrics.awarenessRefused.get();
  return values.find((v) => v.labels.reason === "foreign-client")?.value ?? 0;
}

/** Every state `observer` was ever shown for `clientId`, in order. */
function recordStates(observer: Participant, clientId: number): unknown[] {
  const seen: unknown[] = [];
  observer.awareness.on("change", ({ added, updated }) => {
    if ([...added, ...updated].includes(clientId)) seen.push(observer.awareness.getStates().get(clientId));
  });
  return seen;
}

describe("security: awareness spoofing (issue #23, finding 5)", () => {
  const cleanup: (() => unknown)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  for (const dialect of dialects) {
    it(`${dialect.name}: a read-only peer cannot take over a presence the server sent it; refused and counted`, async () => {
      const server = await startServer((b) => b.useMemoryStorage().useAuthorization(authorizer));
      cleanup.push(() => server.stop());
      const doc = "spoof-taken";
      const victim = await dialect.connect(server, doc);
      const observer = await dialect.connect(server, doc);
      cleanup.push(
        () => victim.destroy(),
        () => observer.destroy(),
      );
      victim.awareness.setLocalStateField("user", { name: "Victim" });
      await eventually(() =>
        assert.deepEqual(observer.awareness.getStates().get(victim.clientId), { user: { name: "Victim" } }),
      );
      const seen = recordStates(observer, victim.clientId);

      const attacker = await dialect.attack(server, doc);
      cleanup.push(() => attacker.ws.close());
      const sentClock = await eventually(() => {
        const clock = attacker.clocks.get(victim.clientId);
        assert.ok(clock !== undefined, "the server sent the attacker the victim's id");
        return clock;
      });
      const before = await foreignRefusals(server);
      attacker.spoof(victim.clientId, sentClock + 1000, SPOOFED);
      await eventually(async () => assert.equal(await foreignRefusals(server), before + 1));

      victim.awareness.setLocalStateField("user", { name: "Victim, later" });
      await eventually(() =>
        assert.deepEqual(observer.awareness.getStates().get(victim.clientId), {
          user: { name: "Victim, later" },
        }),
      );
      assert.ok(seen.length > 0);
      assert.ok(
        seen.every((state) => JSON.stringify(state) !== JSON.stringify(SPOOFED)),
        "the observer never saw the spoofed state",
      );
      assert.equal(attacker.ws.readyState, WebSocket.OPEN, "dropped, not closed: stock clients race too");
    });
  }

  it("a peer that claims an id before the server sent it that id is refused by the document, across nodes", async () => {
    // The relay node's copy of the victim's presence is lost on the backplane (as
    // Redis pub/sub may lose it), so the attacker's connection never hears of the
    // victim's id: only the owner's registry can tell it is taken.
    let relayNodeId = "";
    const bus = new LocalBus({
      intercept: (message, _docId, to) =>
        message.type === ChannelMessageType.Awareness && to === relayNodeId ? "drop" : "deliver",
    });
    const store = new MemoryDocumentStore();
    const configure = (b: OpStreamBuilder) =>
      b.useLocalBackplane({ bus }).useStorage(store).useAuthorization(authorizer);
    const owner = await startServer(configure);
    const relay = await startServer(configure);
    cleanup.push(
      () => owner.stop(),
      () => relay.stop(),
    );
    relayNodeId = relay.host.nodeId;
    const doc = "spoof-early";
    const observer = await yWebsocket.connect(owner, doc);
    cleanup.push(() => observer.destroy());
    assert.ok(owner.host.router.localSession(doc), "the first node owns the document");
    const attacker = await yWebsocket.attack(relay, doc);
    cleanup.push(() => attacker.ws.close());
    // Joined through the relay (its owner's join reply names no victim yet).
    await eventually(() => assert.equal(owner.host.router.localSession(doc)?.peerCount, 2));

    const victim = await yWebsocket.connect(owner, doc);
    cleanup.push(() => victim.destroy());
    victim.awareness.setLocalStateField("user", { name: "Victim" });
    await eventually(() =>
      assert.deepEqual(observer.awareness.getStates().get(victim.clientId), { user: { name: "Victim" } }),
    );
    const seen = recordStates(observer, victim.clientId);
    assert.equal(attacker.clocks.has(victim.clientId), false, "the attacker was never sent the victim's id");

    const before = await foreignRefusals(owner);
    attacker.spoof(victim.clientId, 1000, SPOOFED);
    await eventually(async () => assert.equal(await foreignRefusals(owner), before + 1));
    victim.awareness.setLocalStateField("user", { name: "Victim, later" });
    await eventually(() =>
      assert.deepEqual(observer.awareness.getStates().get(victim.clientId), {
        user: { name: "Victim, later" },
      }),
    );
    assert.ok(seen.every((state) => JSON.stringify(state) !== JSON.stringify(SPOOFED)));
    assert.equal(await foreignRefusals(relay), 0, "the relay's guard had no reason to refuse it");
  });
});
