import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { CLI } from "./cli-path.js";

/** An opstream node running as its own process (the built `opstream serve` bin). */
export interface ServerProcess {
  readonly child: ChildProcess;
  readonly port: number;
  /** `ws://127.0.0.1:<port>` */
  readonly url: string;
  /** `http://127.0.0.1:<port>` */
  readonly httpUrl: string;
  /** Sends `signal` and resolves once the process has exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Starts `node dist/opstream-cli.js serve` (the `opstream` bin) (run `npm run build` first; `npm test` does) and
 * resolves once it logs that it listens. `port` 0 picks a free port.
 */
export async function spawnServer(options: {
  /**
   * The `--storage` argument, given with `--host 127.0.0.1`. Left out, neither is
   * passed: the node runs at the CLI's defaults, as users run it (every address,
   * `./data/opstream.sqlite` under `cwd`).
   */
  storage?: string;
  /** The process's working directory. @default this process's */
  cwd?: string;
  port?: number;
  args?: string[];
  /** Options for node itself, before the script (e.g. `--cpu-prof`). */
  nodeArgs?: readonly string[];
}): Promise<ServerProcess> {
  const child = spawn(
    process.execPath,
    [
      ...(options.nodeArgs ?? []),
      CLI,
      "serve",
      "--port",
      String(options.port ?? 0),
      ...(options.storage === undefined ? [] : ["--host", "127.0.0.1", "--storage", options.storage]),
      ...(options.args ?? []),
    ],
    {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, OPSTREAM_LOG_LEVEL: "info" },
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    },
  );
  const exited = once(child, "exit");
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const lines = createInterface({ input: child.stdout });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      // Not left running: its stdout pipe alone would keep the spec process from exiting.
      child.kill("SIGKILL");
      reject(new Error(`server did not start in 15 s: ${stderr}`));
    }, 15_000);
    child.once("exit", (code) => reject(new Error(`server exited with ${code} before listening: ${stderr}`)));
    lines.on("line", (line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; port?: number };
        if (entry.msg === "opstream listening" && entry.port) {
          clearTimeout(timer);
          resolve(entry.port);
        }
      } catch {
        // not a JSON log line (nothing else is printed on stdout); ignore it
      }
    });
  });
  return {
    child,
    port,
    url: `ws://127.0.0.1:${port}`,
    httpUrl: `http://127.0.0.1:${port}`,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
