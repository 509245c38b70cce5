import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { accessSync, constants } from "node:fs";
import { createConnection } from "node:net";
import { delimiter, join } from "node:path";
import { eventually } from "./eventually.js";
import { killOnExit } from "./exit.js";
import { freePort } from "./ports.js";

/** A real `redis-server` on a free local port, with no persistence. */
export interface RedisServer {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** Stops the server (SIGTERM) and resolves once it has exited. Idempotent. */
  stop(): Promise<void>;
  /** Starts the server again on the same port (stopping it first if it runs); resolves once it answers PING. */
  restart(): Promise<void>;
  /** SIGKILLs the server (a crash: no shutdown, nothing saved) and resolves once it has exited. */
  kill(): Promise<void>;
  /** Starts a stopped or killed server on its port, empty; resolves once it answers PING. */
  start(): Promise<void>;
  /** Freezes the server (SIGSTOP): connections stay open, nothing is answered. */
  pause(): void;
  /** Thaws a paused server (SIGCONT). */
  resume(): void;
}

const MISSING = "redis-server is missing: run `apt-get install -y redis-server`";

function findRedisServer(): string {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, "redis-server");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch (error) {
      // Not usable from this PATH entry; keep looking (the final error names the fix).
      if (!["ENOENT", "ENOTDIR", "EACCES"].includes((error as NodeJS.ErrnoException).code ?? "")) throw error;
    }
  }
  throw new Error(MISSING);
}

/** Resolves when a raw `PING` on `port` is answered `+PONG` within 500 ms. */
function pingOnce(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    let received = "";
    const fail = (error: Error): void => {
      socket.destroy();
      reject(error);
    };
    socket.setTimeout(500, () => fail(new Error(`redis-server on ${port} did not answer PING in 500 ms`)));
    socket.on("error", fail);
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString();
      if (!received.includes("\r\n")) return;
      socket.destroy();
      if (received.startsWith("+PONG")) resolve();
      else reject(new Error(`redis-server on ${port} answered PING with ${JSON.stringify(received)}`));
    });
  });
}

/**
 * Spawns `redis-server --port <free port> --save "" --appendonly no --bind 127.0.0.1`
 * and resolves once it answers PING. Specs share one server and isolate themselves
 * with their own key prefix (never FLUSHALL).
 */
export async function startRedis(): Promise<RedisServer> {
  const binary = findRedisServer();
  const port = await freePort();
  let child: ChildProcess | undefined;
  let guard: { release(): void } | undefined;
  let output = "";

  const start = async (): Promise<void> => {
    const spawned = spawn(
      binary,
      ["--port", String(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    child = spawned;
    guard = killOnExit(spawned);
    const keep = (chunk: Buffer): void => void (output = (output + chunk.toString()).slice(-4000));
    spawned.stdout?.on("data", keep);
    spawned.stderr?.on("data", keep);
    await eventually(async () => {
      if (spawned.exitCode !== null)
        throw new Error(`redis-server exited with ${spawned.exitCode}: ${output}`);
      await pingOnce(port);
    }, 10_000);
  };

  const end = async (signal: "SIGTERM" | "SIGKILL"): Promise<void> => {
    guard?.release();
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = once(running, "exit");
    running.kill("SIGCONT"); // a paused server would not act on SIGTERM
    running.kill(signal);
    await exited;
  };
  const stop = (): Promise<void> => end("SIGTERM");

  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop,
    async restart() {
      await stop();
      await start();
    },
    kill: () => end("SIGKILL"),
    async start() {
      if (child) throw new Error(`redis-server on ${port} is running already`);
      await start();
    },
    pause: () => void child?.kill("SIGSTOP"),
    resume: () => void child?.kill("SIGCONT"),
  };
}
