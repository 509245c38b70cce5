import { strict as assert } from "node:assert";
import { join } from "node:path";
import {
  ErrorCodes,
  MemoryDocumentStore,
  SqliteDocumentStore,
  isOpStreamError,
  type DocumentStore,
} from "../../src/index.js";
import { storeContract } from "../contracts/store.contract.js";
import { tempDir } from "../support/temp.js";

storeContract("memory", { create: () => Promise.resolve(new MemoryDocumentStore()) });

const paths = new WeakMap<DocumentStore, string>();
storeContract("sqlite", {
  create: () => {
    const path = join(tempDir(), "store.sqlite");
    const store = new SqliteDocumentStore({ path });
    paths.set(store, path);
    return Promise.resolve(store);
  },
  reopen: async (store) => {
    const path = paths.get(store);
    if (!path) throw new Error("unknown store");
    await store.close();
    const reopened = new SqliteDocumentStore({ path });
    paths.set(reopened, path);
    return reopened;
  },
});

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
