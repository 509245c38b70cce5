import { strict as assert } from "node:assert";
import { once } from "node:events";
import WebSocket from "ws";
import { counted } from "../support/metrics.js";
import { startServer, type TestServer } from "../support/server.js";

const PING_MS = 150;
/** y-websocket's QueryAwareness frame: a real frame that changes nothing. */
const QUERY_AWARENESS = new Uint8Array([3]);
const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A raw y-websocket socket on `doc` that counts the pings it gets; `autoPong: false` never answers them. */
async function rawSocket(
  server: TestServer,
  doc: string,
  autoPong: boolean,
): Promise<{ ws: WebSocket; pings: () => number }> {
  const ws = new WebSocket(`${server.url}/${doc}`, { autoPong });
  let pings = 0;
  ws.on("ping", () => (pings += 1));
  ws.on("error", () => undefined);
  await once(ws, "open");
  return { ws, pings: () => pings };
}

describe("connection liveness (transport.pingIntervalMs)", function () {
  this.timeout(15_000);
  let server: TestServer;
  before(async () => (server = await startServer(undefined, { transport: { pingIntervalMs: PING_MS } })));
  after(() => server.stop());

  it("a client that sends frames is never pinged, and stays connected without answering pings", async () => {
    const { ws, pings } = await rawSocket(server, "talking", false);
    const talk = setInterval(() => ws.send(QUERY_AWARENESS), PING_MS / 3);
    try {
      // Time is the subject: several ping periods pass.
      await delay(PING_MS * 8);
      assert.equal(ws.readyState, WebSocket.OPEN, "still open");
      assert.equal(pings(), 0, "its frames prove it alive: no ping sent");
    } finally {
      clearInterval(talk);
      ws.close();
    }
  });

  it("a silent client is pinged, and stays connected while it answers", async () => {
    const { ws, pings } = await rawSocket(server, "silent", true);
    try {
      await delay(PING_MS * 8);
      assert.equal(ws.readyState, WebSocket.OPEN, "still open");
      assert.ok(pings() >= 3, `pinged every period (${pings()} pings)`);
    } finally {
      ws.close();
    }
  });

  it("a silent client that does not answer the ping is terminated at the next check, and counted", async () => {
    const metric = server.host.metrics.closes;
    const before = await counted(metric, { code: "terminated" });
    const { ws, pings } = await rawSocket(server, "dead", false);
    const [code] = (await once(ws, "close")) as [number];
    assert.equal(code, 1006, "terminated, not closed with a frame");
    assert.ok(pings() >= 1, "it was pinged first");
    assert.equal(await counted(metric, { code: "terminated" }), before + 1);
  });
});
