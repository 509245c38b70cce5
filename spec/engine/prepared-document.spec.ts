import { strict as assert } from "node:assert";
import { join } from "node:path";
import * as Y from "yjs";
import { SqliteDocumentStore } from "../../src/index.js";
import { PreparedDocument } from "../../src/engine/prepared-document.js";
import { restoreDocument } from "../../src/engine/session-state.js";
import { insertUpdate } from "../support/engine.js";
import { tempDir } from "../support/temp.js";

/** Appends `texts` as one op each, as the owner of `epoch`, from a writer replica. */
async function appendTexts(
  store: SqliteDocumentStore,
  epoch: number,
  writer: Y.Doc,
  texts: readonly string[],
): Promise<void> {
  for (const text of texts) {
    await store.append("doc", epoch, [insertUpdate(writer, writer.getText("text").length, text)]);
  }
}

describe("PreparedDocument: a handoff's successor loads ahead, then catches up under its own epoch", () => {
  let store: SqliteDocumentStore;
  beforeEach(() => {
    store = new SqliteDocumentStore({ path: join(tempDir(), "store.sqlite") });
  });
  afterEach(async () => {
    await store.close();
  });

  it("applies the ops the old owner stored after the copy was loaded, and nothing twice", async () => {
    const writer = new Y.Doc();
    const owner = await store.claimEpoch("doc");
    await appendTexts(store, owner, writer, ["a", "b"]);
    const prepared = await PreparedDocument.load("doc", store, owner);
    assert.equal(prepared.seq, 2);
    await appendTexts(store, owner, writer, ["c", "d"]); // the old owner still serves
    const successor = await store.claimEpoch("doc");
    assert.ok(successor > owner);
    const doc = prepared.catchUp(await store.load("doc"));
    assert.ok(doc, "the copy is handed over");
    assert.equal(doc.getText("text").toString(), "abcd");
    assert.equal(prepared.catchUp(await store.load("doc")), undefined, "a copy is handed over once");
    doc.destroy();
  });

  it("takes a snapshot written meanwhile (its ops trimmed) whole, and matches a full restore", async () => {
    const writer = new Y.Doc();
    const owner = await store.claimEpoch("doc");
    await appendTexts(store, owner, writer, ["a", "b"]);
    const prepared = await PreparedDocument.load("doc", store, owner);
    await appendTexts(store, owner, writer, ["c", "d"]);
    // A compaction between the load and the takeover: the snapshot covers seq 4
    // and ops 3–4, which the copy lacks, are trimmed from the log.
    await store.saveSnapshot("doc", owner, Y.encodeStateAsUpdate(writer), 4);
    await appendTexts(store, owner, writer, ["e", "f"]);
    await store.claimEpoch("doc");
    const stored = await store.load("doc");
    assert.equal(stored.snapshot?.seq, 4);
    assert.deepEqual(
      stored.ops.map((op) => op.seq),
      [5, 6],
      "the ops the snapshot covers are trimmed",
    );
    const doc = prepared.catchUp(stored);
    assert.ok(doc);
    assert.equal(doc.getText("text").toString(), writer.getText("text").toString());
    assert.deepEqual(Y.encodeStateVector(doc), Y.encodeStateVector(restoreDocument("doc", stored)));
    doc.destroy();
  });

  it("is not used when storage holds what another owner wrote after it (deleted and re-created meanwhile)", async () => {
    const writer = new Y.Doc();
    const owner = await store.claimEpoch("doc");
    await appendTexts(store, owner, writer, ["a", "b", "c"]);
    const prepared = await PreparedDocument.load("doc", store, owner);
    await store.delete("doc");
    const again = await store.claimEpoch("doc");
    await appendTexts(store, again, new Y.Doc(), ["x"]);
    assert.equal(prepared.catchUp(await store.load("doc")), undefined);
  });

  it("is not used when storage holds less than the copy (deleted, nothing new)", async () => {
    const owner = await store.claimEpoch("doc");
    await appendTexts(store, owner, new Y.Doc(), ["a", "b"]);
    const prepared = await PreparedDocument.load("doc", store, owner);
    await store.delete("doc");
    assert.equal(prepared.catchUp(await store.load("doc")), undefined);
  });
});
