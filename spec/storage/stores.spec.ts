import Database from "better-sqlite3";
import { strict as assert } from "node:assert";
import { join } from "node:path";
import * as Y from "yjs";
import {
  ErrorCodes,
  MemoryDocumentStore,
  SqliteDocumentStore,
  isOpStreamError,
  type DocumentStore,
} from "../../src/index.js";
import { newVersion } from "../support/versions.js";
import { storeContract } from "../contracts/store.contract.js";
import { tempDir } from "../support/temp.js";

storeContract("memory", { create: () => Promise.resolve(new MemoryDocumentStore()) });

const paths = new WeakMap<DocumentStore, string>();
/** Writes on a worker thread (the default), and inline on the event loop. */
const MODES = [
  { name: "sqlite", writerThread: true },
  { name: "sqlite (inline writer)", writerThread: false },
] as const;
for (const { name, writerThread } of MODES) {
  storeContract(name, {
    create: () => {
      const path = join(tempDir(), "store.sqlite");
      const store = new SqliteDocumentStore({ path, writerThread });
      paths.set(store, path);
      return Promise.resolve(store);
    },
    reopen: async (store) => {
      const path = paths.get(store);
      if (!path) throw new Error("unknown store");
      await store.close();
      const reopened = new SqliteDocumentStore({ path, writerThread });
      paths.set(reopened, path);
      return reopened;
    },
  });
}

describe("SqliteDocumentStore shared by several connections (a cluster on one machine)", () => {
  it("fences the other connection's stale epoch and keeps one sequence", async () => {
    const path = join(tempDir(), "shared.sqlite");
    const one = new SqliteDocumentStore({ path });
    const two = new SqliteDocumentStore({ path });
    try {
      const first = await one.claimEpoch("doc");
      assert.deepEqual(await one.append("doc", first, [new Uint8Array([0, 0])]), [1]);
      const second = await two.claimEpoch("doc");
      await assert.rejects(one.append("doc", first, [new Uint8Array([0, 0])]), (error: unknown) =>
        isOpStreamError(error, ErrorCodes.FENCED),
      );
      assert.deepEqual(await two.append("doc", second, [new Uint8Array([0, 0])]), [2]);
      assert.deepEqual(
        (await one.readOps("doc", 0)).map((op) => op.seq),
        [1, 2],
      );
    } finally {
      await Promise.all([one.close(), two.close()]);
    }
  });
});

describe("SqliteDocumentStore on a file of an older release", () => {
  it("opens a file without the versions table, keeps its documents and adds the table", async () => {
    const path = join(tempDir(), "old.sqlite");
    const source = new Y.Doc();
    source.getText("text").insert(0, "old");
    const before = new SqliteDocumentStore({ path });
    const epoch = await before.claimEpoch("doc");
    await before.append("doc", epoch, [Y.encodeStateAsUpdate(source)]);
    await before.close();
    const file = new Database(path);
    file.exec("DROP TABLE versions"); // the file as a release before document history left it
    file.close();

    const store = new SqliteDocumentStore({ path });
    try {
      assert.deepEqual(await store.list(), ["doc"]);
      assert.deepEqual(await store.listVersions("doc"), []);
      const next = await store.claimEpoch("doc");
      const state = Y.encodeStateAsUpdate(source);
      const saved = await store.saveVersion("doc", next, newVersion(state, { time: 1 }));
      assert.deepEqual(await store.loadVersion("doc", saved.id), { ...saved, state });
      assert.equal((await store.readOps("doc", 0)).length, 1);
    } finally {
      await store.close();
    }
  });
});

