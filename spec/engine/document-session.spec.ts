import { strict as assert } from "node:assert";
import * as Y from "yjs";
import { ErrorCodes, MemoryDocumentStore, isOpStreamError, type Origin } from "../../src/index.js";
import { eventually } from "../support/eventually.js";
import { GatedStore, RecordingPeer, insertUpdate, openSession } from "../support/engine.js";
import { sessionText } from "../support/session.js";

const from = (peerId: string): Origin => ({ kind: "peer", peerId });

describe("DocumentSession", () => {
  it("serialises concurrent applies through one lock and stores what queued up as one op", async () => {
    const store = new GatedStore();
    const session = await openSession("doc", { store });
    const watcher = new RecordingPeer("watcher");
    const sender = new RecordingPeer("p0");
    session.addPeer(watcher);
    session.addPeer(sender);
    const source = new Y.Doc();
    const updates = Array.from({ length: 50 }, (_, i) => insertUpdate(source, i, "x"));
    store.closeGate();
    const results = updates.map((update, i) => session.apply(update, from(`p${i % 5}`)));
    // Let the first append start and the rest queue up behind it.
    await eventually(() => assert.equal(store.batches.length, 1));
    store.release();
    const seqs = await Promise.all(results);
    assert.deepEqual(
      seqs,
      [1, ...Array.from({ length: 49 }, () => 2)],
      "the updates queued behind the lock are acknowledged with the seq of their one op",
    );
    assert.equal(store.maxInFlight, 1, "appends never overlap");
    assert.deepEqual(store.batches, [1, 1], "one op per batch");
    const replay = new Y.Doc();
    for (const op of await store.readOps("doc", 0)) Y.applyUpdate(replay, op.update);
    assert.equal(replay.getText("text").toString(), "x".repeat(50), "the stored ops hold every update");
    assert.equal(watcher.updates.length, 2, "one frame per op");
    assert.equal(watcher.doc.getText("text").toString(), "x".repeat(50));
    assert.equal(sender.updates.length, 1, "its own first update is not echoed; the mixed batch is");
    Y.applyUpdate(sender.doc, updates[0]!); // what p0 itself sent first
    assert.equal(sender.doc.getText("text").toString(), "x".repeat(50));
    assert.equal(await sessionText(session), "x".repeat(50));
    await session.close();
  });

  it("does not echo a batch to its sender when it is the batch's only contributor", async () => {
    const store = new GatedStore();
    const session = await openSession("doc", { store });
    const writer = new RecordingPeer("writer");
    const watcher = new RecordingPeer("watcher");
    session.addPeer(writer);
    session.addPeer(watcher);
    const source = new Y.Doc();
    store.closeGate();
    const results = Array.from({ length: 10 }, (_, i) =>
      session.apply(insertUpdate(source, i, "y"), from("writer")),
    );
    await eventually(() => assert.equal(store.batches.length, 1));
    store.release();
    await Promise.all(results);
    assert.deepEqual(store.batches, [1, 1]);
    assert.equal(writer.updates.length, 0, "never echoed to its only sender");
    assert.equal(watcher.doc.getText("text").toString(), "y".repeat(10));
    await session.close();
  });

  it("neither stores nor broadcasts a no-op update, but stores a delete-only update", async () => {
    const store = new MemoryDocumentStore();
    const session = await openSession("doc", { store });
    const other = new RecordingPeer("other");
    session.addPeer(other);
    const source = new Y.Doc();
    const insert = insertUpdate(source, 0, "abc");
    assert.equal(await session.apply(insert, from("a")), 1);
    assert.equal(await session.apply(insert, from("a")), null, "a duplicate is a no-op");
    assert.equal(
      await session.apply(Y.encodeStateAsUpdate(source), from("b")),
      null,
      "a full-state resend is a no-op",
    );
    const deletes: Uint8Array[] = [];
    source.on("update", (u: Uint8Array) => deletes.push(u));
    source.getText("text").delete(0, 1);
    assert.equal(
      await session.apply(deletes[0]!, from("a")),
      2,
      "a deletion changes no state vector but is not a no-op",
    );
    assert.deepEqual(
      (await store.readOps("doc", 0)).map((op) => op.seq),
      [1, 2],
    );
    assert.equal(other.updates.length, 2, "only the two real changes were broadcast");
    assert.equal(other.doc.getText("text").toString(), "bc");
    await session.close();
  });

  it("fans out to every peer but the update's origin", async () => {
    const session = await openSession("doc");
    const a = new RecordingPeer("a");
    const b = new RecordingPeer("b");
    session.addPeer(a);
    session.addPeer(b);
    await session.apply(insertUpdate(new Y.Doc(), 0, "hi"), from("a"));
    assert.equal(a.updates.length, 0, "never echoed to its sender");
    assert.equal(b.doc.getText("text").toString(), "hi");
    await session.close();
  });

  it("broadcasts and answers sync only after the append is durable", async () => {
    const store = new GatedStore();
    const session = await openSession("doc", { store });
    const watcher = new RecordingPeer("watcher");
    session.addPeer(watcher);
    store.closeGate();
    const applied = session.apply(insertUpdate(new Y.Doc(), 0, "durable"), from("writer"));
    let answered: Uint8Array | undefined;
    const reply = session.syncStep1(new Uint8Array([0])).then((u) => (answered = u));
    await eventually(() => assert.equal(store.batches.length, 1));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(watcher.updates.length, 0, "nothing broadcast before the append resolved");
    assert.equal(answered, undefined, "no sync reply exposes a pending update");
    store.release();
    await Promise.all([applied, reply]);
    assert.equal(watcher.doc.getText("text").toString(), "durable");
    const fresh = new Y.Doc();
    Y.applyUpdate(fresh, answered!);
    assert.equal(fresh.getText("text").toString(), "durable");
    await session.close();
  });

  it("rejects an update Yjs cannot apply without harming the document", async () => {
    const session = await openSession("doc");
    await session.apply(insertUpdate(new Y.Doc(), 0, "ok"), from("a"));
    await assert.rejects(
      session.apply(new Uint8Array([1, 2, 3, 200, 200, 200]), from("bad")),
      (error: unknown) => isOpStreamError(error, ErrorCodes.INVALID_UPDATE),
    );
    assert.equal(await session.apply(insertUpdate(new Y.Doc(), 0, "!"), from("a")), 2);
    await session.close();
  });

  it("runs validators and rejects what they refuse", async () => {
    const session = await openSession("doc", {
      validators: [
        (update) => {
          if (update.byteLength > 100) throw new Error("too large");
        },
      ],
    });
    const big = insertUpdate(new Y.Doc(), 0, "x".repeat(200));
    await assert.rejects(session.apply(big, from("a")), (error: unknown) =>
      isOpStreamError(error, ErrorCodes.UPDATE_REJECTED),
    );
    assert.equal(await sessionText(session), "");
    assert.equal(await session.apply(insertUpdate(new Y.Doc(), 0, "small"), from("a")), 1);
    await session.close();
  });

  it("seeds a brand-new document durably, and never seeds an existing one", async () => {
    const store = new MemoryDocumentStore();
    let seeded = 0;
    const seeder = ({ doc }: { doc: Y.Doc }) => {
      seeded += 1;
      doc.getText("text").insert(0, "Welcome");
    };
    const first = await openSession("doc", { store, seeder });
    assert.equal(await sessionText(first), "Welcome");
    assert.equal((await store.readOps("doc", 0)).length, 1, "the seed is in the log before anyone joins");
    await first.close();
    const second = await openSession("doc", { store, seeder });
    assert.equal(await sessionText(second), "Welcome");
    assert.equal(seeded, 1);
    await second.close();
  });

  it("steps down when fenced: rejects the write and disconnects peers with a retryable reason", async () => {
    const store = new MemoryDocumentStore();
    const session = await openSession("doc", { store });
    const peer = new RecordingPeer("p");
    session.addPeer(peer);
    await store.claimEpoch("doc"); // another owner took over
    await assert.rejects(session.apply(insertUpdate(new Y.Doc(), 0, "late"), from("p")), (error: unknown) =>
      isOpStreamError(error, ErrorCodes.FENCED),
    );
    assert.deepEqual(peer.disconnects, ["step-down"]);
    assert.equal(session.closed, true);
    assert.deepEqual(await store.readOps("doc", 0), []);
    await assert.rejects(session.apply(insertUpdate(new Y.Doc(), 0, "x"), from("p")), (error: unknown) =>
      isOpStreamError(error, ErrorCodes.SESSION_CLOSED),
    );
  });

  it("loads from the latest snapshot plus the ops after it", async () => {
    const store = new MemoryDocumentStore();
    const session = await openSession("doc", { store });
    const source = new Y.Doc();
    await session.apply(insertUpdate(source, 0, "snap"), from("a"));
    await session.snapshot();
    await session.apply(insertUpdate(source, 4, "+op"), from("a"));
    await session.close("step-down"); // no final snapshot: the op stays in the log
    const loaded = await store.load("doc");
    assert.equal(loaded.snapshot?.seq, 1);
    assert.equal(loaded.ops.length, 1);
    const reopened = await openSession("doc", { store });
    assert.equal(await sessionText(reopened), "snap+op");
    assert.equal(reopened.lastSeq, 2);
    await reopened.close();
  });
});
