import { SQLite } from "@hocuspocus/extension-sqlite";
import { Server } from "@hocuspocus/server";
import Database from "better-sqlite3";
import { strict as assert } from "node:assert";
import { execFile } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as Y from "yjs";
import { connectClient, synced, type Client } from "../support/clients.js";
import { eventually } from "../support/eventually.js";
import {
  PROVIDER_VERSIONS,
  allAcknowledged,
  connectHocuspocus,
  hpSynced,
  type HocuspocusClient,
} from "../support/hocuspocus.js";
import { spawnServer, type ServerProcess } from "../support/process.js";
import { CLI } from "../support/cli-path.js";
import { tempDir } from "../support/temp.js";

const v4 =
  PROVIDER_VERSIONS.find((version) => version.name === "v4") ??
  assert.fail("spec/support lists a v4 provider");

/** What the Hocuspocus users typed, per document (a name with a "/" and one without). */
const CONTENT = { "notes/welcome": "Hello from Hocuspocus", plain: "second document" } as const;

/** Runs the built `opstream import` (run `npm run build` first; `npm test` does). */
function opstreamImport(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, "import", ...args], (error, stdout, stderr) => {
      if (error !== null && typeof error.code !== "number")
        reject(new Error(`opstream import did not run: ${error.message}`, { cause: error }));
      else resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr });
    });
  });
}

/**
 * Writes a database with a real Hocuspocus server and the stock
 * `@hocuspocus/extension-sqlite`: stock providers type into two documents, and
 * `destroy()` flushes the extension's pending (debounced) stores.
 */
async function writeHocuspocusDatabase(path: string): Promise<void> {
  const server = new Server({
    port: 0,
    address: "127.0.0.1",
    quiet: true,
    stopOnSignals: false,
    extensions: [new SQLite({ database: path })],
  });
  await server.listen();
  const clients: HocuspocusClient[] = [];
  try {
    for (const [name, text] of Object.entries(CONTENT)) {
      const client = connectHocuspocus(v4, `ws://127.0.0.1:${server.address.port}`, name);
      clients.push(client);
      await hpSynced(client);
      client.text.insert(0, text);
      client.doc.getMap("meta").set("title", name);
      await allAcknowledged(client);
    }
  } finally {
    clients.forEach((client) => client.destroy());
    await server.destroy();
  }
}

describe("opstream import (a database of @hocuspocus/extension-sqlite into opstream storage)", function () {
  this.timeout(30_000);
  let hocuspocusFile: string;
  let storage: string;
  let server: ServerProcess | undefined;
  const clients: { destroy(): void }[] = [];

  before(async () => {
    const dir = tempDir();
    hocuspocusFile = join(dir, "hocuspocus.sqlite");
    storage = join(dir, "opstream.sqlite");
    await writeHocuspocusDatabase(hocuspocusFile);
    const db = new Database(hocuspocusFile, { readonly: true });
    const names = db.prepare("SELECT name FROM documents ORDER BY name").pluck().all();
    db.close();
    assert.deepEqual(names, Object.keys(CONTENT).sort(), "Hocuspocus stored both documents");
  });
  afterEach(async () => {
    clients.splice(0).forEach((client) => client.destroy());
    await server?.stop();
    server = undefined;
  });

  const yWebsocket = (name: string): Client => {
    const client = connectClient(server?.url ?? "", name);
    clients.push(client);
    return client;
  };
  const hocuspocus = (name: string): HocuspocusClient => {
    const client = connectHocuspocus(v4, `${server?.url ?? ""}/hocuspocus`, name);
    clients.push(client);
    return client;
  };

  it("imports every document, and stock clients of both families see the content", async () => {
    const run = await opstreamImport(["--from", hocuspocusFile, "--storage", storage]);
    assert.equal(run.code, 0, `import exits 0 (stderr: ${run.stderr})`);
    assert.match(run.stdout, /Imported 2 new documents and merged 0 \(\d+ bytes\); 0 were already there/);

    server = await spawnServer({ storage });
    for (const [name, text] of Object.entries(CONTENT)) {
      const [y, hp] = [yWebsocket(name), hocuspocus(name)];
      await Promise.all([synced(y), hpSynced(hp)]);
      assert.equal(y.text.toString(), text, `a y-websocket client sees ${name}`);
      assert.equal(hp.text.toString(), text, `a Hocuspocus client sees ${name}`);
      assert.equal(y.doc.getMap("meta").get("title"), name, `the map of ${name} came along`);
      // The imported document is an ordinary one: an edit goes through to the other family.
      y.text.insert(y.text.length, "!");
      await eventually(() =>
        assert.equal(hp.text.toString(), `${text}!`, `the edit of ${name} reaches Hocuspocus`),
      );
    }
  });

  it("a rerun finds everything there; other content is refused, and --merge adds it", async () => {
    // The store holds the import plus the edits of the previous test.
    const rerun = await opstreamImport(["--from", hocuspocusFile, "--storage", storage]);
    assert.equal(rerun.code, 0, `a rerun exits 0 (stderr: ${rerun.stderr})`);
    assert.match(rerun.stdout, /Imported 0 new documents and merged 0 \(0 bytes\); 2 were already there/);

    // A state written elsewhere for "plain", as a folder source holds it.
    const dir = join(tempDir(), "states");
    mkdirSync(dir);
    const other = new Y.Doc();
    other.getText("text").insert(0, "written elsewhere ");
    writeFileSync(join(dir, "plain.bin"), Y.encodeStateAsUpdate(other));
    writeFileSync(join(dir, `${encodeURIComponent("new/doc")}.bin`), Y.encodeStateAsUpdate(other));

    const refused = await opstreamImport(["--from-dir", dir, "--storage", storage]);
    assert.equal(refused.code, 1, "a refused document makes the import exit 1");
    assert.match(refused.stderr, /refused "plain": the store already holds other content/);
    assert.match(refused.stdout, /Imported 1 new documents and merged 0 .*; 1 refused/);

    const merged = await opstreamImport(["--from-dir", dir, "--storage", storage, "--merge"]);
    assert.equal(merged.code, 0, `--merge exits 0 (stderr: ${merged.stderr})`);
    assert.match(merged.stdout, /Imported 0 new documents and merged 1 .*; 1 were already there/);

    server = await spawnServer({ storage });
    const plain = yWebsocket("plain");
    const created = hocuspocus("new/doc");
    await Promise.all([synced(plain), hpSynced(created)]);
    const text = plain.text.toString();
    assert.ok(text.includes(`${CONTENT.plain}!`), `the merged document keeps its content: ${text}`);
    assert.ok(text.includes("written elsewhere "), `and has the merged state: ${text}`);
    assert.equal(created.text.toString(), "written elsewhere ", "a name decoded from its file name opens");
  });
});
