import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer, type Socket } from "node:net";
import pg from "pg";
import {
  ErrorCodes,
  PostgresDocumentStore,
  isOpStreamError,
  type DocumentStore,
  type PostgresStoreOptions,
} from "../../src/index.js";
import { MIGRATIONS } from "../../src/storage/postgres/schema.js";
import { newVersion } from "../support/versions.js";
import { storeContract } from "../contracts/store.contract.js";
import { findPostgresBinaries, sharedPostgres, stopSharedPostgres } from "../support/postgres.js";
import { freePort } from "../support/ports.js";
import { tempDir } from "../support/temp.js";

// One server for the whole run (root hook); every store gets a fresh schema.
after(() => stopSharedPostgres());

const newSchema = (): string => `spec_${randomBytes(6).toString("hex")}`;

async function openStore(options: PostgresStoreOptions = {}): Promise<PostgresDocumentStore> {
  const server = await sharedPostgres();
  return new PostgresDocumentStore({ connectionString: server.url, schema: newSchema(), ...options });
}

/** Runs `work` with a plain client of the shared server (to look behind the store's back). */
async function withClient<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: (await sharedPostgres()).url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

function unavailable(operation: string, docId?: string) {
  return (error: unknown): boolean =>
    isOpStreamError(error, ErrorCodes.STORAGE_UNAVAILABLE) &&
    error.details.operation === operation &&
    error.details.docId === docId;
}

const schemas = new WeakMap<DocumentStore, string>();
storeContract("postgres", {
  create: async () => {
    const schema = newSchema();
    const store = await openStore({ schema });
    schemas.set(store, schema);
    return store;
  },
  reopen: async (store) => {
    const schema = schemas.get(store);
    if (!schema) throw new Error("unknown store");
    await store.close();
    const reopened = await openStore({ schema });
    schemas.set(reopened, schema);
    return reopened;
  },
});

