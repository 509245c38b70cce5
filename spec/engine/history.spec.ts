import { strict as assert } from "node:assert";
import * as Y from "yjs";
import {
  ErrorCodes,
  MemoryDocumentStore,
  type NewVersion,
  isOpStreamError,
  type Origin,
  type VersionInfo,
} from "../../src/index.js";
import { resolveHistoryOptions } from "../../src/engine/history/history-options.js";
import { revertUpdate } from "../../src/engine/history/restore.js";
import { versionsToDrop } from "../../src/engine/history/retention.js";
import { diffStates } from "../../src/engine/history/version-diff.js";
import { eventually } from "../support/eventually.js";
import { RecordingPeer, insertUpdate, openSession } from "../support/engine.js";
import { newVersion } from "../support/versions.js";
import { sessionText } from "../support/session.js";

const from = (peerId: string): Origin => ({ kind: "peer", peerId });
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const decode = (bytes: Uint8Array): unknown => JSON.parse(new TextDecoder().decode(bytes));
const encode = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));

function version(id: number, time: number, kind: VersionInfo["kind"] = "auto"): VersionInfo {
  return { id, time, kind, seq: id, epoch: 1, name: "", clients: [], authors: [], restoredFrom: 0, bytes: 1 };
}

/** A document with a text, an XML fragment and a map, changed by `edit`. */
function states(edit: (doc: Y.Doc) => void): { before: Uint8Array; after: Uint8Array; doc: Y.Doc } {
  const doc = new Y.Doc();
  doc.getText("text").insert(0, "hello world");
  const paragraph = new Y.XmlElement("paragraph");
  doc.getXmlFragment("prose").insert(0, [paragraph]);
  const words = new Y.XmlText();
  paragraph.insert(0, [words]);
  words.insert(0, "first paragraph");
  doc.getMap("meta").set("title", "A");
  const before = Y.encodeStateAsUpdate(doc);
  edit(doc);
  return { before, after: Y.encodeStateAsUpdate(doc), doc };
}

function contentOf(state: Uint8Array): { text: string; prose: string; meta: unknown } {
  const doc = new Y.Doc();
  Y.applyUpdate(doc, state);
  return {
    text: doc.getText("text").toString(),
    prose: doc.getXmlFragment("prose").toJSON(),
    meta: doc.getMap("meta").toJSON(),
  };
}

describe("History: retention", () => {
  const retention = resolveHistoryOptions(undefined)!.retention;
  const now = Date.UTC(2026, 11, 5, 12, 0, 0);

  it("keeps every automatic version younger than keepAllMs, and every named or restore version at any age", () => {
    const versions = [
      version(1, now - 400 * DAY, "named"),
      version(2, now - 300 * DAY, "before-restore"),
      version(3, now - 300 * DAY, "restore"),
      version(4, now - 23 * HOUR),
      version(5, now - 23 * HOUR + 1),
      version(6, now - 1000),
    ];
    assert.deepEqual(versionsToDrop(versions, now, retention), []);
  });

  it("thins to the latest automatic version of each hour, then of each day, and drops those older than dailyForMs", () => {
    const hourStart = Math.floor((now - 2 * DAY) / HOUR) * HOUR; // an hour 2 days ago: the hourly tier
    const dayStart = Math.floor((now - 10 * DAY) / DAY) * DAY; // a day 10 days ago: the daily tier
    const versions = [
      version(1, now - 31 * DAY), // older than 30 days: dropped
      version(2, dayStart + 1 * HOUR),
      version(3, dayStart + 5 * HOUR),
      version(4, dayStart + 20 * HOUR), // the day's latest: kept
      version(5, hourStart + 60_000),
      version(6, hourStart + 30 * 60_000), // the hour's latest: kept
      version(7, hourStart + HOUR + 60_000), // alone in the next hour: kept
      version(8, now - 60_000), // keep-all tier
      version(9, dayStart + 2 * HOUR, "named"), // never thinned
    ];
    assert.deepEqual(versionsToDrop(versions, now, retention), [1, 2, 3, 5]);
  });

  it("never drops the document's latest version, and with dailyForMs 0 keeps one a day forever", () => {
    assert.deepEqual(versionsToDrop([version(1, now - 365 * DAY)], now, retention), []);
    const forever = { ...retention, dailyForMs: 0 };
    const old = Math.floor((now - 365 * DAY) / DAY) * DAY;
    const versions = [version(1, old + HOUR), version(2, old + 2 * HOUR), version(3, now)];
    assert.deepEqual(versionsToDrop(versions, now, forever), [1]);
  });
});

