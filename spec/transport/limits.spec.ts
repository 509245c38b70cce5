import { strict as assert } from "node:assert";
import { once } from "node:events";
import WebSocket from "ws";
import { CloseCodes } from "../../src/index.js";
import { connectClient, synced, type Client } from "../support/clients.js";
import { CountingStore } from "../support/counting-store.js";
import { eventually } from "../support/eventually.js";
import { PROVIDER_VERSIONS, connectHocuspocus, hpSynced } from "../support/hocuspocus.js";
import { startServer, type TestServer } from "../support/server.js";
import { counted } from "../support/metrics.js";
import { refusedWith, tryUpgrade } from "../support/upgrade.js";

/** Opens a raw socket, sends `frames`, and resolves with the close code the server sent. */
async function closeCodeAfter(url: string, frames: Uint8Array[]): Promise<number> {
  const ws = new WebSocket(url);
  ws.on("error", () => undefined); // the server may reset while a large frame is still being written
  await once(ws, "open");
  const closed = once(ws, "close") as Promise<[number]>;
  for (const frame of frames) ws.send(frame);
  const [code] = await closed;
  return code;
}

describe("transport limits", () => {
  const clients: Client[] = [];
  afterEach(() => clients.splice(0).forEach((c) => c.destroy()));

  describe("maxPayloadBytes", () => {
    let server: TestServer;
    before(
      async () => (server = await startServer(undefined, { transport: { maxPayloadBytes: 64 * 1024 } })),
    );
    after(() => server.stop());

    for (const path of ["/oversize", "/hocuspocus"]) {
      it(`${path}: frames over it are closed with 1009 and the process's memory stays flat`, async function () {
        this.timeout(30_000);
        const [a, b] = [connectClient(server.url, "oversize"), connectClient(server.url, "oversize")];
        clients.push(a, b);
        await Promise.all([synced(a), synced(b)]);
        const oversize = new Uint8Array(4 * 1024 * 1024).fill(7);
        // Warm up (socket and buffer pools of both ends), then measure.
        for (let i = 0; i < 5; i++) {
          assert.equal(await closeCodeAfter(`${server.url}${path}`, [oversize]), CloseCodes.MESSAGE_TOO_BIG);
        }
        const rssBefore = process.memoryUsage().rss;
        for (let i = 0; i < 40; i++) {
          assert.equal(await closeCodeAfter(`${server.url}${path}`, [oversize]), CloseCodes.MESSAGE_TOO_BIG);
        }
        const grownMiB = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
        // 160 MiB were sent; a server that buffered them would grow by at least that.
        assert.ok(grownMiB < 64, `RSS grew by ${grownMiB.toFixed(1)} MiB`);
        a.text.insert(0, "still here");
        await eventually(() => assert.equal(b.text.toString(), "still here"));
      });
    }
  });

  describe("connection caps", () => {
    let server: TestServer;
    before(
      async () =>
        (server = await startServer(undefined, {
          transport: {
            maxConnectionsPerIp: 3,
            // Distinct "addresses" from one test process: the header stands in for a proxy's X-Forwarded-For.
            clientAddress: (request) => String(request.headers["x-client"] ?? request.socket.remoteAddress),
          },
        })),
    );
    after(() => server.stop());

    it("refuses a client address past maxConnectionsPerIp with 429 on both dialects, until one closes", async () => {
      const as = (client: string) => ({ headers: { "x-client": client } });
      const opened = await Promise.all([
        tryUpgrade(`${server.url}/capped`, [], as("10.0.0.1")),
        tryUpgrade(`${server.url}/capped`, [], as("10.0.0.1")),
        tryUpgrade(`${server.url}/hocuspocus`, [], as("10.0.0.1")),
      ]);
      assert.deepEqual(
        opened.map((o) => o.status),
        [101, 101, 101],
      );
      const before = await counted(server.host.metrics.upgradesRefused, { reason: "ip-limit" });
      assert.equal(await refusedWith(`${server.url}/capped`, [], as("10.0.0.1")), 429);
      assert.equal(await refusedWith(`${server.url}/hocuspocus`, [], as("10.0.0.1")), 429);
      assert.equal(await counted(server.host.metrics.upgradesRefused, { reason: "ip-limit" }), before + 2);
      const other = await tryUpgrade(`${server.url}/capped`, [], as("10.0.0.2"));
      assert.equal(other.status, 101, "another address is not affected");
      opened[0]?.ws?.close();
      await eventually(async () => {
        const again = await tryUpgrade(`${server.url}/capped`, [], as("10.0.0.1"));
        assert.equal(again.status, 101);
        again.ws?.close();
      });
      for (const o of [...opened.slice(1), other]) o.ws?.close();
    });

    it("refuses upgrades past maxConnections with 503", async () => {
      const small = await startServer(undefined, { transport: { maxConnections: 2 } });
      try {
        const opened = await Promise.all([
          tryUpgrade(`${small.url}/node-cap`),
          tryUpgrade(`${small.url}/hocuspocus`),
        ]);
        assert.deepEqual(
          opened.map((o) => o.status),
          [101, 101],
        );
        assert.equal(await refusedWith(`${small.url}/node-cap`), 503);
        assert.equal(await refusedWith(`${small.url}/hocuspocus`), 503);
        assert.equal(await counted(small.host.metrics.upgradesRefused, { reason: "node-limit" }), 2);
        for (const o of opened) o.ws?.close();
      } finally {
        await small.stop();
      }
    });
  });

  describe("allowedOrigins", () => {
    let server: TestServer;
    before(
      async () =>
        (server = await startServer(undefined, { transport: { allowedOrigins: ["https://good.example"] } })),
    );
    after(() => server.stop());

    for (const path of ["/origin-doc", "/hocuspocus"]) {
      it(`${path}: a listed Origin (or none) is accepted, any other gets 403`, async () => {
        assert.equal(await refusedWith(`${server.url}${path}`, [], { origin: "https://evil.example" }), 403);
        assert.equal(
          await refusedWith(`${server.url}${path}`, [], { origin: "https://good.example:8443" }),
          403,
        );
        assert.equal(await refusedWith(`${server.url}${path}`, [], { origin: "https://GOOD.example" }), 101);
        assert.equal(await refusedWith(`${server.url}${path}`), 101, "no Origin: not a browser");
      });
    }

    it("counts refused origins; stock clients without an Origin connect", async () => {
      assert.equal(await counted(server.host.metrics.upgradesRefused, { reason: "origin" }), 4);
      const client = connectClient(server.url, "origin-doc");
      clients.push(client);
      await synced(client);
      const hocuspocus = connectHocuspocus(PROVIDER_VERSIONS[1]!, `${server.url}/hocuspocus`, "origin-doc");
      try {
        await hpSynced(hocuspocus);
      } finally {
        hocuspocus.destroy();
      }
    });
  });

  describe("frames and bytes accepted before authorization and load", () => {
    let server: TestServer;
    let store: CountingStore;
    before(async () => {
      store = new CountingStore();
      server = await startServer((b) => b.useStorage(store), {
        transport: { maxPendingFrames: 5, maxPendingBytes: 1000 },
      });
    });
    after(() => server.stop());

    const queryAwareness = () => new Uint8Array([3]);
    /** An awareness frame of `size` bytes (not decoded while it waits). */
    const bulky = (size: number) => new Uint8Array(size).fill(1);

    it("y-websocket: past maxPendingBytes or maxPendingFrames while the document loads → 4002", async () => {
      store.holdLoads();
      try {
        const bytes = await counted(server.host.metrics.badFrames, { reason: "too-many-pending-bytes" });
        const frames = await counted(server.host.metrics.badFrames, { reason: "too-many-pending" });
        const big = [bulky(400), bulky(400), bulky(400)];
        assert.equal(await closeCodeAfter(`${server.url}/slow`, big), CloseCodes.TOO_MANY_PENDING);
        const many = Array.from({ length: 6 }, queryAwareness);
        assert.equal(await closeCodeAfter(`${server.url}/slow`, many), CloseCodes.TOO_MANY_PENDING);
        assert.equal(
          await counted(server.host.metrics.badFrames, { reason: "too-many-pending-bytes" }),
          bytes + 1,
        );
        assert.equal(
          await counted(server.host.metrics.badFrames, { reason: "too-many-pending" }),
          frames + 1,
        );
        const patient = connectClient(server.url, "slow");
        clients.push(patient);
        store.openLoads();
        await synced(patient);
      } finally {
        store.openLoads();
      }
    });

    it("Hocuspocus: past maxPendingBytes before the Auth is answered → 4002", async () => {
      const before = await counted(server.host.metrics.badFrames, {
        dialect: "hocuspocus",
        reason: "too-many-pending-bytes",
      });
      // A document frame with no Auth first: key "x", Awareness, then filler.
      const frame = () => new Uint8Array([1, 120, 1, 0x83, 0x03, ...new Uint8Array(387)]);
      const code = await closeCodeAfter(`${server.url}/hocuspocus`, [frame(), frame(), frame()]);
      assert.equal(code, CloseCodes.TOO_MANY_PENDING);
      assert.equal(
        await counted(server.host.metrics.badFrames, {
          dialect: "hocuspocus",
          reason: "too-many-pending-bytes",
        }),
        before + 1,
      );
      assert.equal(store.touched("x"), false);
    });
  });
});