describe("PostgresDocumentStore", () => {
  it("accepts a plain connection string", async () => {
    const store = new PostgresDocumentStore((await sharedPostgres()).url);
    try {
      await store.ping();
      assert.equal(store.kind, "postgres");
    } finally {
      await store.close();
    }
  });

  it("migrates a fresh schema once when several stores start on it together", async () => {
    const schema = newSchema();
    const stores = await Promise.all(Array.from({ length: 5 }, () => openStore({ schema })));
    try {
      const epochs = await Promise.all(stores.map((store) => store.claimEpoch("doc")));
      assert.deepEqual(
        [...epochs].sort((a, b) => a - b),
        [1, 2, 3, 4, 5],
      );
      const rows = await withClient((client) =>
        client.query<{ version: number; n: number }>(
          `SELECT version, count(*)::int AS n FROM ${pg.escapeIdentifier(schema)}.opstream_schema_migrations
           GROUP BY version ORDER BY version`,
        ),
      );
      assert.deepEqual(
        rows.rows,
        MIGRATIONS.map((migration) => ({ version: migration.version, n: 1 })),
      );
    } finally {
      await Promise.all(stores.map((store) => store.close()));
    }
  });

  it("migrates a schema of an older release: its documents stay, and the versions table is added", async () => {
    const schema = newSchema();
    const s = pg.escapeIdentifier(schema);
    await withClient(async (client) => {
      await client.query(`CREATE SCHEMA ${s}`);
      await client.query(MIGRATIONS[0]?.sql(s) ?? "");
      await client.query(`CREATE TABLE ${s}.opstream_schema_migrations (
        version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
      await client.query(`INSERT INTO ${s}.opstream_schema_migrations (version) VALUES (1)`);
      await client.query(`INSERT INTO ${s}.documents (id, epoch) VALUES ('doc', 3)`);
    });
    const store = await openStore({ schema });
    try {
      assert.deepEqual(await store.list(), ["doc"]);
      const epoch = await store.claimEpoch("doc");
      assert.equal(epoch, 4);
      const saved = await store.saveVersion("doc", epoch, newVersion(new Uint8Array([1, 2])));
      assert.deepEqual(await store.loadVersion("doc", saved.id), { ...saved, state: new Uint8Array([1, 2]) });
      const versions = await withClient((client) =>
        client.query<{ version: number }>(
          `SELECT version FROM ${s}.opstream_schema_migrations ORDER BY version`,
        ),
      );
      assert.deepEqual(
        versions.rows.map((row) => row.version),
        MIGRATIONS.map((migration) => migration.version),
      );
    } finally {
      await store.close();
    }
  });

  it("runs as a role without CREATE privilege on a schema migrated beforehand", async () => {
    const schema = newSchema();
    const role = `${schema}_node`;
    const [s, r] = [pg.escapeIdentifier(schema), pg.escapeIdentifier(role)];
    const owner = await openStore({ schema });
    await owner.ping();
    await owner.list(); // migrates
    await owner.close();
    await withClient(async (client) => {
      await client.query(`CREATE ROLE ${r} LOGIN`);
      await client.query(`GRANT USAGE ON SCHEMA ${s} TO ${r}`);
      await client.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${s} TO ${r}`);
    });
    const url = new URL((await sharedPostgres()).url);
    url.username = role;
    const store = new PostgresDocumentStore({ connectionString: url.href, schema });
    try {
      const epoch = await store.claimEpoch("doc");
      assert.deepEqual(await store.append("doc", epoch, [new Uint8Array([0, 0])]), [1]);
      // The versions' id sequence is an identity column's: the table grants cover it.
      const saved = await store.saveVersion("doc", epoch, newVersion(new Uint8Array([0, 0])));
      assert.deepEqual(await store.listVersions("doc"), [saved]);
      await store.dropVersions("doc", epoch, [saved.id]);
      await store.delete("doc");
      const fresh = new PostgresDocumentStore({ connectionString: url.href, schema: newSchema() });
      try {
        await assert.rejects(fresh.list(), unavailable("list"), "it may not create a schema");
      } finally {
        await fresh.close();
      }
    } finally {
      await store.close();
    }
  });

  it("fences another node's stale epoch on the same schema and keeps one sequence", async () => {
    const schema = newSchema();
    const one = await openStore({ schema });
    const two = await openStore({ schema });
    try {
      const first = await one.claimEpoch("doc");
      assert.deepEqual(await one.append("doc", first, [new Uint8Array([0, 0])]), [1]);
      const second = await two.claimEpoch("doc");
      await assert.rejects(one.append("doc", first, [new Uint8Array([0, 0])]), (error: unknown) =>
        isOpStreamError(error, ErrorCodes.FENCED),
      );
      await assert.rejects(one.saveSnapshot("doc", first, new Uint8Array([0, 0]), 1), (error: unknown) =>
        isOpStreamError(error, ErrorCodes.FENCED),
      );
      assert.deepEqual(await two.append("doc", second, [new Uint8Array([1]), new Uint8Array([2])]), [2, 3]);
      assert.deepEqual(
        (await one.readOps("doc", 0)).map((op) => op.seq),
        [1, 2, 3],
      );
    } finally {
      await Promise.all([one.close(), two.close()]);
    }
  });

  it("does not close a caller-owned pool", async () => {
    const pool = new pg.Pool({ connectionString: (await sharedPostgres()).url, max: 2 });
    try {
      const store = new PostgresDocumentStore({ pool, schema: newSchema() });
      assert.equal(await store.claimEpoch("doc"), 1);
      await store.close();
      assert.equal(pool.ended, false);
      const { rows } = await pool.query<{ one: number }>("SELECT 1 AS one");
      assert.deepEqual(rows, [{ one: 1 }]);
    } finally {
      await pool.end();
    }
  });

  it("bounds every statement by statementTimeoutMs (a row lock held elsewhere fails the append)", async () => {
    const schema = newSchema();
    const store = await openStore({ schema, statementTimeoutMs: 200 });
    try {
      const epoch = await store.claimEpoch("doc");
      await withClient(async (client) => {
        await client.query("BEGIN");
        await client.query(
          `SELECT 1 FROM ${pg.escapeIdentifier(schema)}.documents WHERE id = 'doc' FOR UPDATE`,
        );
        await assert.rejects(store.append("doc", epoch, [new Uint8Array([0, 0])]), (error: unknown) => {
          assert.ok(unavailable("append", "doc")(error));
          assert.equal((error as { details: { driverCode?: string } }).details.driverCode, "57014");
          return true;
        });
        await client.query("ROLLBACK");
      });
      assert.deepEqual(await store.append("doc", epoch, [new Uint8Array([0, 0])]), [1]);
    } finally {
      await store.close();
    }
  });

  it("fails fast with STORAGE_UNAVAILABLE (naming the operation) when the server is unreachable", async function () {
    this.timeout(3000); // a refused connection must not be retried or waited on
    const port = await freePort();
    const store = new PostgresDocumentStore(`postgres://postgres@127.0.0.1:${port}/postgres`);
    try {
      await assert.rejects(store.append("doc", 1, [new Uint8Array([0, 0])]), unavailable("append", "doc"));
      await assert.rejects(store.claimEpoch("doc"), unavailable("claimEpoch", "doc"));
      await assert.rejects(store.list(), unavailable("list"));
      await assert.rejects(store.ping(), unavailable("ping"));
    } finally {
      await store.close();
    }
  });

  it("gives up after statementTimeoutMs on a server that accepts connections but never answers", async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => void sockets.add(socket));
    silent.listen(0, "127.0.0.1");
    await once(silent, "listening");
    const { port } = silent.address() as { port: number };
    const store = new PostgresDocumentStore({
      connectionString: `postgres://postgres@127.0.0.1:${port}/postgres`,
      statementTimeoutMs: 300,
    });
    try {
      await assert.rejects(store.load("doc"), unavailable("load", "doc"));
    } finally {
      await store.close();
      for (const socket of sockets) socket.destroy();
      silent.close();
      await once(silent, "close");
    }
  });

  it("rejects options outside their range with INVALID_OPTION", () => {
    for (const options of [{ poolSize: 0 }, { statementTimeoutMs: -1 }, { schema: "" }]) {
      assert.throws(
        () => new PostgresDocumentStore(options),
        (error: unknown) => isOpStreamError(error, ErrorCodes.INVALID_OPTION),
      );
    }
  });

  it("startPostgres() names the fix when the server binaries are missing", () => {
    const empty = tempDir();
    assert.throws(() => findPostgresBinaries(empty, empty), {
      message: "Postgres (initdb, postgres) is missing: run `apt-get install -y postgresql`",
    });
  });
});
