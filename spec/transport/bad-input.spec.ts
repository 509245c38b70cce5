import { strict as assert } from "node:assert";
import { once } from "node:events";
import WebSocket from "ws";
import { CloseCodes } from "../../src/index.js";
import { connectClient, synced, type Client } from "../support/clients.js";
import { eventually } from "../support/eventually.js";
import { startServer, type TestServer } from "../support/server.js";
import { sessionText } from "../support/session.js";

/** Opens a raw socket to `doc` and waits for the server's opening sync step 1. */
async function rawSocket(server: TestServer, doc: string): Promise<WebSocket> {
  const ws = new WebSocket(`${server.url}/${doc}`);
  await once(ws, "message");
  return ws;
}

async function closeCodeAfter(ws: WebSocket, send: () => void): Promise<number> {
  const closed = once(ws, "close") as Promise<[number, Buffer]>;
  send();
  const [code] = await closed;
  return code;
}

async function badFrames(server: TestServer, reason: string): Promise<number> {
  const metric = await server.host.metrics.badFrames.get();
  return metric.values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

describe("bad input closes only the offending socket, with its documented code", () => {
  let server: TestServer;
  const clients: Client[] = [];
  before(async () => (server = await startServer(undefined, { transport: { maxPayloadBytes: 64 * 1024 } })));
  afterEach(() => clients.splice(0).forEach((c) => c.destroy()));
  after(() => server.stop());

  const cases: { name: string; frame: () => Uint8Array | string; code: number; reason: string }[] = [
    {
      name: "a garbage frame (an update Yjs cannot decode)",
      frame: () => new Uint8Array([0, 2, 5, 1, 2, 3, 200, 200]),
      code: CloseCodes.INVALID_FRAME,
      reason: "invalid-update",
    },
    {
      name: "a truncated frame",
      frame: () => new Uint8Array([0, 2, 50, 1, 2]),
      code: CloseCodes.INVALID_FRAME,
      reason: "truncated",
    },
    {
      name: "an unknown message type",
      frame: () => new Uint8Array([9, 1, 2]),
      code: CloseCodes.UNSUPPORTED_DATA,
      reason: "unknown-type",
    },
    { name: "a text frame", frame: () => "hello", code: CloseCodes.UNSUPPORTED_DATA, reason: "text-frame" },
    {
      name: "a frame over maxPayload",
      frame: () => new Uint8Array(128 * 1024),
      code: CloseCodes.MESSAGE_TOO_BIG,
      reason: "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH",
    },
  ];

  for (const { name, frame, code, reason } of cases) {
    it(`${name} → ${code}; the other clients keep syncing`, async () => {
      const doc = `bad-${reason}`;
      const a = connectClient(server.url, doc);
      const b = connectClient(server.url, doc);
      clients.push(a, b);
      await Promise.all([synced(a), synced(b)]);
      a.text.insert(0, "before;");
      await eventually(() => assert.equal(b.text.toString(), "before;"));
      const counted = await badFrames(server, reason);

      const bad = await rawSocket(server, doc);
      assert.equal(await closeCodeAfter(bad, () => bad.send(frame())), code);

      await eventually(async () => assert.equal(await badFrames(server, reason), counted + 1), 2000);
      b.text.insert(b.text.length, "after;");
      await eventually(() => assert.equal(a.text.toString(), "before;after;"));
      assert.equal(
        a.provider.wsconnected && b.provider.wsconnected,
        true,
        "the stock clients were never dropped",
      );
      assert.equal(await sessionText(server.host.router.localSession(doc)), "before;after;");
    });
  }

  it("a client that stops reading is closed with 4001 instead of stalling the document", async () => {
    const slowServer = await startServer(undefined, { transport: { maxBufferedBytes: 256 * 1024 } });
    try {
      const writer = connectClient(slowServer.url, "slow");
      const reader = connectClient(slowServer.url, "slow");
      clients.push(writer, reader);
      await Promise.all([synced(writer), synced(reader)]);
      const slow = await rawSocket(slowServer, "slow");
      slow.pause(); // stop reading: the server's send buffer towards it grows
      const closes = () => slowServer.host.metrics.closes.get();
      const chunk = "x".repeat(16 * 1024);
      for (let i = 0; i < 400 && !(await closes()).values.some((v) => v.labels.code === "4001"); i++) {
        writer.text.insert(writer.text.length, chunk);
        await eventually(() => assert.equal(reader.text.length, writer.text.length));
      }
      assert.ok(
        (await closes()).values.some((v) => v.labels.code === "4001"),
        "the slow client was closed",
      );
      slow.resume();
      const [code] = (await once(slow, "close")) as [number];
      assert.equal(code, CloseCodes.SLOW_CONSUMER);
      writer.text.insert(0, "!");
      await eventually(() => assert.equal(reader.text.toString(), writer.text.toString()));
    } finally {
      await slowServer.stop();
    }
  });
});
