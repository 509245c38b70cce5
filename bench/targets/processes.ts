/**
 * Server processes of the benchmark targets: opstream through the built CLI
 * (spec/support/process.ts), the peers as bundled scripts that print
 * `{"listening":<port>}` on stdout.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { spawnServer } from "../../spec/support/process.js";
import { bundled } from "../support/bundle.js";

/** One running server process. */
export interface NodeProcess {
  readonly pid: number;
  readonly port: number;
  /** Sends `signal` (SIGTERM: a graceful stop that persists) and resolves once the process exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

const START_TIMEOUT_MS = 30_000;

/** Limits that would measure the limiter, not the server: all load comes from 127.0.0.1, S2 floods. */
const OPSTREAM_BENCH_ARGS = ["--no-sample", "--message-rate", "0", "--max-connections-per-ip", "0"];

/**
 * Node options for opstream's processes, space-separated, e.g.
 * `BENCH_OPSTREAM_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"` to profile them
 * (node refuses `--cpu-prof` in NODE_OPTIONS).
 */
const OPSTREAM_NODE_ARGS = (process.env.BENCH_OPSTREAM_NODE_ARGS ?? "").split(" ").filter(Boolean);

export async function startOpstream(storage: string, args: readonly string[] = []): Promise<NodeProcess> {
  const server = await spawnServer({
    storage,
    args: [...OPSTREAM_BENCH_ARGS, ...args],
    nodeArgs: OPSTREAM_NODE_ARGS,
  });
  const pid = server.child.pid;
  if (pid === undefined) throw new Error("opstream serve has no pid");
  return { pid, port: server.port, stop: (signal) => server.stop(signal) };
}

/** Runs bench/targets/<script>.ts (bundled) with `args` and resolves once it listens. */
export async function startPeer(script: string, args: readonly string[] = []): Promise<NodeProcess> {
  const path = await bundled(new URL(`./${script}.ts`, import.meta.url));
  const child = spawn(process.execPath, [path, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const exited = once(child, "exit");
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => void (stderr = (stderr + chunk.toString()).slice(-4000)));
  const lines = createInterface({ input: child.stdout });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${script} did not listen within ${START_TIMEOUT_MS} ms: ${stderr}`)),
      START_TIMEOUT_MS,
    );
    child.once("exit", (code) =>
      reject(new Error(`${script} exited with ${code} before listening: ${stderr}`)),
    );
    lines.on("line", (line) => {
      const match = /^\{"listening":(\d+)\}$/.exec(line);
      if (!match) return void process.stderr.write(`${script}: ${line}\n`);
      clearTimeout(timer);
      resolve(Number(match[1]));
    });
  });
  if (child.pid === undefined) throw new Error(`${script} has no pid`);
  return {
    pid: child.pid,
    port,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
