import { strict as assert } from "node:assert";
import * as Y from "yjs";
import { MemoryDocumentStore } from "../../src/index.js";
import { GatedStore, RecordingPeer, insertUpdate } from "../support/engine.js";
import { startServer } from "../support/server.js";

/** A real memory store that can be switched to failing pings (an unreachable database). */
class UnreachableStore extends MemoryDocumentStore {
  reachable = true;
  override ping(): Promise<void> {
    return this.reachable ? super.ping() : Promise.reject(new Error("connection refused"));
  }
}

describe("health endpoints", () => {
  it("answers /livez, /healthz and /readyz, and /readyz turns 503 when the store is unreachable", async () => {
    const store = new UnreachableStore();
    const server = await startServer((b) => b.useStorage(store));
    const http = `http://127.0.0.1:${server.port}`;
    try {
      assert.equal((await fetch(`${http}/livez`)).status, 200);
      const health = (await (await fetch(`${http}/healthz`)).json()) as { status: string; storage: string };
      assert.equal(health.status, "ok");
      assert.equal(health.storage, "memory");
      assert.equal((await fetch(`${http}/readyz`)).status, 200);
      store.reachable = false;
      const notReady = await fetch(`${http}/readyz`);
      assert.equal(notReady.status, 503);
      assert.equal(((await notReady.json()) as { reason: string }).reason, "storage");
      assert.equal((await fetch(`${http}/livez`)).status, 200, "liveness does not depend on storage");
      const metrics = await (await fetch(`${http}/metrics`)).text();
      assert.match(metrics, /opstream_connections/);
    } finally {
      await server.stop();
    }
  });

  it("answers /readyz 503 while shutdown drains, before the drain completes", async () => {
    const store = new GatedStore();
    const server = await startServer((b) => b.useStorage(store));
    const http = `http://127.0.0.1:${server.port}`;
    assert.equal((await fetch(`${http}/readyz`)).status, 200);
    const handle = await server.host.router.join("doc", new RecordingPeer("p"));
    store.closeGate(); // an append is in flight: the drain must wait for it
    const applied = handle.apply(insertUpdate(new Y.Doc(), 0, "pending"));
    let stopped = false;
    const stopping = server.host.shutdown().then(() => (stopped = true));
    const response = await fetch(`${http}/readyz`);
    assert.equal(response.status, 503);
    assert.equal(((await response.json()) as { reason: string }).reason, "draining");
    assert.equal(stopped, false, "still draining");
    store.release();
    await stopping;
    assert.equal(await applied, 1, "the pending update was made durable during the drain");
    assert.equal((await store.loadSnapshot("doc"))?.seq, 1, "and a final snapshot written");
  });
});
