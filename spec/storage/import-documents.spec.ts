import Database from "better-sqlite3";
import { strict as assert } from "node:assert";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import * as Y from "yjs";
import { ErrorCodes, isOpStreamError } from "../../src/errors.js";
import { restoreDocument } from "../../src/engine/session-state.js";
import type { DocumentStore } from "../../src/storage/document-store.js";
import { importDocuments, type ImportEntry, type ImportSource } from "../../src/storage/import.js";
import { hocuspocusSqliteSource } from "../../src/storage/import-sources.js";
import { MemoryDocumentStore } from "../../src/storage/memory/memory-store.js";
import { tempDir } from "../support/temp.js";

/** A source of the given entries. */
function entries(...list: ImportEntry[]): ImportSource {
  return {
    description: "spec entries",
    // eslint-disable-next-line @typescript-eslint/require-await -- sources are async iterables
    async *entries() {
      yield* list;
    },
  };
}

/** The whole state of a document holding `text`. */
function stateOf(text: string): Uint8Array {
  const doc = new Y.Doc();
  doc.getText("text").insert(0, text);
  return Y.encodeStateAsUpdate(doc);
}

async function textIn(store: DocumentStore, docId: string): Promise<string> {
  return restoreDocument(docId, await store.load(docId))
    .getText("text")
    .toString();
}

describe("importDocuments (name -> Yjs state into a DocumentStore)", () => {
  it("imports under a claimed epoch: a node still holding the document is fenced", async () => {
    const store = new MemoryDocumentStore();
    const stale = await store.claimEpoch("doc");
    await store.append("doc", stale, [stateOf("before ")]);
    const summary = await importDocuments(store, entries({ name: "doc", state: stateOf("imported") }), {
      existing: "merge",
    });
    assert.equal(summary.counts.merged, 1, "merged into the existing document");
    await assert.rejects(
      store.append("doc", stale, [stateOf("late")]),
      (error) => isOpStreamError(error, ErrorCodes.FENCED),
      "the previous holder's next append is fenced",
    );
    const text = await textIn(store, "doc");
    assert.ok(text.includes("before ") && text.includes("imported"), `both states are kept: ${text}`);
  });

  it("reports invalid entries with their reason and writes nothing for them", async () => {
    const base = new Y.Doc();
    base.getText("text").insert(0, "a");
    const vector = Y.encodeStateVector(base);
    base.getText("text").insert(1, "b");
    // Only the second edit: it depends on content the state does not hold.
    const partial = Y.encodeStateAsUpdate(base, vector);
    const store = new MemoryDocumentStore();
    const summary = await importDocuments(
      store,
      entries(
        { name: "garbage", state: new Uint8Array([1, 2, 3, 200, 255]) },
        { name: "", state: stateOf("x") },
        { name: "x".repeat(513), state: stateOf("x") },
        { name: "partial", state: partial },
        { name: "unreadable", state: new Uint8Array(0), unreadable: "its data is NULL, not a blob" },
      ),
      { concurrency: 1 },
    );
    assert.equal(summary.counts.invalid, 5, "every entry is invalid");
    const reasons = summary.problems.map((p) => `${p.name.slice(0, 10)}: ${p.reason ?? ""}`);
    assert.match(reasons[0] ?? "", /^garbage: the state is not a Yjs update/);
    assert.match(reasons[1] ?? "", /^: an empty name/);
    assert.match(reasons[2] ?? "", /513 characters; clients may open at most 512/);
    assert.match(reasons[3] ?? "", /^partial: the state refers to content it does not hold/);
    assert.match(reasons[4] ?? "", /^unreadable: its data is NULL/);
    assert.deepEqual(await store.list(), [], "nothing was written");
  });

  it("stores under a tenant, and a dry run writes nothing", async () => {
    const store = new MemoryDocumentStore();
    const source = (): ImportSource => entries({ name: "a/b", state: stateOf("hi") });
    const dry = await importDocuments(store, source(), { tenant: "acme", dryRun: true });
    assert.equal(dry.counts.imported, 1, "a dry run reports what it would import");
    assert.deepEqual(await store.list(), [], "a dry run writes nothing");
    const done = await importDocuments(store, source(), { tenant: "acme" });
    assert.deepEqual(
      done.problems.map((p) => p.reason),
      [],
      "no problems",
    );
    assert.equal(await textIn(store, "acme/a/b"), "hi", "stored as <tenant>/<name>");
    await assert.rejects(
      importDocuments(store, source(), { tenant: "a/b" }),
      (error) => isOpStreamError(error, ErrorCodes.INVALID_OPTION),
      "a tenant id with a slash is refused",
    );
  });
});

describe("hocuspocusSqliteSource", () => {
  it("says what is missing with INVALID_IMPORT_SOURCE", () => {
    const dir = tempDir();
    assert.throws(
      () => hocuspocusSqliteSource(join(dir, "missing.sqlite")),
      (error) =>
        isOpStreamError(error, ErrorCodes.INVALID_IMPORT_SOURCE) &&
        /No Hocuspocus database/.test(error.message),
      "a missing file",
    );
    const garbage = join(dir, "garbage.sqlite");
    writeFileSync(garbage, "not a database at all");
    assert.throws(
      () => hocuspocusSqliteSource(garbage),
      (error) =>
        isOpStreamError(error, ErrorCodes.INVALID_IMPORT_SOURCE) && /Could not read/.test(error.message),
      "a file that is not a database",
    );
    const path = join(dir, "other.sqlite");
    const db = new Database(path);
    db.exec(`CREATE TABLE docs ("key" TEXT, "value" BLOB)`);
    db.close();
    assert.throws(
      () => hocuspocusSqliteSource(path),
      (error) =>
        isOpStreamError(error, ErrorCodes.INVALID_IMPORT_SOURCE) &&
        /no table "documents" \(it has: docs\)/.test(error.message),
      "no documents table: the tables that exist are named",
    );
    assert.throws(
      () => hocuspocusSqliteSource(path, { table: "docs" }),
      (error) =>
        isOpStreamError(error, ErrorCodes.INVALID_IMPORT_SOURCE) && /columns key, value/.test(error.message),
      "a table without name and data",
    );
  });

  it("reads a custom table, the newest row of a name, and reports a row that is not a blob", async () => {
    const path = join(tempDir(), "custom.sqlite");
    const db = new Database(path);
    db.exec(`CREATE TABLE "my docs" ("name" TEXT NOT NULL, "data" BLOB, "extra" TEXT)`);
    const insert = db.prepare(`INSERT INTO "my docs" (name, data) VALUES (?, ?)`);
    insert.run("a", stateOf("old"));
    insert.run("a", stateOf("new"));
    insert.run("b", null);
    db.close();
    const store = new MemoryDocumentStore();
    const source = hocuspocusSqliteSource(path, { table: "my docs" });
    try {
      const summary = await importDocuments(store, source);
      assert.equal(summary.counts.imported, 1, "a is imported");
      assert.deepEqual(
        summary.problems.map((p) => [p.name, p.outcome, p.reason]),
        [["b", "invalid", "its data is NULL, not a blob"]],
        "b is reported",
      );
    } finally {
      await source.close?.();
    }
    assert.equal(await textIn(store, "a"), "new", "the newest row of a name is read, as Hocuspocus reads it");
  });
});
