import { strict as assert } from "node:assert";
import { once } from "node:events";
import { setTimeout as delay } from "node:timers/promises";
import * as encoding from "lib0/encoding";
import WebSocket from "ws";
import * as Y from "yjs";
import { CloseCodes, ErrorCodes, isOpStreamError, type Access } from "../../src/index.js";
import { connectClient, synced } from "../support/clients.js";
import { eventually } from "../support/eventually.js";
import { PROVIDER_VERSIONS, allAcknowledged, connectHocuspocus, hpSynced } from "../support/hocuspocus.js";
import { startServer, type TestServer } from "../support/server.js";
import { sessionText } from "../support/session.js";

/** A client frame built by hand: the routing key, the message type, then `write`. */
function frame(
  key: string,
  type: number,
  write: (e: encoding.Encoder) => void = () => undefined,
): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarString(encoder, key);
  encoding.writeVarUint(encoder, type);
  write(encoder);
  return encoding.toUint8Array(encoder);
}
const auth = (key: string, token: string) =>
  frame(key, 2, (e) => {
    encoding.writeVarUint(e, 0);
    encoding.writeVarString(e, token);
  });
const sync = (key: string, step: number, bytes: Uint8Array) =>
  frame(key, 0, (e) => {
    encoding.writeVarUint(e, step);
    encoding.writeVarUint8Array(e, bytes);
  });
/** The expected server frame: key and type, then the given bytes. */
const expected = (key: string, type: number, ...rest: number[]) => [...frame(key, type), ...rest];
const varString = (text: string) => [text.length, ...new TextEncoder().encode(text)];

/** A raw WebSocket on the Hocuspocus endpoint that records every frame it receives. */
async function rawSocket(server: TestServer): Promise<{ ws: WebSocket; frames: number[][] }> {
  const ws = new WebSocket(`${server.url}/hocuspocus`);
  const frames: number[][] = [];
  ws.on("message", (data: Buffer) => frames.push([...data]));
  await once(ws, "open");
  return { ws, frames };
}

async function closeCode(ws: WebSocket): Promise<number> {
  const [code] = (await once(ws, "close")) as [number];
  return code;
}

async function badFrames(server: TestServer, reason: string): Promise<number> {
  const metric = await server.host.metrics.badFrames.get();
  return (
    metric.values.find((v) => v.labels.dialect === "hocuspocus" && v.labels.reason === reason)?.value ?? 0
  );
}

