import { strict as assert } from "node:assert";
import * as Y from "yjs";
import {
  ErrorCodes,
  isOpStreamError,
  type DocumentStore,
  type NewVersion,
  type VersionInfo,
} from "../../src/index.js";
import { textUpdate } from "./store.contract.js";
import { newVersion } from "../support/versions.js";

/** The store under test, as storeContract holds it (a reopen replaces it). */
export interface VersionContractContext {
  store(): DocumentStore;
  /** Closes the store and opens the same data again (a restart), when the backend is persistent. */
  reopen?: () => Promise<void>;
}

async function assertFenced(promise: Promise<unknown>): Promise<void> {
  await assert.rejects(promise, (error: unknown) => isOpStreamError(error, ErrorCodes.FENCED));
}

/** The text a version's state holds. */
function textOf(state: Uint8Array): string {
  const doc = new Y.Doc();
  Y.applyUpdate(doc, state);
  return doc.getText("text").toString();
}

/** The client ids of `doc`'s state vector, ascending (what a history policy records). */
function clientsOf(doc: Y.Doc): number[] {
  return [...Y.decodeStateVector(Y.encodeStateVector(doc)).keys()].sort((a, b) => a - b);
}

/** An automatic version of `doc` at `seq`. */
function versionOf(doc: Y.Doc, seq: number, fields: Partial<NewVersion> = {}): NewVersion {
  return {
    ...newVersion(Y.encodeStateAsUpdate(doc), {
      seq,
      time: 1_767_225_600_000 + seq,
      clients: clientsOf(doc),
    }),
    ...fields,
  };
}

/** `version`'s description as the store should give it back. */
function infoOf(version: NewVersion, id: number, epoch: number): VersionInfo {
  const { state, ...fields } = version;
  return { ...fields, id, epoch, bytes: state.byteLength };
}

const ids = (infos: readonly VersionInfo[]): number[] => infos.map((info) => info.id);

/**
 * The version part (document history) of the DocumentStore contract; called by
 * storeContract inside its describe, so it runs against every backend.
 */
