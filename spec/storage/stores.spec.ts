import { join } from "node:path";
import { MemoryDocumentStore, SqliteDocumentStore, type DocumentStore } from "../../src/index.js";
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
