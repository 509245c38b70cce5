import { install, type Clock } from "@sinonjs/fake-timers";
import { strict as assert } from "node:assert";
import * as Y from "yjs";
import { HybridSnapshotPolicy, MemoryDocumentStore } from "../../src/index.js";
import type { DocumentSession } from "../../src/engine/document-session.js";
import { insertUpdate, openSession } from "../support/engine.js";

describe("HybridSnapshotPolicy", () => {
  it("is due after maxOps ops, counting each document separately", () => {
    const policy = new HybridSnapshotPolicy({ maxOps: 3 });
    assert.equal(policy.recordOps("a", 2, 0), false);
    assert.equal(policy.recordOps("b", 2, 0), false);
    assert.equal(policy.recordOps("a", 1, 0), true);
    assert.equal(policy.recordOps("b", 0, 0), false);
    policy.recordSnapshot("a");
    assert.equal(policy.msUntilDue("a", 0), null, "nothing pending after a snapshot");
    assert.equal(policy.msUntilDue("b", 1000), 300_000 - 1000, "the 5 min clock starts at b's first op");
  });

  it("waits, past maxOps, until the log weighs logRatio of the last snapshot (each op its bytes + OP_WEIGHT_BYTES)", () => {
    const policy = new HybridSnapshotPolicy({ maxOps: 3, logRatio: 1 });
    policy.recordSnapshot("big", 0, 10_000);
    assert.equal(policy.recordOps("big", 3, 0, 300), false, "3 ops weigh 300 + 3 × 256 = 1,068 bytes");
    assert.equal(policy.recordOps("big", 20, 0, 3_000), false, "23 ops weigh 9,188");
    assert.equal(policy.recordOps("big", 1, 0, 600), true, "24 ops weigh 10,044: as much as the snapshot");
    policy.recordSnapshot("big", 0, 20_000);
    assert.equal(policy.recordOps("big", 30, 0, 3_000), false, "the next one waits for 20,000 bytes of log");
    assert.equal(policy.msUntilDue("big", 0), 300_000, "the time limit still applies");
    policy.forget("big");
    assert.equal(policy.recordOps("big", 3, 0, 0), true, "a forgotten document has no snapshot size");
    assert.equal(new HybridSnapshotPolicy({ maxOps: 3, logRatio: 0 }).recordOps("x", 3, 0, 0), true);
    const plain = new HybridSnapshotPolicy({ maxOps: 3 });
    plain.recordSnapshot("y", 0, 1_000_000);
    assert.equal(plain.recordOps("y", 3, 0, 10), false, "logRatio defaults to 1");
  });

  describe("driving sessions (fake timers)", () => {
    let clock: Clock;
    const sessions: DocumentSession[] = [];
    beforeEach(() => {
      clock = install({
        toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "Date"],
      });
    });
    afterEach(async () => {
      clock.uninstall();
      await Promise.all(sessions.splice(0).map((s) => s.close("step-down")));
    });

    it("snapshots one document at 100 ops and the other after 5 minutes", async () => {
      const store = new MemoryDocumentStore();
      const snapshotPolicy = new HybridSnapshotPolicy();
      const busy = await openSession("busy", { store, snapshotPolicy });
      const quiet = await openSession("quiet", { store, snapshotPolicy });
      sessions.push(busy, quiet);
      const busySource = new Y.Doc();
      const quietSource = new Y.Doc();
      for (let i = 0; i < 99; i++) await busy.apply(insertUpdate(busySource, i, "b"), { kind: "server" });
      for (let i = 0; i < 60; i++) await quiet.apply(insertUpdate(quietSource, i, "q"), { kind: "server" });
      assert.equal(await store.loadSnapshot("busy"), null, "99 ops: not yet");
      await busy.apply(insertUpdate(busySource, 99, "b"), { kind: "server" });
      await busy.read(() => undefined); // the snapshot is queued behind the 100th op
      assert.equal((await store.loadSnapshot("busy"))?.seq, 100, "the 100th op triggers a snapshot");
      assert.deepEqual(await store.readOps("busy", 0), [], "and trims the log");
      assert.equal(
        await store.loadSnapshot("quiet"),
        null,
        "the other document's 60 ops do not count towards it",
      );

      await clock.tickAsync(299_000);
      assert.equal(await store.loadSnapshot("quiet"), null, "not before 5 minutes");
      await clock.tickAsync(1_000);
      await quiet.read(() => undefined);
      assert.equal((await store.loadSnapshot("quiet"))?.seq, 60, "5 minutes after its first op");
      const rebuilt = new Y.Doc();
      Y.applyUpdate(rebuilt, (await store.loadSnapshot("quiet"))!.state);
      assert.equal(rebuilt.getText("text").toString(), "q".repeat(60));
    });

    it("snapshots a large document only once the log weighs as much as its snapshot, also after a reload", async () => {
      const store = new MemoryDocumentStore();
      const snapshotPolicy = new HybridSnapshotPolicy();
      let session = await openSession("large", { store, snapshotPolicy });
      const source = new Y.Doc();
      let length = 0;
      const edit = async (value: string): Promise<void> => {
        await session.apply(insertUpdate(source, length, value), { kind: "server" });
        length += value.length;
      };
      await edit("x".repeat(200_000));
      for (let i = 1; i < 100; i++) await edit("s");
      await session.read(() => undefined);
      const first = await store.loadSnapshot("large");
      assert.equal(first?.seq, 100, "no snapshot yet: the 100th op makes one");
      const snapshotBytes = first.state.byteLength;
      assert.ok(snapshotBytes > 200_000);

      // Small ops weigh ~20 + 256 bytes each: ~725 of them weigh as much as the snapshot.
      for (let i = 0; i < 600; i++) await edit("s");
      await session.read(() => undefined);
      assert.equal((await store.loadSnapshot("large"))?.seq, 100, "600 more ops do not outweigh it");

      await session.close("step-down"); // no final snapshot: the log stays
      session = await openSession("large", { store, snapshotPolicy });
      sessions.push(session);
      for (let i = 0; i < 100; i++) await edit("s");
      await session.read(() => undefined);
      assert.equal(
        (await store.loadSnapshot("large"))?.seq,
        100,
        "the reloaded session knows the snapshot's size",
      );
      for (let i = 0; i < 100; i++) await edit("s");
      await session.read(() => undefined);
      const second = await store.loadSnapshot("large");
      assert.ok(second && second.seq > 800, `once the log outweighs the snapshot (seq ${second?.seq})`);
      const rebuilt = new Y.Doc();
      Y.applyUpdate(rebuilt, second.state);
      for (const op of await store.readOps("large", second.seq)) Y.applyUpdate(rebuilt, op.update);
      assert.equal(rebuilt.getText("text").length, length);
    });
  });
});
