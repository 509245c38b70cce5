import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { connectClient, synced } from "../support/clients.js";
import { runCli, waitUntilServing, type CliProcess } from "../support/cli-process.js";
import { freePort } from "../support/ports.js";
import { eventually } from "../support/eventually.js";
import { CLI } from "../support/cli-path.js";
import { tempDir } from "../support/temp.js";

/** pino's numeric levels. */
const INFO = 30;
const WARN = 40;

/** Starts `opstream serve` on a free port with SQLite in a temporary folder, plus `args`. */
async function serve(
  args: string[] = [],
  env: NodeJS.ProcessEnv = {},
): Promise<{ cli: CliProcess; port: number }> {
  const port = await freePort();
  const storage = join(tempDir(), "logs.sqlite");
  const cli = runCli(
    ["serve", "--host", "127.0.0.1", "--port", String(port), "--storage", storage, "--no-sample", ...args],
    env,
  );
  await waitUntilServing(cli, port);
  return { cli, port };
}

/** Each stdout line as JSON; fails, naming the line, on one that is not a JSON object. */
function jsonLines(cli: CliProcess): Record<string, unknown>[] {
  return cli.stdout().map((line) => {
    let entry: unknown;
    try {
      entry = JSON.parse(line);
    } catch {
      assert.fail(`stdout line is not JSON: ${line}`);
    }
    assert.ok(entry !== null && typeof entry === "object", `stdout line is a JSON object: ${line}`);
    return entry as Record<string, unknown>;
  });
}

/** How often `"key":` occurs in a raw line (JSON.parse would keep only the last of duplicates). */
function occurrences(line: string, key: string): number {
  return line.split(`"${key}":`).length - 1;
}

describe("CLI logs", () => {
  it("are JSON lines when stdout is not a terminal, each naming the node once", async () => {
    const { cli, port } = await serve(["--node-id", "node-logs"]);
    const client = connectClient(`ws://127.0.0.1:${port}`, "logged-doc");
    try {
      await synced(client);
    } finally {
      client.destroy();
    }
    assert.equal(await cli.stop(), 0, `graceful exit; stderr: ${cli.stderr()}`);
    const entries = jsonLines(cli);
    for (const msg of ["opstream listening", "draining", "opstream stopped"]) {
      const entry = entries.find((e) => e.msg === msg);
      assert.ok(entry, `"${msg}" is logged: ${cli.stdout().join("\n")}`);
      assert.equal(entry.nodeId, "node-logs", `"${msg}" names the node`);
    }
    for (const line of cli.stdout())
      assert.ok(occurrences(line, "nodeId") <= 1, `no line carries nodeId twice: ${line}`);
  });

  it("--log-level warn leaves out the info lines and keeps the warnings", async () => {
    const { cli } = await serve(["--log-level", "warn"]);
    assert.equal(await cli.stop(), 0, `graceful exit; stderr: ${cli.stderr()}`);
    const entries = jsonLines(cli);
    assert.ok(
      entries.some((e) => e.level === WARN && e.unsafeDefault === "authorization"),
      `the allow-all warning is logged: ${cli.stdout().join("\n")}`,
    );
    for (const entry of entries)
      assert.ok(Number(entry.level) >= WARN, `no line below warn: ${JSON.stringify(entry)}`);
  });

  it("OPSTREAM_LOG_LEVEL sets the level when the flag is not given", async () => {
    const { cli } = await serve([], { OPSTREAM_LOG_LEVEL: "error" });
    assert.equal(await cli.stop(), 0, `graceful exit; stderr: ${cli.stderr()}`);
    assert.deepEqual(cli.stdout(), [], "nothing at error level or above happened");
  });

  it("refuses an unknown level, naming the levels", async () => {
    const cli = runCli([
      "serve",
      "--port",
      "0",
      "--storage",
      join(tempDir(), "x.sqlite"),
      "--log-level",
      "loud",
    ]);
    assert.equal(await cli.exited, 1, "exit code 1");
    assert.match(
      cli.stderr(),
      /--log-level wants one of fatal, error, warn, info, debug, trace, silent, got loud/,
    );
  });

  it("are pretty-printed on a terminal", async () => {
    // util-linux `script` runs the CLI on a pseudo-terminal; stdout is then a TTY.
    const port = await freePort();
    const storage = join(tempDir(), "tty.sqlite");
    const command = `exec ${process.execPath} ${CLI} serve --host 127.0.0.1 --port ${port} --storage ${storage} --no-sample`;
    const script = spawn("script", ["-qfec", command, "/dev/null"], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, OPSTREAM_LOG_LEVEL: undefined },
    });
    const exited = once(script, "exit");
    let out = "";
    script.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    try {
      await eventually(
        () => assert.ok(out.includes("opstream listening"), `listening is logged: ${out}`),
        15_000,
      );
      // Plain text with a level name, not a JSON object.
      assert.match(out, /INFO.*: .*opstream listening/, out);
      assert.ok(!out.includes(`"msg":`), `no JSON on a terminal: ${out}`);
      assert.ok(out.includes("nodeId"), `fields are still shown: ${out}`);
      assert.ok(!out.includes(`"level":${INFO}`), out);
    } finally {
      script.kill("SIGTERM");
      await exited;
    }
  });
});
