import { strict as assert } from "node:assert";
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { connectClient, synced, type Client } from "../support/clients.js";
import { runNode, waitUntilServing, type CliProcess } from "../support/cli-process.js";
import { freePort } from "../support/ports.js";
import { eventually } from "../support/eventually.js";
import { startRedis, type RedisServer } from "../support/redis.js";
import { tempDir } from "../support/temp.js";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/**
 * The README's embedding example ("Embedding"), as an application writes it: two
 * nodes of it share one Redis (backplane) and one store. The first spec below
 * checks that README.md shows exactly this code.
 */
const APP = `import express from "express";
import { ServiceCollection } from "opstream";

const services = new ServiceCollection();
services
  .addOpStream({ nodeId: process.env.NODE_ID })
  .useRedisBackplane(process.env.REDIS_URL!)
  .useSqliteStorage(process.env.SQLITE_PATH ?? "./data/opstream.sqlite")
  .useAuthorization(({ token }) => (token === process.env.TOKEN ? "read-write" : "deny"));
const opstream = services.build();

const app = express();
app.use(opstream.http()); // /livez /healthz /readyz /metrics /api
const server = app.listen(Number(process.env.PORT ?? 1234));
opstream.attach(server); // WebSocket upgrades

process.on("SIGTERM", () => void opstream.shutdown().then(() => process.exit(0)));
`;

/** A TypeScript project as an application has it: the example, checked and compiled by tsc. */
const TSCONFIG = {
  compilerOptions: {
    target: "ES2022",
    module: "NodeNext",
    moduleResolution: "NodeNext",
    strict: true,
    skipLibCheck: true,
    types: ["node"],
  },
  files: ["app.ts"],
};

/** What an application of the example installs itself besides opstream (types of its own imports). */
const APP_DEV_DEPENDENCIES = ["@types/node", "@types/express"];

/**
 * Packs the repository (`npm pack`: prepack builds dist/ first), lays the tarball
 * out as `npm install` would in a new project, and returns that project's folder.
 * Only opstream's own files come from the tarball; its dependencies are linked
 * from this repository's node_modules (Node resolves a linked package's own
 * dependencies from its real path), because a networked install cannot run here
 * (better-sqlite3 downloads its binary from GitHub).
 */
