/**
 * The store the failover bench's opstream nodes share: one SQLite file in a temp
 * folder, or a fresh database on a Postgres server of the bench's own. Shared
 * SQLite is for trying a cluster on one machine (OPERATIONS.md "Known limits"): a
 * node frozen inside a write transaction keeps the file's write lock and no other
 * node can take over until it resumes, so the hang bound of a frozen owner is
 * measured on Postgres, the production store.
 */
import { join } from "node:path";
import { PostgresDocumentStore, SqliteDocumentStore, type DocumentStore } from "../../src/index.js";
import { freshDatabase, sharedPostgres, stopSharedPostgres } from "../../spec/support/postgres.js";
import { tempDir } from "../../spec/support/temp.js";

export const STORAGE_KINDS = ["sqlite", "postgres"] as const;
export type StorageKind = (typeof STORAGE_KINDS)[number];

export interface BenchStorage {
  readonly kind: StorageKind;
  /** What the nodes get as `--storage`: a file path or a `postgres://` URL. */
  readonly location: string;
  /** A store on a connection of its own, to read what the nodes wrote; the caller closes it. */
  open(): DocumentStore;
  /** Stops what {@link startStorage} started (the temp folder goes when the process exits). */
  stop(): Promise<void>;
}

export async function startStorage(kind: StorageKind): Promise<BenchStorage> {
  if (kind === "sqlite") {
    const path = join(tempDir("opstream-failover-"), "failover.sqlite");
    return {
      kind,
      location: path,
      open: () => new SqliteDocumentStore({ path, writerThread: false }),
      stop: () => Promise.resolve(),
    };
  }
  const server = await sharedPostgres();
  try {
    // A database of its own, as the cluster specs make one: the nodes create their tables in it.
    const location = await freshDatabase(server, "failover");
    return {
      kind,
      location,
      open: () => new PostgresDocumentStore({ connectionString: location, poolSize: 2 }),
      stop: () => stopSharedPostgres(),
    };
  } catch (error) {
    await stopSharedPostgres();
    throw error;
  }
}
