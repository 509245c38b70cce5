import { strict as assert } from "node:assert";
import * as Y from "yjs";
import { ErrorCodes, isOpStreamError, type DocumentStore } from "../../src/index.js";
import { versionContract } from "./version.contract.js";

/** Creates a fresh, empty store; `cleanup` runs after each test. */
export interface StoreFactory {
  create(): Promise<DocumentStore>;
  /** Reopens the same underlying data (a restart), when the backend is persistent. */
  reopen?(store: DocumentStore): Promise<DocumentStore>;
}

/** The update of inserting `value` at `index` of `doc`'s text "text". */
export function textUpdate(doc: Y.Doc, index: number, value: string): Uint8Array {
  let captured: Uint8Array | undefined;
  const listener = (update: Uint8Array) => (captured = update);
  doc.on("update", listener);
  doc.getText("text").insert(index, value);
  doc.off("update", listener);
  if (!captured) throw new Error("no update produced");
  return captured;
}

async function assertFenced(promise: Promise<unknown>): Promise<void> {
  await assert.rejects(promise, (error: unknown) => isOpStreamError(error, ErrorCodes.FENCED));
}

async function assertNotFound(promise: Promise<unknown>): Promise<void> {
  await assert.rejects(promise, (error: unknown) => isOpStreamError(error, ErrorCodes.DOCUMENT_NOT_FOUND));
}

function rebuild(snapshot: Uint8Array | undefined, ops: readonly { update: Uint8Array }[]): string {
  const doc = new Y.Doc();
  if (snapshot) Y.applyUpdate(doc, snapshot);
  for (const op of ops) Y.applyUpdate(doc, op.update);
  return doc.getText("text").toString();
}

/**
 * The behaviour every DocumentStore must have. Run once per backend with real
 * storage (spec/storage/*.spec.ts).
 */