async function installPackedTarball(): Promise<{ project: string; files: string[]; installed: string }> {
  const packed = tempDir("opstream-pack-");
  await run("npm", ["pack", "--pack-destination", packed], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
  const [tarball] = readdirSync(packed).filter((name) => name.endsWith(".tgz"));
  assert.ok(tarball, `npm pack wrote a tarball into ${packed}`);
  const { stdout: listing } = await run("tar", ["-tzf", join(packed, tarball)], {
    maxBuffer: 16 * 1024 * 1024,
  });
  const files = listing
    .split("\n")
    .filter(Boolean)
    .map((path) => path.replace(/^package\//, ""));

  const project = tempDir("opstream-app-");
  const installed = join(project, "node_modules", "opstream");
  mkdirSync(installed, { recursive: true });
  await run("tar", ["-xzf", join(packed, tarball), "-C", installed, "--strip-components=1"]);
  const manifest = JSON.parse(readFileSync(join(installed, "package.json"), "utf8")) as {
    dependencies: Record<string, string>;
  };
  for (const name of [...Object.keys(manifest.dependencies), ...APP_DEV_DEPENDENCIES]) {
    const link = join(project, "node_modules", name);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(join(ROOT, "node_modules", name), link, "dir");
  }
  writeFileSync(
    join(project, "package.json"),
    JSON.stringify({ name: "app", private: true, type: "module" }),
  );
  writeFileSync(join(project, "tsconfig.json"), JSON.stringify(TSCONFIG));
  writeFileSync(join(project, "app.ts"), APP);
  return { project, files, installed };
}

describe("the packed package", () => {
  let redis: RedisServer;
  let project: string;
  let files: string[];
  let installed: string;
  const nodes: CliProcess[] = [];
  const clients: Client[] = [];

  before(async function () {
    this.timeout(120_000); // npm pack builds dist/ and the sample first
    [redis, { project, files, installed }] = await Promise.all([startRedis(), installPackedTarball()]);
  });

  after(async () => {
    for (const client of clients) client.destroy();
    await Promise.all(nodes.map((node) => node.stop()));
    await redis?.stop();
  });

  it("runs the README's embedding example word for word", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const example = /## Embedding\n[^]*?```ts\n([^]*?)```/.exec(readme)?.[1];
    assert.equal(example, APP, 'README.md\'s first code block under "## Embedding" is APP in this spec');
  });

  it("ships the build, the docs and the sample page, without sources or sample source maps", () => {
    for (const file of [
      "package.json",
      "dist/index.js",
      "dist/index.d.ts",
      "dist/cli.js",
      "dist/opstream-cli.js",
      "dist/sqlite-writer.js",
      "README.md",
      "LICENSE",
      "CHANGELOG.md",
      "PROTOCOL.md",
      "OPERATIONS.md",
      "SECURITY.md",
      "RELIABILITY.md",
      "samples/editor/public/index.html",
      "samples/editor/public/bundle.js",
    ])
      assert.ok(files.includes(file), `${file} is in the tarball`);
    assert.ok(
      files.some((file) => file.startsWith("docs/")),
      "docs/ is in the tarball",
    );
    for (const file of files) {
      assert.ok(!file.startsWith("samples/editor/public/") || !file.endsWith(".map"), `${file} is left out`);
      assert.ok(!/^(src|spec|bench|scripts|api)\//.test(file), `${file} (not built output) is left out`);
    }
  });

  it("runs the README's embedding example: two nodes on Redis, stock clients, an edit seen across them", async function () {
    this.timeout(60_000);
    // The example type-checks against the tarball's declarations and compiles.
    try {
      await run(join(ROOT, "node_modules", ".bin", "tsc"), ["-p", project], { cwd: project });
    } catch (error) {
      // tsc prints its diagnostics on stdout.
      const { stdout = "", message = "" } = error as { stdout?: string; message?: string };
      assert.fail(`tsc failed on the example:\n${stdout || message}`);
    }
    const sqlite = join(project, "shared.sqlite");
    const ports = [await freePort(), await freePort()];
    for (const [index, port] of ports.entries()) {
      nodes.push(
        runNode(["app.js"], {
          cwd: project,
          env: {
            NODE_ID: `node-${index}`,
            PORT: String(port),
            REDIS_URL: redis.url,
            SQLITE_PATH: sqlite,
            TOKEN: "packed-token",
          },
        }),
      );
    }
    await Promise.all(nodes.map((node, index) => waitUntilServing(node, ports[index]!)));

    const [a, b] = ports.map((port) => {
      const client = connectClient(`ws://127.0.0.1:${port}`, "packed-doc", {
        params: { token: "packed-token" },
      });
      clients.push(client);
      return client;
    });
    await Promise.all([synced(a!), synced(b!)]);
    a!.text.insert(0, "edited through node-0");
    await eventually(() =>
      assert.equal(b!.text.toString(), "edited through node-0", "node-1's client sees it"),
    );
    b!.text.insert(b!.text.length, ", answered through node-1");
    await eventually(() =>
      assert.equal(a!.text.toString(), "edited through node-0, answered through node-1", "and back"),
    );
  });

  it("runs its `opstream` bin from the installed package at its defaults: stock clients share an edit, on ./data/opstream.sqlite", async function () {
    this.timeout(30_000);
    const manifest = JSON.parse(readFileSync(join(installed, "package.json"), "utf8")) as {
      bin: { opstream: string };
    };
    const cwd = tempDir();
    const port = await freePort();
    const node = runNode([join(installed, manifest.bin.opstream), "serve", "--port", String(port)], { cwd });
    nodes.push(node);
    await waitUntilServing(node, port);
    const [writer, reader] = ["writer", "reader"].map(() => {
      const client = connectClient(`ws://127.0.0.1:${port}`, "packed-bin-doc");
      clients.push(client);
      return client;
    });
    await Promise.all([synced(writer!), synced(reader!)]);
    writer!.text.insert(0, "typed through the packed bin");
    await eventually(() => assert.equal(reader!.text.toString(), "typed through the packed bin"));
    assert.ok(
      existsSync(join(cwd, "data", "opstream.sqlite")),
      "stored in ./data/opstream.sqlite, the default",
    );
  });
});
