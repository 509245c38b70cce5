import { strict as assert } from "node:assert";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { connectClient, synced, type Client } from "../support/clients.js";
import { eventually } from "../support/eventually.js";
import { spawnServer, type ServerProcess } from "../support/process.js";
import { CLI } from "../support/cli-path.js";
import { tempDir } from "../support/temp.js";

const run = promisify(execFile);

/** Tokens like "a17;" that a writer appends; a reader records which it has seen. */
function tokensIn(text: string): Set<string> {
  return new Set(text.split(";").filter(Boolean));
}

describe("durability across restarts (opstream serve with SQLite, as a child process)", function () {
  this.timeout(60_000);
  let server: ServerProcess | undefined;
  const clients: Client[] = [];
  const connect = (url: string, doc: string) => {
    const client = connectClient(url, doc);
    clients.push(client);
    return client;
  };
  afterEach(async () => {
    clients.splice(0).forEach((c) => c.destroy());
    await server?.stop("SIGKILL");
    server = undefined;
  });

  const cases = [
    { signal: "SIGTERM", args: [] },
    { signal: "SIGKILL", args: [] },
    // NORMAL skips the fsync of each commit; the commit still reaches the OS first.
    { signal: "SIGKILL", args: ["--sqlite-synchronous", "normal"] },
  ] as const;
  for (const { signal, args } of cases) {
    const kind =
      (signal === "SIGTERM" ? "a graceful restart" : "kill -9") + (args.length ? ` (${args.join(" ")})` : "");
    it(`after ${kind}, a new client sees every update any other client had received`, async () => {
      const storage = join(tempDir(), "opstream.sqlite");
      server = await spawnServer({ storage, args: [...args] });
      const { port, url } = server;
      const writers = [connect(url, "durable"), connect(url, "durable")];
      const reader = connect(url, "durable");
      await Promise.all([...writers, reader].map((c) => synced(c)));

      // Writers keep appending tokens while the server is stopped under them.
      let stopWriting = false;
      const writing = writers.map(async (writer, w) => {
        for (let i = 0; !stopWriting; i++) {
          writer.text.insert(writer.text.length, `${"ab"[w]}${i};`);
          await new Promise((resolve) => setTimeout(resolve, 2));
        }
      });
      await eventually(() => assert.ok(tokensIn(reader.text.toString()).size >= 200), 20_000);
      const stoppingAt = performance.now();
      await server.stop(signal);
      // The drain (final snapshots, leases, closes) is bounded by the default drain timeout, 10 s.
      if (signal === "SIGTERM")
        assert.ok(performance.now() - stoppingAt < 10_000, "exited within the drain timeout");
      const seenByReader = tokensIn(reader.text.toString());
      stopWriting = true;
      await Promise.all(writing);
      // The old clients must not resend their documents: only storage may answer.
      clients.splice(0).forEach((c) => c.destroy());

      server = await spawnServer({ storage, port, args: [...args] });
      const fresh = connect(server.url, "durable");
      await synced(fresh, 10_000);
      const recovered = tokensIn(fresh.text.toString());
      const missing = [...seenByReader].filter((token) => !recovered.has(token));
      assert.deepEqual(missing, [], `every token the reader had received survives ${kind}`);
      assert.ok(recovered.size >= seenByReader.size);
    });
  }

  it("opstream --version prints the package's version and exits 0", async () => {
    const manifest = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
      version: string;
    };
    const { stdout } = await run(process.execPath, [CLI, "--version"]);
    assert.equal(stdout, `${manifest.version}\n`);
  });

  it("refuses an unknown --sqlite-synchronous value, naming the flag", async () => {
    const storage = join(tempDir(), "opstream.sqlite");
    await assert.rejects(
      spawnServer({ storage, args: ["--sqlite-synchronous", "sometimes"] }),
      /--sqlite-synchronous wants full or normal, got sometimes/,
    );
  });
});
