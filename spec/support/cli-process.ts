import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { CLI } from "./cli-path.js";
import { eventually } from "./eventually.js";

/**
 * A Node process with every line it prints kept: `runCli` runs `node dist/opstream-cli.js
 * <args>` (the `opstream` bin) (run `npm run build` first; `npm test` does), for specs about what the
 * CLI prints and how it starts.
 * Unlike `spawnServer` it does not wait for a log line: a node started with a
 * higher log level prints none, so `waitUntilServing()` asks `/livez` instead.
 */
export interface CliProcess {
  readonly child: ChildProcess;
  /** The lines printed on stdout so far. */
  stdout(): string[];
  /** Everything printed on stderr so far. */
  stderr(): string;
  /** Resolves with the exit code (null when killed by a signal) once the process has exited. */
  readonly exited: Promise<number | null>;
  /** Sends `signal` (if still running) and resolves with the exit code once it has exited. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function runCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): CliProcess {
  return runNode([CLI, ...args], { env });
}

/** `node <argv>` in `cwd`, kept like {@link runCli} (e.g. an application embedding opstream). */
export function runNode(
  argv: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): CliProcess {
  const child = spawn(process.execPath, argv, {
    stdio: ["ignore", "pipe", "pipe"],
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    // The specs' own level would otherwise decide what the process prints.
    env: { ...process.env, OPSTREAM_LOG_LEVEL: undefined, ...options.env },
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
  const exited = once(child, "exit").then(([code]) => code as number | null);
  return {
    child,
    stdout: () => out.split("\n").filter(Boolean),
    stderr: () => err,
    exited,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Resolves once `http://127.0.0.1:<port>/livez` answers 200; fails if the process exits first. */
export async function waitUntilServing(
  cli: Pick<CliProcess, "child" | "stderr">,
  port: number,
  timeoutMs = 15_000,
): Promise<void> {
  const outcome = await eventually(
    async () => {
      if (cli.child.exitCode !== null) return "exited";
      const response = await fetch(`http://127.0.0.1:${port}/livez`);
      if (response.status !== 200) throw new Error(`/livez answered ${response.status}`);
      return "serving";
    },
    timeoutMs,
    50,
  );
  if (outcome === "exited") throw new Error(`the CLI exited with ${cli.child.exitCode}: ${cli.stderr()}`);
}
