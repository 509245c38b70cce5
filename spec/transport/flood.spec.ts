import { strict as assert } from "node:assert";
import { once } from "node:events";
import * as encoding from "lib0/encoding";
import WebSocket from "ws";
import * as Y from "yjs";
import { CloseCodes } from "../../src/index.js";
import { encode as encodeHocuspocus } from "../../src/transport/hocuspocus/messages.js";
import { encodeUpdate } from "../../src/transport/y-websocket/messages.js";
import { connectClient, synced, type Client } from "../support/clients.js";
import { insertUpdate } from "../support/engine.js";
import {
  PROVIDER_VERSIONS,
  connectHocuspocus,
  hpSynced,
  type HocuspocusClient,
} from "../support/hocuspocus.js";
import { startServer, type TestServer } from "../support/server.js";

/** Limits small enough that a flood is throttled, then closed after about 150 / 100 = 1.5 s. */
const LIMITS = { messageRate: 100, messageBurst: 50, maxThrottledMessages: 150 };

/** Inserts `marker` through `from` and resolves with the ms until `to` has it. */
function roundTrip(from: Y.Text, to: Y.Doc, marker: string): Promise<number> {
  const start = performance.now();
  const arrived = new Promise<number>((resolve) => {
    const check = () => {
      if (!to.getText("text").toString().includes(marker)) return;
      to.off("update", check);
      resolve(performance.now() - start);
    };
    to.on("update", check);
  });
  from.insert(from.length, marker);
  return arrived;
}

function p99(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)]!;
}

/** Sends valid updates as fast as the socket takes them until the server closes it; resolves with the code. */
async function flood(ws: WebSocket, frameOf: (update: Uint8Array) => Uint8Array): Promise<number> {
  const closed = once(ws, "close") as Promise<[number]>;
  let open = true;
  void closed.then(() => (open = false));
  const doc = new Y.Doc();
  for (let sent = 0; open; sent++) {
    if (ws.bufferedAmount < 64 * 1024) ws.send(frameOf(insertUpdate(doc, 0, "f")));
    if (sent % 20 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  const [code] = await closed;
  return code;
}

function hocuspocusAuth(key: string): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarString(encoder, key);
  encoding.writeVarUint(encoder, 2); // Auth
  encoding.writeVarUint(encoder, 0); // Token
  encoding.writeVarString(encoder, "");
  return encoding.toUint8Array(encoder);
}

async function throttledFrames(server: TestServer): Promise<number> {
  const { values } = await server.host.metrics.messagesThrottled.get();
  return values.reduce((sum, v) => sum + v.value, 0);
}

async function rateLimitCloses(server: TestServer): Promise<number> {
  const { values } = await server.host.metrics.badFrames.get();
  return values.filter((v) => v.labels.reason === "rate-limit").reduce((sum, v) => sum + v.value, 0);
}

type Honest = { text: Y.Text; doc: Y.Doc; connected(): boolean };

describe("a message flood is throttled, then closed, while honest clients of the document carry on", () => {
  let server: TestServer;
  const cleanup: (Client | HocuspocusClient)[] = [];
  before(async () => (server = await startServer(undefined, { transport: LIMITS })));
  afterEach(() => cleanup.splice(0).forEach((c) => c.destroy()));
  after(() => server.stop());

  async function measure(
    honest: [Honest, Honest],
    flooder: WebSocket,
    frameOf: (update: Uint8Array) => Uint8Array,
  ): Promise<void> {
    const [throttled, closedForRate] = [await throttledFrames(server), await rateLimitCloses(server)];
    const code = flood(flooder, frameOf);
    let done = false;
    void code.then(() => (done = true));
    const samples: number[] = [];
    for (let i = 0; !done; i++)
      samples.push(await roundTrip(honest[i % 2]!.text, honest[(i + 1) % 2]!.doc, `<${i}>`));
    assert.equal(await code, CloseCodes.RATE_LIMITED);
    assert.ok((await throttledFrames(server)) > throttled + LIMITS.messageBurst, "throttled first");
    assert.equal(await rateLimitCloses(server), closedForRate + 1);
    assert.ok(samples.length >= 20, `${samples.length} round trips during the flood`);
    assert.ok(p99(samples) < 100, `p99 round trip ${p99(samples).toFixed(1)} ms`);
    assert.ok(
      honest.every((client) => client.connected()),
      "the honest clients were never dropped",
    );
  }

  it("y-websocket", async function () {
    this.timeout(20_000);
    const [a, b] = [connectClient(server.url, "flood"), connectClient(server.url, "flood")];
    cleanup.push(a, b);
    await Promise.all([synced(a), synced(b)]);
    const flooder = new WebSocket(`${server.url}/flood`);
    await once(flooder, "open");
    const wrap = (c: Client): Honest => ({ ...c, connected: () => c.provider.wsconnected });
    await measure([wrap(a), wrap(b)], flooder, encodeUpdate);
  });

  for (const version of PROVIDER_VERSIONS) {
    it(`Hocuspocus ${version.name}`, async function () {
      this.timeout(20_000);
      const url = `${server.url}/hocuspocus`;
      const doc = `flood-${version.name}`;
      const [a, b] = [connectHocuspocus(version, url, doc), connectHocuspocus(version, url, doc)];
      cleanup.push(a, b);
      await Promise.all([hpSynced(a), hpSynced(b)]);
      const flooder = new WebSocket(url);
      await once(flooder, "open");
      flooder.send(hocuspocusAuth(doc));
      const wrap = (c: HocuspocusClient): Honest => ({
        ...c,
        connected: () => c.socket.status === "connected",
      });
      await measure([wrap(a), wrap(b)], flooder, (update) => encodeHocuspocus.update(doc, update));
    });
  }
});
