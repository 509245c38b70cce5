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
  });
});
