import { strict as assert } from "node:assert";
import * as Y from "yjs";
import {
  HybridSnapshotPolicy,
  MemoryDocumentStore,
  OpStreamMetrics,
  type IOwnership,
  type Lease,
} from "../../src/index.js";
import { LocalBackplane } from "../../src/backplane/local/local-backplane.js";
import { LocalOwnership } from "../../src/backplane/local/local-ownership.js";
import { DocumentRouter } from "../../src/router/document-router.js";
import { RecordingPeer, insertUpdate } from "../support/engine.js";
import { eventually } from "../support/eventually.js";
import { testLogger } from "../support/server.js";
import { sessionText } from "../support/session.js";

/** Hands out leases already lost, `losses` times: a lease that expired while the document loaded. */
class LosingOwnership implements IOwnership {
  constructor(
    private readonly inner: IOwnership,
    private losses: number,
  ) {}

  async acquire(docId: string): Promise<Lease | null> {
    const lease = await this.inner.acquire(docId);
    if (!lease || this.losses <= 0) return lease;
    this.losses -= 1;
    return { ...lease, signal: AbortSignal.abort() };
  }

  ownerOf(docId: string): Promise<string | null> {
    return this.inner.ownerOf(docId);
  }
}

function router(store: MemoryDocumentStore, idleTimeoutMs: number, losses = 0) {
  const backplane = new LocalBackplane();
  return new DocumentRouter({
    store,
    backplane,
    ownership: new LosingOwnership(new LocalOwnership(backplane.bus, backplane.nodeId, store), losses),
    snapshotPolicy: new HybridSnapshotPolicy(),
    validators: [],
    seeder: undefined,
    logger: testLogger(),
    metrics: new OpStreamMetrics(),
    idleTimeoutMs,
  });
}

describe("DocumentRouter", () => {
  it("a session that closes while it opens (lease lost during the load) is not kept: the next join opens afresh", async () => {
    const r = router(new MemoryDocumentStore(), 60_000, 1);
    await assert.rejects(r.join("doc", new RecordingPeer("first")), /closed/);
    // Before the fix the closed session stayed registered, and this join spun on its
    // resolved whenClosed() forever, starving the event loop (a wedged node).
    const handle = await r.join("doc", new RecordingPeer("second"));
    assert.equal(r.localSession("doc")?.closed, false);
    assert.equal(r.sessionCount, 1);
    handle.leave();
    await r.shutdown();
  });

  it("opens one session for concurrent joins of the same document", async () => {
    const r = router(new MemoryDocumentStore(), 60_000);
    const handles = await Promise.all(
      Array.from({ length: 10 }, (_, i) => r.join("doc", new RecordingPeer(`p${i}`))),
    );
    assert.equal(r.sessionCount, 1);
    assert.equal(r.localSession("doc")?.peerCount, 10);
    handles.forEach((h) => h.leave());
    await r.shutdown();
  });

  it("unloads an idle document after its last peer leaves, writing a final snapshot first", async () => {
    const store = new MemoryDocumentStore();
    const r = router(store, 50);
    const a = await r.join("doc", new RecordingPeer("a"));
    const b = await r.join("doc", new RecordingPeer("b"));
    await a.apply(insertUpdate(new Y.Doc(), 0, "kept"));
    a.leave();
    assert.equal(r.sessionCount, 1, "one peer still attached");
    b.leave();
    await eventually(() => assert.equal(r.sessionCount, 0));
    const snapshot = await store.loadSnapshot("doc");
    assert.equal(snapshot?.seq, 1, "final snapshot written at unload");
    const rebuilt = new Y.Doc();
    Y.applyUpdate(rebuilt, snapshot.state);
    assert.equal(rebuilt.getText("text").toString(), "kept");
    const again = await r.join("doc", new RecordingPeer("c"));
    assert.equal(await sessionText(r.localSession("doc")), "kept", "reloads from the snapshot");
    again.leave();
    await r.shutdown();
  });

  it("keeps a document loaded when a peer rejoins before the idle timeout", async () => {
    const r = router(new MemoryDocumentStore(), 60_000);
    const a = await r.join("doc", new RecordingPeer("a"));
    const session = r.localSession("doc");
    a.leave();
    const b = await r.join("doc", new RecordingPeer("b"));
    assert.equal(r.localSession("doc"), session);
    b.leave();
    await r.shutdown();
    assert.equal(session?.closed, true);
  });
});
