import { strict as assert } from "node:assert";
import { once } from "node:events";
import * as encoding from "lib0/encoding";
import WebSocket from "ws";
import * as Y from "yjs";
import { MemoryDocumentStore, type DocumentStore } from "../../src/index.js";
import { DEFAULT_MAX_PENDING_BYTES } from "../../src/engine/pending-budget.js";
import { encode as encodeHocuspocus } from "../../src/transport/hocuspocus/messages.js";
import { encodeUpdate } from "../../src/transport/y-websocket/messages.js";
import { connectClient, synced, type Client } from "../support/clients.js";
import { eventually } from "../support/eventually.js";
import {
  PROVIDER_VERSIONS,
  connectHocuspocus,
  hpSynced,
  type HocuspocusClient,
} from "../support/hocuspocus.js";
import { startServer, type TestServer } from "../support/server.js";
import { sessionText } from "../support/session.js";

/**
 * Issue #23, "pending data": updates whose dependencies are missing sit in Yjs's
 * pending store, in memory and in no op. 40 × 1 MiB of them raised a node's RSS by
 * ~290 MB. A document now holds at most `sessions.maxPendingBytes` (default 4 MiB).
 */

const MiB = 1024 * 1024;
const ATTACK_UPDATES = 40;

/** 40 updates of 1 MiB each from one client whose first change the server never gets. */
function gappedUpdates(): Uint8Array[] {
  const doc = new Y.Doc();
  const text = doc.getText("text");
  text.insert(0, "never sent;");
  const updates: Uint8Array[] = [];
  doc.on("update", (update: Uint8Array) => updates.push(update));
  for (let i = 0; i < ATTACK_UPDATES; i++)
    text.insert(text.length, String.fromCharCode(97 + (i % 26)).repeat(MiB));
  return updates;
}

function hocuspocusAuth(doc: string): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarString(encoder, doc);
  encoding.writeVarUint(encoder, 2); // Auth
  encoding.writeVarUint(encoder, 0); // Token
  encoding.writeVarString(encoder, "");
  return encoding.toUint8Array(encoder);
}

const dialects = [
  {
    name: "y-websocket",
    label: "y-websocket",
    url: (server: TestServer, doc: string) => `${server.url}/${doc}`,
    opening: (): Uint8Array[] => [],
    frame: (_doc: string, update: Uint8Array) => encodeUpdate(update),
  },
  {
    name: "Hocuspocus",
    label: "hocuspocus",
    url: (server: TestServer) => `${server.url}/hocuspocus`,
    opening: (doc: string) => [hocuspocusAuth(doc)],
    frame: (doc: string, update: Uint8Array) => encodeHocuspocus.update(doc, update),
  },
];

/** Sends `frames` one after another until the server closes the socket; resolves with its close code. */
async function sendUntilClosed(ws: WebSocket, frames: Uint8Array[]): Promise<number> {
  const closed = once(ws, "close").then(([code]) => code as number);
  for (const frame of frames) {
    if (ws.readyState !== WebSocket.OPEN) break;
    const failure = await new Promise<Error | undefined>((resolve) => ws.send(frame, resolve));
    // A frame still being written as the server closes may fail; the close code says why.
    if (failure && ws.readyState === WebSocket.OPEN) assert.fail(`send failed: ${failure.message}`);
  }
  return closed;
}

async function counter(
  server: TestServer,
  metric: "updatesRejected" | "badFrames",
  labels: Record<string, string>,
): Promise<number> {
  const { values } = await server.host.metrics[metric].get();
  const matches = (v: { labels: Record<string, unknown> }) =>
    Object.entries(labels).every(([k, value]) => v.labels[k] === value);
  return values.find(matches)?.value ?? 0;
}

/** The document as its storage holds it (latest snapshot + ops), and the ops' total size. */
async function stored(
  store: DocumentStore,
  doc: string,
): Promise<{ text: string; opBytes: number; pending: boolean }> {
  const { snapshot, ops } = await store.load(doc);
  const replay = new Y.Doc();
  if (snapshot) Y.applyUpdate(replay, snapshot.state);
  for (const op of ops) Y.applyUpdate(replay, op.update);
  const pending = replay.store.pendingStructs !== null || replay.store.pendingDs !== null;
  return {
    text: replay.getText("text").toString(),
    opBytes: ops.reduce((sum, op) => sum + op.update.byteLength, 0),
    pending,
  };
}

describe("security: the pending-updates budget (issue #23)", () => {
  let server: TestServer;
  let store: MemoryDocumentStore;
  let attack: Uint8Array[];
  const clients: (Client | HocuspocusClient)[] = [];
  before(async () => {
    store = new MemoryDocumentStore();
    server = await startServer((b) => b.useStorage(store));
    attack = gappedUpdates();
  });
  afterEach(() => clients.splice(0).forEach((c) => c.destroy()));
  after(() => server.stop());

  for (const dialect of dialects) {
    it(`${dialect.name}: 40 × 1 MiB of updates with a missing dependency are refused past the budget with 4009; honest clients carry on`, async function () {
      this.timeout(60_000);
      const doc = `pending-${dialect.label}`;
      const writer = connectClient(server.url, doc);
      const reader = connectHocuspocus(PROVIDER_VERSIONS.at(-1)!, `${server.url}/hocuspocus`, doc);
      clients.push(writer, reader);
      await Promise.all([synced(writer), hpSynced(reader)]);
      writer.text.insert(0, "before;");
      await eventually(() => assert.equal(reader.text.toString(), "before;"));
      const session = server.host.router.localSession(doc)!;
      const rejected = await counter(server, "updatesRejected", { reason: "pending-budget" });
      const badFrames = await counter(server, "badFrames", {
        dialect: dialect.label,
        reason: "pending-budget",
      });

      const attacker = new WebSocket(dialect.url(server, doc));
      await once(attacker, "open");
      for (const frame of dialect.opening(doc)) attacker.send(frame);
      const code = sendUntilClosed(
        attacker,
        attack.map((update) => dialect.frame(doc, update)),
      );
      writer.text.insert(writer.text.length, "during;");
      assert.equal(await code, 4009, "closed with PENDING_BUDGET_EXCEEDED");
      assert.ok(session.pendingBytes <= DEFAULT_MAX_PENDING_BYTES, `${session.pendingBytes} bytes pending`);
      assert.ok((await counter(server, "updatesRejected", { reason: "pending-budget" })) > rejected);
      assert.equal(
        await counter(server, "badFrames", { dialect: dialect.label, reason: "pending-budget" }),
        badFrames + 1,
      );

      writer.text.insert(writer.text.length, "after;");
      await eventually(() => assert.equal(reader.text.toString(), "before;during;after;"));
      reader.text.insert(0, "reply;");
      await eventually(() => assert.equal(writer.text.toString(), "reply;before;during;after;"));
      assert.equal(await sessionText(session), "reply;before;during;after;");
      assert.equal(server.host.router.localSession(doc), session, "the document carried on");

      const durable = await eventually(async () => {
        const state = await stored(store, doc);
        assert.equal(state.text, "reply;before;during;after;");
        return state;
      });
      assert.ok(durable.opBytes < 64 * 1024, `no attack content in the ops (${durable.opBytes} bytes)`);
      assert.equal(durable.pending, false);
    });
  }
});