describe("History: restore and diff of states", () => {
  it("restores text, XML and map content as new ops, and restoring the state before undoes it", () => {
    const { before, after, doc } = states((d) => {
      d.getText("text").delete(0, 6);
      d.getText("text").insert(5, "!");
      ((d.getXmlFragment("prose").get(0) as Y.XmlElement).get(0) as Y.XmlText).insert(5, " new");
      d.getXmlFragment("prose").insert(1, [new Y.XmlElement("heading")]);
      d.getMap("meta").set("title", "B");
      d.getArray("later").insert(0, [1]);
    });
    const restore = revertUpdate(after, before);
    assert.ok(restore);
    Y.applyUpdate(doc, restore);
    const restored = Y.encodeStateAsUpdate(doc);
    assert.deepEqual(contentOf(restored), contentOf(before));
    assert.deepEqual(doc.getArray("later").toJSON(), [], "a root created after the version is emptied");
    const back = revertUpdate(restored, after);
    assert.ok(back);
    Y.applyUpdate(doc, back);
    assert.deepEqual(contentOf(Y.encodeStateAsUpdate(doc)), contentOf(after));
    assert.equal(
      revertUpdate(Y.encodeStateAsUpdate(doc), Y.encodeStateAsUpdate(doc)),
      null,
      "nothing to change",
    );
  });

  it("shows text a restore put back as unchanged, though Yjs holds it in new items", () => {
    const { before, after, doc } = states((d) => {
      d.getText("text").delete(6, 5);
      d.getText("text").insert(6, "there");
    });
    Y.applyUpdate(doc, revertUpdate(after, before)!);
    const restored = Y.encodeStateAsUpdate(doc);
    const diff = diffStates(before, restored);
    assert.deepEqual(diff.text?.changes, [], "the same text as before");
    assert.deepEqual(diff.text?.delta, [{ insert: "hello world" }]);
    assert.deepEqual(
      diffStates(after, restored).text?.changes.map((c) => [c.type, c.text]),
      [
        ["added", "world"],
        ["removed", "there"],
      ].sort(),
      "a real change still shows",
    );
  });

  it("diffs two states: text and XML ranges inserted and deleted, with the client that wrote them", () => {
    const { before, after, doc } = states((d) => {
      d.getText("text").delete(0, 6);
      d.getText("text").insert(5, "!");
      ((d.getXmlFragment("prose").get(0) as Y.XmlElement).get(0) as Y.XmlText).insert(5, " new");
      d.getMap("meta").set("title", "B");
    });
    const diff = diffStates(before, after);
    const client = doc.clientID;
    assert.deepEqual(diff.text?.changes, [
      { type: "removed", client, index: 0, text: "hello ", path: [] },
      { type: "added", client, index: 5, text: "!", path: [] },
    ]);
    assert.deepEqual(diff.prose?.changes, [{ type: "added", client, index: 5, text: " new", path: [0, 0] }]);
    assert.deepEqual([diff.meta?.before, diff.meta?.after], [{ title: "A" }, { title: "B" }]);
    const backwards = diffStates(after, before);
    assert.deepEqual(
      backwards.text?.changes.map((c) => [c.type, c.text]),
      [
        ["added", "hello "],
        ["removed", "!"],
      ],
      "the other way round, what was removed is added (its content kept)",
    );
  });
});

/** A memory store whose `before-restore` version waits for `release()`. */
class GatedVersions extends MemoryDocumentStore {
  private gate: Promise<void> | undefined;
  private open: (() => void) | undefined;
  private reached: (() => void) | undefined;
  /** Resolves once a `before-restore` version is being written (and held). */
  holdBeforeRestore(): Promise<void> {
    this.gate = new Promise((resolve) => (this.open = resolve));
    return new Promise((resolve) => (this.reached = resolve));
  }
  release(): void {
    this.open?.();
  }
  override async saveVersion(docId: string, epoch: number, version: NewVersion): Promise<VersionInfo> {
    if (version.kind === "before-restore" && this.gate) {
      this.reached?.();
      await this.gate;
    }
    return super.saveVersion(docId, epoch, version);
  }
}