export function versionContract(context: VersionContractContext): void {
  const store = (): DocumentStore => context.store();

  describe("versions", () => {
    it("saves, lists and loads a version with every field, its state byte for byte", async () => {
      const epoch = await store().claimEpoch("doc");
      const source = new Y.Doc();
      await store().append("doc", epoch, [textUpdate(source, 0, "hello")]);
      const named = versionOf(source, 1, { kind: "named", name: 'Draft ✓ "1"', authors: ["alice", "p:7"] });
      await store().append("doc", epoch, [textUpdate(source, 5, " world")]);
      const restored = versionOf(source, 2, { kind: "restore", name: "back", authors: ["bob"] });

      // The state as a view into a larger buffer, as a frame's bytes often are.
      const padded = new Uint8Array(named.state.byteLength + 8).fill(0xff);
      padded.set(named.state, 4);
      const view = padded.subarray(4, 4 + named.state.byteLength);
      const first = await store().saveVersion("doc", epoch, { ...named, state: view });
      assert.ok(Number.isSafeInteger(first.id) && first.id > 0, `a positive integer id, got ${first.id}`);
      assert.deepEqual(first, infoOf(named, first.id, epoch));
      view.fill(0); // the caller reusing its buffer changes nothing stored
      const second = await store().saveVersion("doc", epoch, { ...restored, restoredFrom: first.id });
      assert.deepEqual(second, infoOf({ ...restored, restoredFrom: first.id }, second.id, epoch));

      assert.deepEqual(await store().listVersions("doc"), [first, second]);
      const loaded = await store().loadVersion("doc", first.id);
      assert.ok(loaded?.state instanceof Uint8Array);
      assert.deepEqual(loaded, { ...first, state: named.state });
      assert.equal(textOf(loaded.state), "hello");
      const loadedSecond = await store().loadVersion("doc", second.id);
      assert.deepEqual(loadedSecond, { ...second, state: restored.state });
      assert.equal(textOf(loadedSecond?.state ?? new Uint8Array()), "hello world");
    });

    it("gives ids that increase in save order and lists by id ascending; unknown ids and documents have none", async () => {
      const epoch = await store().claimEpoch("doc");
      const source = new Y.Doc();
      const saved: VersionInfo[] = [];
      for (let seq = 1; seq <= 4; seq++) {
        await store().append("doc", epoch, [textUpdate(source, seq - 1, String(seq))]);
        saved.push(await store().saveVersion("doc", epoch, versionOf(source, seq)));
      }
      for (let i = 1; i < saved.length; i++) {
        assert.ok((saved[i]?.id ?? 0) > (saved[i - 1]?.id ?? 0), `ids increase: ${ids(saved).join(", ")}`);
      }
      const listed = await store().listVersions("doc");
      assert.deepEqual(listed, saved);
      assert.deepEqual(
        listed.map((info) => info.seq),
        [1, 2, 3, 4],
      );
      const last = saved.at(-1)?.id ?? 0;
      assert.equal(await store().loadVersion("doc", last + 1000), null);
      assert.equal(await store().loadVersion("doc", 0), null);
      assert.deepEqual(await store().listVersions("never-created"), []);
      assert.equal(await store().loadVersion("never-created", saved[0]?.id ?? 1), null);
    });

    it("rejects a stale-epoch saveVersion and dropVersions with FENCED, and changes nothing", async () => {
      const stale = await store().claimEpoch("doc");
      const source = new Y.Doc();
      await store().append("doc", stale, [textUpdate(source, 0, "x")]);
      const kept = await store().saveVersion("doc", stale, versionOf(source, 1));
      const current = await store().claimEpoch("doc");
      await assertFenced(store().saveVersion("doc", stale, versionOf(source, 1, { kind: "named" })));
      await assertFenced(store().dropVersions("doc", stale, [kept.id]));
      await assertFenced(store().saveVersion("doc", current + 1, versionOf(source, 1)));
      await assertFenced(store().saveVersion("never-claimed", 1, versionOf(source, 1)));
      assert.deepEqual(await store().listVersions("doc"), [kept]);
      assert.deepEqual(await store().loadVersion("doc", kept.id), {
        ...kept,
        state: versionOf(source, 1).state,
      });
      assert.deepEqual(await store().listVersions("never-claimed"), []);
      const next = await store().saveVersion("doc", current, versionOf(source, 1));
      assert.ok(next.id > kept.id);
      assert.equal(next.epoch, current);
      await store().dropVersions("doc", current, [kept.id]);
      assert.deepEqual(await store().listVersions("doc"), [next]);
    });

    it("drops exactly the given ids, ignoring unknown ones", async () => {
      const epoch = await store().claimEpoch("doc");
      const source = new Y.Doc();
      const saved: VersionInfo[] = [];
      for (let seq = 1; seq <= 5; seq++) {
        await store().append("doc", epoch, [textUpdate(source, seq - 1, String(seq))]);
        saved.push(await store().saveVersion("doc", epoch, versionOf(source, seq)));
      }
      const [v1, v2, v3, v4, v5] = saved as [VersionInfo, VersionInfo, VersionInfo, VersionInfo, VersionInfo];
      await store().dropVersions("doc", epoch, [v4.id, v2.id, v5.id + 1000, v2.id]);
      assert.deepEqual(await store().listVersions("doc"), [v1, v3, v5]);
      assert.equal(await store().loadVersion("doc", v2.id), null);
      assert.equal(await store().loadVersion("doc", v4.id), null);
      assert.equal(textOf((await store().loadVersion("doc", v3.id))?.state ?? new Uint8Array()), "123");
      await store().dropVersions("doc", epoch, []);
      assert.deepEqual(await store().listVersions("doc"), [v1, v3, v5]);
      await store().dropVersions("doc", epoch, [v1.id, v3.id, v5.id]);
      assert.deepEqual(await store().listVersions("doc"), []);
    });

    it("keeps versions through compaction (a snapshot that trims every op)", async () => {
      const epoch = await store().claimEpoch("doc");
      const source = new Y.Doc();
      await store().append("doc", epoch, [textUpdate(source, 0, "ab")]);
      const early = await store().saveVersion("doc", epoch, versionOf(source, 1));
      await store().append("doc", epoch, [textUpdate(source, 2, "cd"), textUpdate(source, 4, "ef")]);
      const late = await store().saveVersion(
        "doc",
        epoch,
        versionOf(source, 3, { kind: "named", name: "n" }),
      );
      await store().saveSnapshot("doc", epoch, Y.encodeStateAsUpdate(source), 3);
      assert.deepEqual(await store().readOps("doc", 0), [], "every op was trimmed");
      assert.deepEqual(await store().listVersions("doc"), [early, late]);
      assert.equal(textOf((await store().loadVersion("doc", early.id))?.state ?? new Uint8Array()), "ab");
      assert.equal(textOf((await store().loadVersion("doc", late.id))?.state ?? new Uint8Array()), "abcdef");
    });

    it("delete removes a document's versions; re-created, it has none and gets higher ids", async () => {
      const epoch = await store().claimEpoch("doc");
      const otherEpoch = await store().claimEpoch("other");
      const source = new Y.Doc();
      await store().append("doc", epoch, [textUpdate(source, 0, "gone")]);
      const saved = [
        await store().saveVersion("doc", epoch, versionOf(source, 1)),
        await store().saveVersion("doc", epoch, versionOf(source, 1, { kind: "named", name: "keep?" })),
      ];
      const other = await store().saveVersion("other", otherEpoch, versionOf(source, 0));
      await store().delete("doc");
      assert.deepEqual(await store().listVersions("doc"), []);
      for (const info of saved) assert.equal(await store().loadVersion("doc", info.id), null);
      assert.deepEqual(await store().list(), ["other"], "versions do not make a document listed");
      assert.deepEqual(await store().listVersions("other"), [other], "other documents keep theirs");

      const recreated = await store().claimEpoch("doc");
      assert.deepEqual(await store().listVersions("doc"), []);
      const fresh = await store().saveVersion("doc", recreated, versionOf(new Y.Doc(), 0));
      const highest = Math.max(...ids(saved));
      assert.ok(fresh.id > highest, `id ${fresh.id} after a delete must be above ${highest}`);
      assert.deepEqual(await store().listVersions("doc"), [fresh]);
      await assertFenced(store().saveVersion("doc", epoch, versionOf(source, 1)));
    });

    it("keeps each document's versions apart", async () => {
      const epochA = await store().claimEpoch("a");
      const epochB = await store().claimEpoch("b");
      const docA = new Y.Doc();
      const docB = new Y.Doc();
      await store().append("a", epochA, [textUpdate(docA, 0, "A")]);
      await store().append("b", epochB, [textUpdate(docB, 0, "B")]);
      const a = [
        await store().saveVersion("a", epochA, versionOf(docA, 1)),
        await store().saveVersion("a", epochA, versionOf(docA, 1, { kind: "named", name: "a" })),
      ];
      const b = [await store().saveVersion("b", epochB, versionOf(docB, 1))];
      assert.deepEqual(await store().listVersions("a"), a);
      assert.deepEqual(await store().listVersions("b"), b);
      // Ids are unique per document: two documents may share one (the memory store's do).
      const onlyA = ids(a).filter((id) => !ids(b).includes(id));
      const onlyB = ids(b).filter((id) => !ids(a).includes(id));
      assert.ok(onlyA.length > 0);
      for (const id of onlyA) assert.equal(await store().loadVersion("b", id), null);
      for (const id of onlyB) assert.equal(await store().loadVersion("a", id), null);
      await store().dropVersions("b", epochB, onlyA);
      await store().dropVersions("a", epochA, onlyB);
      assert.deepEqual(await store().listVersions("a"), a);
      assert.deepEqual(await store().listVersions("b"), b);
      for (const info of a) {
        assert.equal(textOf((await store().loadVersion("a", info.id))?.state ?? new Uint8Array()), "A");
      }
      assert.equal(textOf((await store().loadVersion("b", b[0]?.id ?? 0))?.state ?? new Uint8Array()), "B");
    });

    const { reopen } = context;
    if (reopen) {
      it("keeps versions across a reopen (restart), and new ids stay above them", async () => {
        const epoch = await store().claimEpoch("doc");
        const source = new Y.Doc();
        await store().append("doc", epoch, [textUpdate(source, 0, "persist")]);
        const version = versionOf(source, 1, { kind: "named", name: "v1", authors: ["carol"] });
        const saved = await store().saveVersion("doc", epoch, version);
        await reopen();
        assert.deepEqual(await store().listVersions("doc"), [saved]);
        assert.deepEqual(await store().loadVersion("doc", saved.id), { ...saved, state: version.state });
        const next = await store().claimEpoch("doc");
        const later = await store().saveVersion("doc", next, versionOf(source, 1));
        assert.ok(later.id > saved.id);
      });
    }
  });
}
