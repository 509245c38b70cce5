import { strict as assert } from "node:assert";
import { readdirSync, readFileSync } from "node:fs";
import * as Y from "yjs";
import { ErrorCodes, MemoryDocumentStore, isOpStreamError, type Origin } from "../../src/index.js";
import { encodeAwarenessUpdate } from "../../src/engine/awareness.js";
import { eventually } from "../support/eventually.js";
import { GatedStore, RecordingPeer, insertUpdate, openSession } from "../support/engine.js";

const from = (peerId: string): Origin => ({ kind: "peer", peerId });

describe("DocumentSession: what the router reads (state, contains, join info, manage)", () => {
  it("state() and joinInfo() describe durable state only: they wait for the append in flight", async () => {
    const store = new GatedStore();
    const session = await openSession("doc", { store });
    try {
      store.closeGate();
      const applied = session.apply(insertUpdate(new Y.Doc(), 0, "durable"), from("a"));
      await eventually(() => assert.equal(store.batches.length, 1));
      const state = session.state();
      const info = session.joinInfo();
      store.release();
      assert.equal(await applied, 1);
      const { seq, bytes } = await state;
      assert.equal(seq, 1);
      const replica = new Y.Doc();
      Y.applyUpdate(replica, bytes);
      assert.equal(replica.getText("text").toString(), "durable");
      const joined = await info;
      assert.equal(joined.epoch, session.epoch);
      assert.equal(joined.seq, 1);
      assert.deepEqual(joined.stateVector, Y.encodeStateVector(replica));
      assert.equal(joined.awareness, null, "nobody is present");
    } finally {
      await session.close();
    }
  });

  it("joinInfo() carries the awareness states of the peers present", async () => {
    const session = await openSession("doc");
    try {
      session.addPeer(new RecordingPeer("a"));
      session.applyAwareness("a", encodeAwarenessUpdate([{ clientId: 7, clock: 1, json: '{"user":"a"}' }]));
      const { awareness } = await session.joinInfo();
      assert.ok(awareness);
      assert.deepEqual(awareness, session.awarenessStates());
    } finally {
      await session.close();
    }
  });

  it("contains() tells whether the durable document holds an update, and rejects garbage with INVALID_UPDATE", async () => {
    const session = await openSession("doc");
    try {
      const source = new Y.Doc();
      const held = insertUpdate(source, 0, "held");
      await session.apply(held, from("a"));
      assert.equal(await session.contains(held), true);
      assert.equal(await session.contains(insertUpdate(source, 4, "+new")), false);
      await assert.rejects(session.contains(Uint8Array.of(1, 2, 3)), (error: unknown) =>
        isOpStreamError(error, ErrorCodes.INVALID_UPDATE),
      );
    } finally {
      await session.close();
    }
  });

  it("manage() reads the state, compacts (seq = the snapshot's) and deletes (seq 0, session closed)", async () => {
    const store = new MemoryDocumentStore();
    const session = await openSession("doc", { store });
    await session.apply(insertUpdate(new Y.Doc(), 0, "x"), from("a"));
    const state = await session.manage("state");
    assert.equal(state.seq, 1);
    assert.ok(state.bytes.byteLength > 2);
    assert.deepEqual(await session.manage("compact"), { seq: 1, bytes: new Uint8Array(0) });
    assert.equal((await store.load("doc")).snapshot?.seq, 1);
    assert.deepEqual(await session.manage("delete"), { seq: 0, bytes: new Uint8Array(0) });
    assert.equal(session.closed, true);
    assert.equal((await store.load("doc")).snapshot, null, "its storage is gone");
  });

  it("no file in src/router imports yjs: the Yjs work is the session's", () => {
    const dir = new URL("../../src/router/", import.meta.url);
    for (const name of readdirSync(dir)) {
      const source = readFileSync(new URL(name, dir), "utf8");
      assert.doesNotMatch(source, /from "yjs"/, `src/router/${name} imports yjs`);
    }
  });
});