export function storeContract(name: string, factory: StoreFactory): void {
  describe(`DocumentStore contract: ${name}`, () => {
    let store: DocumentStore;
    beforeEach(async () => (store = await factory.create()));
    afterEach(() => store.close());

    it("claims strictly increasing epochs per document", async () => {
      assert.equal(await store.claimEpoch("a"), 1);
      assert.equal(await store.claimEpoch("a"), 2);
      assert.equal(await store.claimEpoch("b"), 1);
    });

    it("claims at least `atLeast` when it is above the next epoch (a restored backup), else the next one", async () => {
      assert.equal(await store.claimEpoch("a", { atLeast: 7 }), 7);
      assert.equal(await store.claimEpoch("a", { atLeast: 3 }), 8);
      assert.equal(await store.claimEpoch("a"), 9);
      assert.equal(await store.claimEpoch("new", { atLeast: 5 }), 5);
      const epoch = await store.claimEpoch("fenced");
      await store.claimEpoch("fenced", { atLeast: epoch + 10 });
      await assert.rejects(store.append("fenced", epoch, [new Uint8Array([0, 0])]), (error: unknown) =>
        isOpStreamError(error, ErrorCodes.FENCED),
      );
    });

    it("appends batches with increasing sequence numbers and reads them back in order", async () => {
      const epoch = await store.claimEpoch("doc");
      const source = new Y.Doc();
      const u1 = textUpdate(source, 0, "a");
      const u2 = textUpdate(source, 1, "b");
      const u3 = textUpdate(source, 2, "c");
      assert.deepEqual(await store.append("doc", epoch, [u1, u2]), [1, 2]);
      assert.deepEqual(await store.append("doc", epoch, [u3]), [3]);
      const ops = await store.readOps("doc", 0);
      assert.deepEqual(
        ops.map((op) => op.seq),
        [1, 2, 3],
      );
      assert.deepEqual(ops[2]?.update, u3);
      assert.equal(ops[0]?.epoch, epoch);
      assert.deepEqual(
        (await store.readOps("doc", 2)).map((op) => op.seq),
        [3],
      );
    });

    it("rejects a stale-epoch append, snapshot and trim with FENCED, and changes nothing", async () => {
      const stale = await store.claimEpoch("doc");
      const source = new Y.Doc();
      await store.append("doc", stale, [textUpdate(source, 0, "x")]);
      const current = await store.claimEpoch("doc");
      await assertFenced(store.append("doc", stale, [textUpdate(source, 1, "y")]));
      await assertFenced(store.saveSnapshot("doc", stale, Y.encodeStateAsUpdate(source), 1));
      assert.deepEqual(
        (await store.readOps("doc", 0)).map((op) => op.seq),
        [1],
        "the fenced snapshot must not have trimmed the log",
      );
      assert.equal(await store.loadSnapshot("doc"), null);
      assert.deepEqual(await store.append("doc", current, [textUpdate(source, 1, "z")]), [2]);
    });

    it("rejects writes with an epoch that was never claimed", async () => {
      await store.claimEpoch("doc");
      await assertFenced(store.append("doc", 7, [new Uint8Array([0, 0])]));
      await assertFenced(store.append("never-claimed", 1, [new Uint8Array([0, 0])]));
    });

    it("snapshot + trim then reload equals the state before, and ops after the snapshot are replayed", async () => {
      const epoch = await store.claimEpoch("doc");
      const source = new Y.Doc();
      for (let i = 0; i < 10; i++) await store.append("doc", epoch, [textUpdate(source, i, String(i))]);
      await store.saveSnapshot("doc", epoch, Y.encodeStateAsUpdate(source), 10);
      assert.deepEqual(await store.readOps("doc", 0), [], "ops up to the snapshot are trimmed");
      await store.append("doc", epoch, [textUpdate(source, 10, "A"), textUpdate(source, 11, "B")]);
      const loaded = await store.load("doc");
      assert.equal(loaded.snapshot?.seq, 10);
      assert.deepEqual(
        loaded.ops.map((op) => op.seq),
        [11, 12],
      );
      assert.equal(rebuild(loaded.snapshot?.state, loaded.ops), "0123456789AB");
      assert.equal(rebuild(loaded.snapshot?.state, loaded.ops), source.getText("text").toString());
    });

    it("a snapshot up to an earlier seq keeps the later ops", async () => {
      const epoch = await store.claimEpoch("doc");
      const source = new Y.Doc();
      await store.append("doc", epoch, [textUpdate(source, 0, "a")]);
      const partial = Y.encodeStateAsUpdate(source);
      await store.append("doc", epoch, [textUpdate(source, 1, "b")]);
      await store.saveSnapshot("doc", epoch, partial, 1);
      const loaded = await store.load("doc");
      assert.deepEqual(
        loaded.ops.map((op) => op.seq),
        [2],
      );
      assert.equal(rebuild(loaded.snapshot?.state, loaded.ops), "ab");
    });

    it("trims only through trimThrough (a consumer's offset), while loading still starts at the snapshot", async () => {
      const epoch = await store.claimEpoch("doc");
      const source = new Y.Doc();
      for (let i = 0; i < 6; i++) await store.append("doc", epoch, [textUpdate(source, i, String(i))]);
      await store.saveSnapshot("doc", epoch, Y.encodeStateAsUpdate(source), 6, { trimThrough: 3 });
      assert.deepEqual(
        (await store.readOps("doc", 0)).map((op) => op.seq),
        [4, 5, 6],
        "ops the slowest consumer has not committed stay",
      );
      const loaded = await store.load("doc");
      assert.equal(loaded.snapshot?.seq, 6);
      assert.deepEqual(loaded.ops, [], "a load never replays what the snapshot holds");
      assert.equal(rebuild(loaded.snapshot?.state, loaded.ops), "012345");
      await store.saveSnapshot("doc", epoch, Y.encodeStateAsUpdate(source), 6, { trimThrough: 99 });
      assert.deepEqual(
        await store.readOps("doc", 0),
        [],
        "never trims past the snapshot, then trims up to it",
      );
    });

    it("commits consumer offsets per document and consumer, never backwards, fenced; delete drops them", async () => {
      const stale = await store.claimEpoch("doc");
      const epoch = await store.claimEpoch("doc");
      assert.deepEqual(await store.readOffsets("doc"), new Map());
      await store.commitOffset("doc", epoch, "index", 5);
      await store.commitOffset("doc", epoch, "mail", 2);
      await store.commitOffset("doc", epoch, "index", 3);
      await assertFenced(store.commitOffset("doc", stale, "index", 9));
      assert.deepEqual(
        await store.readOffsets("doc"),
        new Map([
          ["index", 5],
          ["mail", 2],
        ]),
      );
      assert.deepEqual(await store.readOffsets("other"), new Map());
      await store.delete("doc");
      assert.deepEqual(await store.readOffsets("doc"), new Map());
    });

    it("keeps sequence order under concurrent appends", async () => {
      const epoch = await store.claimEpoch("doc");
      const source = new Y.Doc();
      const updates = Array.from({ length: 50 }, (_, i) => textUpdate(source, i, "x"));
      const results = await Promise.all(updates.map((update) => store.append("doc", epoch, [update])));
      const seqs = results.flat();
      assert.deepEqual(
        [...seqs].sort((a, b) => a - b),
        Array.from({ length: 50 }, (_, i) => i + 1),
        "every append got a distinct seq",
      );
      const ops = await store.readOps("doc", 0);
      assert.deepEqual(
        ops.map((op) => op.seq),
        Array.from({ length: 50 }, (_, i) => i + 1),
      );
      ops.forEach((op) => assert.deepEqual(op.update, updates[seqs.indexOf(op.seq)]));
    });

    it("lists documents and deletes them; a deleted document keeps fencing its old epochs", async () => {
      const epochA = await store.claimEpoch("a");
      await store.claimEpoch("b");
      await store.append("a", epochA, [textUpdate(new Y.Doc(), 0, "a")]);
      assert.deepEqual(await store.list(), ["a", "b"]);
      await store.delete("a");
      await store.delete("a");
      assert.deepEqual(await store.list(), ["b"]);
      assert.deepEqual(await store.load("a"), { snapshot: null, ops: [] });
      const epochA2 = await store.claimEpoch("a");
      assert.ok(epochA2 > epochA, "epochs keep increasing after a delete");
      await assertFenced(store.append("a", epochA, [new Uint8Array([0, 0])]));
    });

    it("a mustExist claim of a document never created throws DOCUMENT_NOT_FOUND and writes nothing", async () => {
      await assertNotFound(store.claimEpoch("ghost", { mustExist: true }));
      await assertNotFound(store.claimEpoch("ghost", { mustExist: true, atLeast: 5 }));
      assert.deepEqual(await store.list(), [], "no record was created");
      assert.deepEqual(await store.load("ghost"), { snapshot: null, ops: [] });
      assert.equal(await store.claimEpoch("ghost"), 1, "the refused claims took no epoch");
    });

    it("a mustExist claim of an existing document (even one without ops) claims the next epoch", async () => {
      const created = await store.claimEpoch("empty");
      assert.equal(await store.claimEpoch("empty", { mustExist: true }), created + 1);
      assert.equal(await store.claimEpoch("empty", { mustExist: true, atLeast: created + 10 }), created + 10);
      await assertFenced(store.append("empty", created, [new Uint8Array([0, 0])]));
      assert.deepEqual(await store.list(), ["empty"]);
    });

    it("a mustExist claim does not resurrect a deleted document, nor move its epoch", async () => {
      const epoch = await store.claimEpoch("gone");
      await store.append("gone", epoch, [textUpdate(new Y.Doc(), 0, "content")]);
      await store.delete("gone");
      await assertNotFound(store.claimEpoch("gone", { mustExist: true }));
      assert.deepEqual(await store.list(), [], "still deleted");
      assert.deepEqual(await store.load("gone"), { snapshot: null, ops: [] });
      assert.equal(await store.claimEpoch("gone"), epoch + 1, "a writer re-creates it with the next epoch");
      assert.deepEqual(await store.list(), ["gone"]);
    });

    it("answers ping", async () => {
      await store.ping();
    });

    if (factory.reopen) {
      const reopen = factory.reopen.bind(factory);
      it("keeps everything across a reopen (restart)", async () => {
        const epoch = await store.claimEpoch("doc");
        const source = new Y.Doc();
        await store.append("doc", epoch, [textUpdate(source, 0, "persist")]);
        await store.saveSnapshot("doc", epoch, Y.encodeStateAsUpdate(source), 1);
        await store.append("doc", epoch, [textUpdate(source, 7, "ed")]);
        store = await reopen(store);
        const loaded = await store.load("doc");
        assert.equal(rebuild(loaded.snapshot?.state, loaded.ops), "persisted");
        assert.equal(await store.claimEpoch("doc"), epoch + 1);
      });
    }

    const reopenStore = factory.reopen?.bind(factory);
    versionContract({
      store: () => store,
      ...(reopenStore && {
        reopen: async () => {
          store = await reopenStore(store);
        },
      }),
    });
  });
}