describe("Hocuspocus dialect on the wire", () => {
  let server: TestServer;
  let gate: Promise<void> = Promise.resolve();
  const asked: string[] = [];
  const authorizer = async ({ docId }: { docId: string }): Promise<Access> => {
    asked.push(docId);
    if (docId === "throws") throw new Error("authorizer bug");
    await gate;
    return "read-write";
  };
  before(async () => {
    server = await startServer((b) => b.useMemoryStorage().useAuthorization(authorizer), {
      transport: { maxPendingFrames: 10 },
    });
  });
  after(() => server.stop());

  it("answers as PROTOCOL.md says, with the exact routing key of each frame", async () => {
    const key = "wire\0session-1";
    const { ws, frames } = await rawSocket(server);
    ws.send(auth(key, "token"));
    await eventually(() => assert.deepEqual(frames, [expected(key, 2, 2, ...varString("read-write"))]));
    ws.send(sync(key, 0, new Uint8Array([0])));
    await eventually(() => assert.equal(frames.length, 3));
    assert.deepEqual(frames[1]!.slice(0, key.length + 3), expected(key, 0, 1), "SyncStep2 first");
    assert.deepEqual(frames[2], expected(key, 0, 0, 1, 0), "then SyncStep1 (an empty state vector)");
    const doc = new Y.Doc();
    doc.getText("text").insert(0, "raw");
    ws.send(sync(key, 2, Y.encodeStateAsUpdate(doc)));
    await eventually(() => assert.deepEqual(frames[3], expected(key, 8, 1)), 2000);
    assert.equal(await sessionText(server.host.router.localSession("wire")), "raw");
    ws.send(frame(key, 3));
    await eventually(() => assert.deepEqual(frames[4], expected(key, 1, 1, 0)), 2000);
    ws.send(new Uint8Array([9]));
    await eventually(() => assert.deepEqual(frames[5], [10]), 2000);
    ws.send(frame(key, 7));
    await eventually(() => assert.equal(server.host.router.localSession("wire")?.peerCount, 0));
    ws.close();
  });

  it("queues frames sent before the Auth answer and loads nothing before authorizing", async () => {
    let open!: () => void;
    gate = new Promise((resolve) => (open = resolve));
    const { ws, frames } = await rawSocket(server);
    ws.send(auth("early", ""));
    ws.send(sync("early", 0, new Uint8Array([0])));
    await eventually(() => assert.ok(asked.includes("early"), "the authorizer is running"));
    // A round trip on the socket (Ping → Pong): the server has read both frames by now.
    ws.send(new Uint8Array([9]));
    await eventually(() => assert.deepEqual(frames, [[10]]));
    assert.equal(server.host.router.localSession("early"), undefined, "not loaded before authorization");
    open();
    gate = Promise.resolve();
    await eventually(() => assert.equal(frames.length, 4));
    assert.deepEqual(frames[1], expected("early", 2, 2, ...varString("read-write")));
    assert.deepEqual(frames[2]!.slice(0, 8), expected("early", 0, 1));
    ws.close();
  });

  it("closes with 4002 when more than maxPendingFrames wait for their documents", async () => {
    const counted = await badFrames(server, "too-many-pending");
    const { ws } = await rawSocket(server);
    const closed = closeCode(ws);
    for (let i = 0; i < 11; i++) ws.send(frame(`pending-${i % 3}`, 3)); // no Auth for any of them
    assert.equal(await closed, CloseCodes.TOO_MANY_PENDING);
    assert.equal(await badFrames(server, "too-many-pending"), counted + 1);
  });

  it("an authorizer that throws closes the socket with 1011", async () => {
    const { ws } = await rawSocket(server);
    const closed = closeCode(ws);
    ws.send(auth("throws", "x"));
    assert.equal(await closed, CloseCodes.INTERNAL_ERROR);
  });

  it("refuses an empty or overlong document name with PermissionDenied", async () => {
    const { ws, frames } = await rawSocket(server);
    ws.send(auth("", "x"));
    ws.send(auth("n".repeat(513), "x"));
    await eventually(() => assert.equal(frames.length, 2));
    assert.deepEqual(frames[0], expected("", 2, 1, ...varString("invalid document name")));
    assert.deepEqual(frames[1]!.slice(-24), [1, ...varString("document name too long")]);
    ws.close();
  });

  it("serves the endpoint at transport.hocuspocusPath, next to y-websocket's prefix; refuses '/'", async () => {
    const custom = await startServer(undefined, {
      transport: { prefix: "/collab", hocuspocusPath: "/collab/hp/" },
    });
    try {
      const version = PROVIDER_VERSIONS.at(-1)!;
      const a = connectHocuspocus(version, `${custom.url}/collab/hp`, "custom");
      const b = connectClient(`${custom.url}/collab`, "custom");
      try {
        await Promise.all([hpSynced(a), synced(b)]);
        a.text.insert(0, "both dialects");
        await eventually(() => assert.equal(b.text.toString(), "both dialects"));
      } finally {
        a.destroy();
        b.destroy();
      }
      const outside = new WebSocket(`${custom.url}/hocuspocus`);
      const [, response] = (await once(outside, "unexpected-response")) as [unknown, { statusCode: number }];
      assert.equal(response.statusCode, 404, "the default path is an ordinary path now");
    } finally {
      await custom.stop();
    }
    await assert.rejects(startServer(undefined, { transport: { hocuspocusPath: "/" } }), (error: unknown) =>
      isOpStreamError(error, ErrorCodes.INVALID_OPTION),
    );
  });

  const bad: { name: string; data: () => Uint8Array | string; code: number; reason: string }[] = [
    { name: "a truncated frame", data: () => new Uint8Array([3, 97]), code: 1007, reason: "truncated" },
    {
      name: "a key that is not UTF-8",
      data: () => new Uint8Array([1, 0xff, 3]),
      code: 1007,
      reason: "malformed",
    },
    {
      name: "BroadcastStateless from a client",
      data: () => frame("doc", 6),
      code: 1003,
      reason: "unknown-type",
    },
    { name: "an unknown message type", data: () => frame("doc", 42), code: 1003, reason: "unknown-type" },
    {
      name: "bytes after the message",
      data: () => new Uint8Array([...frame("doc", 3), 1]),
      code: 1007,
      reason: "trailing-bytes",
    },
    { name: "a text frame", data: () => "hello", code: 1003, reason: "text-frame" },
    {
      name: "an update Yjs cannot apply",
      data: () => sync("bad-input", 2, new Uint8Array([5, 1, 2, 200])),
      code: 1007,
      reason: "invalid-update",
    },
  ];

  for (const version of PROVIDER_VERSIONS) {
    for (const { name, data, code, reason } of bad) {
      it(`${name} → ${code}, counted; a ${version.name} provider on the document carries on`, async () => {
        const url = `${server.url}/hocuspocus`;
        const a = connectHocuspocus(version, url, "bad-input");
        const b = connectHocuspocus(version, url, "bad-input");
        try {
          await Promise.all([hpSynced(a), hpSynced(b)]);
          const counted = await badFrames(server, reason);
          const { ws } = await rawSocket(server);
          ws.send(auth("bad-input", ""));
          const closed = closeCode(ws);
          ws.send(data());
          assert.equal(await closed, code);
          assert.equal(await badFrames(server, reason), counted + 1);
          a.text.insert(a.text.length, `${reason};`);
          await eventually(() => assert.equal(b.text.toString(), a.text.toString()));
          await allAcknowledged(a);
        } finally {
          a.destroy();
          b.destroy();
        }
      });
    }

    it(`keeps an idle ${version.name} provider connected with real traffic`, async function () {
      this.timeout(15_000);
      const quick = await startServer(undefined, { transport: { keepAliveIntervalMs: 400 } });
      const socket = version.socket(`${quick.url}/hocuspocus`, { messageReconnectTimeout: 1500 });
      const idle = connectHocuspocus(version, `${quick.url}/hocuspocus`, "idle", { socket });
      const pings: number[] = [];
      socket.on("message", (event: MessageEvent<ArrayBuffer>) => {
        const data = new Uint8Array(event.data);
        if (data.length === 1) pings.push(data[0]!);
      });
      try {
        await hpSynced(idle);
        const ws = socket.webSocket;
        const statuses: string[] = [];
        socket.on("status", ({ status }: { status: string }) => statuses.push(status));
        // Time is the subject: the provider drops a socket after 1.5 s without a message.
        await delay(4000);
        assert.deepEqual(statuses, [], "no disconnect while idle");
        assert.equal(socket.webSocket, ws);
        // v4 answers Ping with Pong; v3 cannot parse it and gets empty awareness frames instead.
        assert.equal(pings.includes(9), version.name === "v4");
      } finally {
        idle.destroy();
        socket.destroy();
        await quick.stop();
      }
    });
  }
});
