import { strict as assert } from "node:assert";
import { join } from "node:path";
import * as Y from "yjs";
import { connectClient, synced, type Client } from "../support/clients.js";
import { api, closeCodes } from "../support/management.js";
import { eventually } from "../support/eventually.js";
import { startServer, type TestServer } from "../support/server.js";
import { tempDir } from "../support/temp.js";

import { MANAGEMENT_TOKEN as TOKEN } from "../support/management.js";

describe("management API", function () {
  this.timeout(20_000);
  let server: TestServer;
  let base: string;
  const clients: Client[] = [];
  afterEach(async () => {
    clients.splice(0).forEach((client) => client.destroy());
    await server.stop();
  });

  async function start(configure: Parameters<typeof startServer>[0]): Promise<void> {
    server = await startServer(configure);
    base = `http://127.0.0.1:${server.port}`;
  }

  it("denies every route by default (403), and a wrong token", async () => {
    await start((b) => b.useSqliteStorage(join(tempDir(), "deny.sqlite")));
    for (const [method, path] of [
      ["GET", ""],
      ["GET", "/doc"],
      ["DELETE", "/doc"],
      ["POST", "/doc/compact"],
    ] as const) {
      const response = await api(base, method, path);
      assert.equal(response.status, 403, `${method} ${path}`);
      assert.equal(((await response.json()) as { error: { code: string } }).error.code, "OPS_ERR_FORBIDDEN");
    }
    await server.stop();
    await start((b) => b.useSqliteStorage(join(tempDir(), "wrong.sqlite")).useManagementAuthorization(TOKEN));
    assert.equal((await api(base, "GET", "", "not-the-management-token")).status, 403);
    assert.equal((await api(base, "GET", "", null)).status, 403);
    assert.equal((await api(base, "GET", "")).status, 200);
  });

  it("lists, gets (JSON and Yjs binary), compacts and deletes; unknown documents are 404 and never created", async () => {
    await start((b) => b.useSqliteStorage(join(tempDir(), "api.sqlite")).useManagementAuthorization(TOKEN));
    const client = connectClient(server.url, "notes");
    clients.push(client);
    const codes = closeCodes(client);
    await synced(client);
    client.doc.transact(() => {
      client.text.insert(0, "hello");
      client.doc.getMap("meta").set("title", "Notes");
      client.doc.getArray<number>("list").push([1, 2]);
    });
    await eventually(async () => {
      const body = (await (await api(base, "GET", "/notes")).json()) as { content: Record<string, unknown> };
      assert.deepEqual(body.content, { text: "hello", meta: { title: "Notes" }, list: [1, 2] });
    });
    assert.deepEqual(await (await api(base, "GET", "")).json(), { documents: ["notes"] });

    const binary = await api(base, "GET", "/notes?format=yjs");
    assert.equal(binary.headers.get("content-type"), "application/octet-stream");
    const copy = new Y.Doc();
    Y.applyUpdate(copy, new Uint8Array(await binary.arrayBuffer()));
    assert.equal(copy.getText("text").toString(), "hello");

    const compacted = (await (await api(base, "POST", "/notes/compact")).json()) as { snapshotSeq: number };
    const store = server.host.store;
    assert.equal((await store.loadSnapshot("notes"))?.seq, compacted.snapshotSeq);
    assert.ok(compacted.snapshotSeq > 0);
    assert.deepEqual(await store.readOps("notes", 0), [], "compaction trimmed the log");

    assert.equal((await api(base, "GET", "/missing")).status, 404);
    assert.equal((await api(base, "POST", "/missing/compact")).status, 404);
    assert.equal((await api(base, "DELETE", "/missing")).status, 404);
    assert.deepEqual(await store.list(), ["notes"], "asking about a document does not create it");

    assert.equal((await api(base, "DELETE", "/notes")).status, 204);
    await eventually(() => assert.ok(codes.includes(4004), `close codes ${codes.join(", ")}`));
    assert.deepEqual(await store.list(), []);
    assert.deepEqual(await store.load("notes"), { snapshot: null, ops: [] });
    assert.equal((await api(base, "GET", "/notes")).status, 404);
  });
});