for (const { name, writerThread } of MODES) {
  describe(`SqliteDocumentStore group commit, ${name} (appends and epoch claims made together share a transaction)`, () => {
    const op = (byte: number): Uint8Array => new Uint8Array([byte]);
    const isFenced = (error: unknown): boolean => isOpStreamError(error, ErrorCodes.FENCED);

    it("settles each append of a group on its own: a fenced one fails alone, the others commit in order", async () => {
      const path = join(tempDir(), "group.sqlite");
      const store = new SqliteDocumentStore({ path, writerThread });
      const other = new SqliteDocumentStore({ path, writerThread });
      try {
        const a = await store.claimEpoch("a");
        const staleB = await store.claimEpoch("b");
        await other.claimEpoch("b"); // another owner took "b": staleB is fenced
        const c = await store.claimEpoch("c");
        // All in one turn: one group.
        const results = await Promise.allSettled([
          store.append("a", a, [op(1), op(2)]),
          store.append("b", staleB, [op(3)]),
          store.append("c", c, [op(4)]),
          store.append("a", a, [op(5)]),
        ]);
        assert.deepEqual(
          results.map((r) =>
            r.status === "fulfilled" ? r.value : isFenced(r.reason) ? "fenced" : String(r.reason),
          ),
          [[1, 2], "fenced", [1], [3]],
        );
        // Durable for another connection once settled, in order; nothing of the fenced append.
        assert.deepEqual(
          (await other.readOps("a", 0)).map((o) => [o.seq, o.update[0]]),
          [
            [1, 1],
            [2, 2],
            [3, 5],
          ],
        );
        assert.deepEqual(await other.readOps("b", 0), []);
        assert.deepEqual(
          (await other.readOps("c", 0)).map((o) => o.seq),
          [1],
        );
      } finally {
        await Promise.all([store.close(), other.close()]);
      }
    });

    it("groups epoch claims with appends: each claim settles on its own, in the order asked", async () => {
      const path = join(tempDir(), "claims.sqlite");
      const store = new SqliteDocumentStore({ path, writerThread });
      const other = new SqliteDocumentStore({ path, writerThread });
      try {
        const first = await store.claimEpoch("a");
        await store.claimEpoch("b");
        // A takeover of several documents at once, in one turn: one group. The append
        // made with "a"'s first epoch comes before the claim that fences it.
        const results = await Promise.allSettled([
          store.append("a", first, [op(1)]),
          store.claimEpoch("a", { mustExist: true }),
          store.claimEpoch("gone", { mustExist: true }),
          store.claimEpoch("b", { mustExist: true, atLeast: 7 }),
          store.append("a", first, [op(2)]),
        ]);
        assert.deepEqual(
          results.map((r) =>
            r.status === "fulfilled"
              ? r.value
              : isFenced(r.reason)
                ? "fenced"
                : isOpStreamError(r.reason, ErrorCodes.DOCUMENT_NOT_FOUND)
                  ? "not found"
                  : String(r.reason),
          ),
          [[1], first + 1, "not found", 7, "fenced"],
        );
        // Durable for another connection: the claims hold, nothing was created for "gone".
        assert.equal(await other.claimEpoch("a"), first + 2);
        assert.equal(await other.claimEpoch("b"), 8);
        await assert.rejects(other.claimEpoch("gone", { mustExist: true }), (error: unknown) =>
          isOpStreamError(error, ErrorCodes.DOCUMENT_NOT_FOUND),
        );
      } finally {
        await Promise.all([store.close(), other.close()]);
      }
    });

    it("commits the appends still waiting for their turn when the store closes", async () => {
      const path = join(tempDir(), "closing.sqlite");
      const store = new SqliteDocumentStore({ path, writerThread });
      const epoch = await store.claimEpoch("doc");
      const appended = store.append("doc", epoch, [op(7)]);
      await store.close();
      assert.deepEqual(await appended, [1]);
      const reopened = new SqliteDocumentStore({ path, writerThread });
      try {
        assert.deepEqual(
          (await reopened.readOps("doc", 0)).map((o) => o.update[0]),
          [7],
        );
      } finally {
        await reopened.close();
      }
    });

    it("fails every append of a group the database refuses, and commits none of them", async () => {
      const path = join(tempDir(), "refused.sqlite");
      const store = new SqliteDocumentStore({ path, writerThread });
      const epoch = await store.claimEpoch("doc");
      await store.close();
      const results = await Promise.allSettled([
        store.append("doc", epoch, [op(1)]),
        store.append("doc", epoch, [op(2)]),
      ]);
      for (const result of results) {
        assert.equal(result.status, "rejected");
        assert.ok(isOpStreamError(result.reason, ErrorCodes.STORAGE_UNAVAILABLE), String(result.reason));
      }
      const reopened = new SqliteDocumentStore({ path, writerThread });
      try {
        assert.deepEqual(await reopened.readOps("doc", 0), []);
      } finally {
        await reopened.close();
      }
    });
  });
}