describe("History: sessions", () => {
  const fast = resolveHistoryOptions({ quietMs: 20, minIntervalMs: 0 });

  it("takes an automatic version once editing goes quiet, naming who edited, and none while nothing changes", async () => {
    const store = new MemoryDocumentStore();
    const session = await openSession("doc", { store, history: fast });
    const source = new Y.Doc();
    await session.apply(insertUpdate(source, 0, "ab"), from("alice"));
    await session.apply(insertUpdate(source, 2, "c"), from("bob"));
    await eventually(async () => assert.equal((await store.listVersions("doc")).length, 1));
    const [auto] = await store.listVersions("doc");
    assert.equal(auto?.kind, "auto");
    assert.equal(auto?.seq, session.lastSeq);
    assert.deepEqual(auto?.authors, ["alice", "bob"]);
    assert.deepEqual(auto?.clients, [source.clientID]);
    const stored = await store.loadVersion("doc", auto?.id ?? 0);
    assert.equal(contentOf(stored!.state).text, "abc");
    await new Promise((resolve) => setTimeout(resolve, 100)); // several quiet periods with no edit
    assert.equal((await store.listVersions("doc")).length, 1, "no edit, no new version");
    await session.close();
  });

  it("keeps at most one automatic version per minIntervalMs", async () => {
    const store = new MemoryDocumentStore();
    const session = await openSession("doc", {
      store,
      history: resolveHistoryOptions({ quietMs: 10, minIntervalMs: 60_000 }),
    });
    const source = new Y.Doc();
    await session.apply(insertUpdate(source, 0, "a"), from("p"));
    await eventually(async () => assert.equal((await store.listVersions("doc")).length, 1));
    await session.apply(insertUpdate(source, 1, "b"), from("p"));
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal((await store.listVersions("doc")).length, 1, "the second waits for minIntervalMs");
    await session.close("shutdown");
  });

  it("saves a last automatic version when a document with unversioned edits unloads, and none when a version holds them", async () => {
    const store = new MemoryDocumentStore();
    const slow = resolveHistoryOptions({ quietMs: 3_600_000 });
    const session = await openSession("doc", { store, history: slow });
    await session.apply(insertUpdate(new Y.Doc(), 0, "kept"), from("p"));
    await session.close();
    const versions = await store.listVersions("doc");
    assert.deepEqual(
      versions.map((v) => [v.kind, v.seq]),
      [["auto", 1]],
    );
    const again = await openSession("doc", { store, history: slow });
    await again.close();
    assert.equal(
      (await store.listVersions("doc")).length,
      1,
      "reopened and closed without edits: no version",
    );
  });

  it("saves named versions and restores one as a new op that every peer receives; a second restore undoes it", async () => {
    const store = new MemoryDocumentStore();
    const session = await openSession("doc", { store, history: resolveHistoryOptions({ auto: false }) });
    const watcher = new RecordingPeer("watcher");
    session.addPeer(watcher);
    const source = new Y.Doc();
    await session.apply(insertUpdate(source, 0, "draft"), from("p"));
    const named = decode(
      (await session.manage("version", encode({ name: "first draft" }))).bytes,
    ) as VersionInfo;
    assert.deepEqual([named.kind, named.name, named.seq], ["named", "first draft", 1]);
    await session.apply(insertUpdate(source, 5, " two"), from("p"));
    const opsBefore = (await store.readOps("doc", 0)).length;

    const result = decode((await session.manage("restore", encode({ versionId: named.id }))).bytes) as {
      before: VersionInfo;
      after: VersionInfo;
      seq: number;
    };
    assert.equal(await sessionText(session), "draft");
    assert.equal(watcher.doc.getText("text").toString(), "draft", "fanned out like any edit");
    assert.equal((await store.readOps("doc", 0)).length, opsBefore + 1, "one new op; nothing rewritten");
    assert.deepEqual(
      [result.before.kind, result.after.kind, result.after.restoredFrom],
      ["before-restore", "restore", named.id],
    );
    assert.equal(contentOf((await store.loadVersion("doc", result.before.id))!.state).text, "draft two");

    await session.manage("restore", encode({ versionId: result.before.id }));
    assert.equal(await sessionText(session), "draft two");
    assert.equal(watcher.doc.getText("text").toString(), "draft two");
    await session.close();
  });

  it("keeps an edit that arrives while a restore runs: the restore does not revert it, and the next restore's `before` holds it", async () => {
    const store = new GatedVersions();
    const session = await openSession("doc", { store, history: resolveHistoryOptions({ auto: false }) });
    const source = new Y.Doc();
    await session.apply(insertUpdate(source, 0, "v1"), from("p"));
    const v1 = decode((await session.manage("version", encode({ name: "v1" }))).bytes) as VersionInfo;
    await session.apply(insertUpdate(source, 2, " more"), from("p"));
    const reached = store.holdBeforeRestore();
    const restoring = session.manage("restore", encode({ versionId: v1.id }));
    await reached; // the version before the restore is being written, under the apply lock
    const edit = session.apply(insertUpdate(source, 7, " window"), from("p"));
    store.release();
    const result = decode((await restoring).bytes) as { before: VersionInfo };
    assert.notEqual(await edit, null, "the edit was acknowledged");
    assert.equal(
      await sessionText(session),
      "v1 window",
      "the restore reverted what `before` held, not the edit",
    );
    assert.equal(contentOf((await store.loadVersion("doc", result.before.id))!.state).text, "v1 more");
    const undo = decode((await session.manage("restore", encode({ versionId: result.before.id }))).bytes) as {
      before: VersionInfo;
    };
    assert.equal(await sessionText(session), "v1 more");
    assert.equal(
      contentOf((await store.loadVersion("doc", undo.before.id))!.state).text,
      "v1 window",
      "the acknowledged edit stays in history",
    );
    await session.close();
  });

  it("takes the missing automatic version after a crash, even when a snapshot had trimmed the log", async () => {
    const store = new MemoryDocumentStore();
    const first = await openSession("doc", { store, history: resolveHistoryOptions({ quietMs: 3_600_000 }) });
    await first.apply(insertUpdate(new Y.Doc(), 0, "unversioned"), from("p"));
    await first.manage("compact");
    assert.deepEqual(await store.readOps("doc", 0), [], "the log is trimmed");
    await first.close("storage-failure"); // a crash: no final writes
    const again = await openSession("doc", { store, history: fast });
    await eventually(async () =>
      assert.deepEqual(
        (await store.listVersions("doc")).map((v) => [v.kind, v.seq]),
        [["auto", 1]],
      ),
    );
    await again.close();
  });

  it("applies retention when it saves an automatic version: the store keeps exactly what the policy says", async () => {
    const store = new MemoryDocumentStore();
    const now = Date.now();
    const day = Math.floor((now - 10 * DAY) / DAY) * DAY;
    const hour = Math.floor((now - 2 * DAY) / HOUR) * HOUR;
    const old = await store.claimEpoch("doc");
    const saved: Record<string, number> = {};
    for (const [label, time, kind] of [
      ["named, 400 days", now - 400 * DAY, "named"],
      ["auto, 31 days", now - 31 * DAY, "auto"],
      ["auto, 10 days, early", day + 2 * HOUR, "auto"],
      ["auto, 10 days, late", day + 5 * HOUR, "auto"],
      ["auto, 2 days, early", hour + 60_000, "auto"],
      ["auto, 2 days, late", hour + 30 * 60_000, "auto"],
    ] as const) {
      const version = newVersion(Y.encodeStateAsUpdate(new Y.Doc()), { seq: 0, time, kind });
      saved[label] = (await store.saveVersion("doc", old, version)).id;
    }
    const session = await openSession("doc", { store, history: fast });
    await session.apply(insertUpdate(new Y.Doc(), 0, "edit"), from("p"));
    await eventually(async () => assert.equal((await store.listVersions("doc")).at(-1)?.seq, 1));
    const kept = new Set((await store.listVersions("doc")).map((v) => v.id));
    const expected = ["named, 400 days", "auto, 10 days, late", "auto, 2 days, late"];
    assert.deepEqual(
      Object.keys(saved).filter((label) => kept.has(saved[label]!)),
      expected,
    );
    assert.equal(kept.size, expected.length + 1, "and the new automatic version");
    await session.close();
  });

  it("rejects a restore of an unknown version, and history requests on a session without history", async () => {
    const store = new MemoryDocumentStore();
    const session = await openSession("doc", { store, history: fast });
    await assert.rejects(session.manage("restore", encode({ versionId: 99 })), (error: unknown) =>
      isOpStreamError(error, ErrorCodes.VERSION_NOT_FOUND),
    );
    await session.close();
    const off = await openSession("off", { store });
    await assert.rejects(session.manage("version", encode({ name: "x" })), (error: unknown) =>
      isOpStreamError(error),
    );
    await assert.rejects(off.manage("version", encode({ name: "x" })), (error: unknown) =>
      isOpStreamError(error, ErrorCodes.HISTORY_DISABLED),
    );
    await off.close();
  });

  it("fences version writes: an ex-owner's version is refused once a later epoch is claimed", async () => {
    const store = new MemoryDocumentStore();
    const session = await openSession("doc", { store, history: fast });
    await session.apply(insertUpdate(new Y.Doc(), 0, "x"), from("p"));
    await store.claimEpoch("doc"); // another owner took over
    await assert.rejects(session.manage("version", encode({ name: "late" })), (error: unknown) =>
      isOpStreamError(error, ErrorCodes.FENCED),
    );
    assert.deepEqual(
      (await store.listVersions("doc")).filter((v) => v.kind === "named"),
      [],
    );
    await session.close();
  });
});
