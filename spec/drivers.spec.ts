import { strict as assert } from "node:assert";
import { execFile } from "node:child_process";
import { promisify } from "node:util";

// pino-pretty too: the default logger loads it only when stdout is a terminal.
const DRIVERS = ["ioredis", "redlock", "bluebird", "pg", "jose", "pino-pretty"] as const;

/**
 * Runs `body` in a fresh Node process (with tsx, as the specs run) after importing
 * opstream, and resolves with the packages of `DRIVERS` it had loaded by the end:
 * ESM modules as a load hook saw them, CommonJS ones from the require cache.
 */
async function driversLoadedBy(body: string): Promise<string[]> {
  const index = new URL("../src/index.ts", import.meta.url).href;
  const script = `
    import { createRequire, register } from "node:module";
    import { MessageChannel } from "node:worker_threads";
    const { port1, port2 } = new MessageChannel();
    const urls = [];
    port1.on("message", (url) => urls.push(url));
    register(
      "data:text/javascript," +
        encodeURIComponent(
          "let port; export function initialize(data) { port = data.port; }" +
            "export async function load(url, context, next) { port.postMessage(url); return next(url, context); }",
        ),
      { data: { port: port2 }, transferList: [port2] },
    );
    const opstream = await import(${JSON.stringify(index)});
    ${body}
    await new Promise((resolve) => setTimeout(resolve, 50)); // the hook's last messages
    const files = [...urls, ...Object.keys(createRequire(import.meta.url).cache)];
    const loaded = ${JSON.stringify(DRIVERS)}.filter((name) =>
      files.some((file) => file.includes("/node_modules/" + name + "/")),
    );
    process.stdout.write(JSON.stringify(loaded) + "\\n");
    process.exit(0);
  `;
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ["--import", "tsx", "--input-type=module", "-e", script],
    { env: { ...process.env, OPSTREAM_LOG_LEVEL: "silent" } },
  );
  return JSON.parse(stdout.trim().split("\n").at(-1)!) as string[];
}

describe("optional drivers", () => {
  it("are not loaded by importing opstream and building its defaults", async () => {
    const loaded = await driversLoadedBy(`
      const services = new opstream.ServiceCollection();
      services.addOpStream().useSqliteStorage(":memory:");
      await services.build().shutdown();
    `);
    assert.deepEqual(loaded, []);
  });

  it("are loaded by the configurations that use them", async () => {
    // Nothing connects: a pool connects on first use, and the authorizer is never called.
    const loaded = await driversLoadedBy(`
      const store = new opstream.PostgresDocumentStore({ connectionString: "postgres://127.0.0.1:1/none" });
      opstream.jwtAuthorizer({ secret: "a secret of at least thirty-two bytes" });
      await new Promise((resolve) => setTimeout(resolve, 200)); // jose's import
      await store.close();
    `);
    assert.deepEqual(loaded, ["pg", "jose"]);
  });
});
