import { strict as assert } from "node:assert";
import * as Y from "yjs";
import {
  ErrorCodes,
  MemoryDocumentStore,
  OpStreamMetrics,
  ServiceCollection,
  isOpStreamError,
  type Origin,
} from "../../src/index.js";
import { RecordingPeer, insertUpdate, openSession } from "../support/engine.js";
import { sessionText } from "../support/session.js";

const from = (peerId: string): Origin => ({ kind: "peer", peerId });

/** A client whose first change the server never got: `later(text)` makes updates that depend on it. */
function gappedClient(): { missing: Uint8Array; later(text: string): Uint8Array } {
  const doc = new Y.Doc();
  const missing = insertUpdate(doc, 0, "seed;");
  return { missing, later: (text) => insertUpdate(doc, doc.getText("text").length, text) };
}

const overBudget = (error: unknown) => isOpStreamError(error, ErrorCodes.PENDING_BUDGET_EXCEEDED);

describe("DocumentSession: the pending-updates budget (sessions.maxPendingBytes)", () => {
  it("refuses the update that passes the budget and drops the pending updates; the rest carries on", async () => {
    const store = new MemoryDocumentStore();
    const metrics = new OpStreamMetrics();
    const session = await openSession("doc", { store, metrics, maxPendingBytes: 2000 });
    const watcher = new RecordingPeer("watcher");
    session.addPeer(watcher);
    const gapped = gappedClient();
    // Held back: in no op, and (PROTOCOL.md) acknowledged as a no-op.
    assert.equal(await session.apply(gapped.later("a".repeat(500)), from("mallory")), null);
    assert.ok(session.pendingBytes > 500 && session.pendingBytes <= 2000, String(session.pendingBytes));
    await assert.rejects(session.apply(gapped.later("b".repeat(2000)), from("mallory")), overBudget);
    assert.equal(session.pendingBytes, 0, "pending updates dropped");
    const rejected = await metrics.updatesRejected.get();
    assert.equal(rejected.values.find((v) => v.labels.reason === "pending-budget")?.value, 1);

    const honest = new Y.Doc();
    assert.equal(await session.apply(insertUpdate(honest, 0, "honest;"), from("alice")), 1);
    assert.equal(watcher.doc.getText("text").toString(), "honest;");
    // The dropped content is gone for good: its dependency no longer brings it back.
    assert.equal(await session.apply(gapped.missing, from("mallory")), 2);
    const text = (await sessionText(session)) ?? "";
    assert.ok(["seed;honest;", "honest;seed;"].includes(text), text);
    assert.equal(session.pendingBytes, 0);
    const replay = new Y.Doc();
    for (const op of await store.readOps("doc", 0)) Y.applyUpdate(replay, op.update);
    assert.equal(replay.getText("text").toString(), text, "the log holds nothing that was pending");
    await session.close();
  });

  it("an update that fills the gap integrates what was pending, which is then stored", async () => {
    const store = new MemoryDocumentStore();
    const session = await openSession("doc", { store, maxPendingBytes: 10_000 });
    const gapped = gappedClient();
    assert.equal(await session.apply(gapped.later("then;"), from("bob")), null);
    assert.equal(await session.apply(gapped.missing, from("bob")), 1);
    assert.equal(session.pendingBytes, 0);
    const replay = new Y.Doc();
    for (const op of await store.readOps("doc", 0)) Y.applyUpdate(replay, op.update);
    assert.equal(replay.getText("text").toString(), "seed;then;");
    await session.close();
  });

  it("with a budget of 0, any update that leaves something pending is refused", async () => {
    const session = await openSession("doc", { maxPendingBytes: 0 });
    await assert.rejects(session.apply(gappedClient().later("x"), from("p")), overBudget);
    assert.equal(session.pendingBytes, 0);
    await session.close();
  });

  it("the option is validated: a negative or non-numeric budget is an INVALID_OPTION", () => {
    for (const maxPendingBytes of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(
        () => new ServiceCollection().addOpStream({ sessions: { maxPendingBytes } }),
        (error: unknown) => isOpStreamError(error, ErrorCodes.INVALID_OPTION),
      );
    }
  });
});
