import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { chmodSync, existsSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { delimiter, isAbsolute, join } from "node:path";
import { nginxConfig, type NginxConfigOptions } from "../../samples/cluster/nginx-config.js";
import { tempDir } from "./temp.js";
import { freePort } from "./ports.js";

/** How to install nginx where it is missing (Debian, as .ci/run does). */
export const NGINX_INSTALL = "apt-get install -y nginx";

/** A running nginx in front of opstream nodes. */
export interface Nginx {
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly httpUrl: string;
  /** `ws://127.0.0.1:<port>` */
  readonly url: string;
  /** The configuration it runs. */
  readonly config: string;
  /** Stops it (fast shutdown: open connections are closed) and resolves once it has exited. */
  close(): Promise<void>;
}

/** Options of {@link startNginx}: those of the sample's configuration, but the port and temp folder. */
export type NginxOptions = Omit<NginxConfigOptions, "listenPort" | "listenHost" | "tempDir"> & {
  /** The port to listen on. @default a free one */
  readonly port?: number;
  /** Where nginx's output goes: kept for the error message of a failed start, or shown. @default "pipe" */
  readonly stdio?: "pipe" | "inherit";
};

/** The nginx binary: Debian's /usr/sbin/nginx (not on every user's PATH), else the PATH's. */
export function nginxBinary(): string {
  const onPath = (process.env.PATH ?? "").split(delimiter).filter((dir) => isAbsolute(dir));
  const candidates = ["/usr/sbin/nginx", ...onPath.map((dir) => join(dir, "nginx"))];
  const found = candidates.find((candidate) => existsSync(candidate));
  if (found === undefined) throw new Error(`nginx is missing: run \`${NGINX_INSTALL}\``);
  return found;
}

/**
 * Starts nginx in the foreground, as the current user, with the sample's
 * configuration (samples/cluster/nginx-config.ts) in a fresh temporary folder
 * (its prefix, pid file and temporary files), on a free port of 127.0.0.1.
 * Resolves once it accepts connections.
 */
export async function startNginx(options: NginxOptions): Promise<Nginx> {
  const binary = nginxBinary();
  // A free port is only known to be free until someone takes it: retry on a clash.
  for (let attempt = 1; ; attempt++) {
    const port = options.port ?? (await freePort());
    try {
      return await launch(binary, port, options);
    } catch (error) {
      const clash = error instanceof Error && error.message.includes("Address already in use");
      if (!clash || options.port !== undefined || attempt >= 5) throw error;
    }
  }
}

async function launch(binary: string, port: number, options: NginxOptions): Promise<Nginx> {
  const dir = tempDir("opstream-nginx-");
  // Run as root, nginx's workers drop to nobody: they must reach their temporary files.
  chmodSync(dir, 0o755);
  const stdio = options.stdio ?? "pipe";
  const config = nginxConfig({
    upstreams: options.upstreams,
    workerProcesses: options.workerProcesses,
    accessLog: options.accessLog,
    listenPort: port,
    listenHost: "127.0.0.1",
    tempDir: dir,
  });
  const file = join(dir, "nginx.conf");
  writeFileSync(file, config);
  const child = spawn(
    binary,
    ["-p", dir, "-c", file, "-g", `daemon off; pid ${join(dir, "nginx.pid")}; error_log stderr;`],
    { stdio: ["ignore", stdio, stdio] },
  );
  running.add(child);
  let output = "";
  const keep = (chunk: Buffer): void => void (output = (output + chunk.toString()).slice(-4000));
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = once(child, "exit");
  void exited.then(() => running.delete(child));
  const failed = exited.then(([code, signal]) => {
    throw new Error(`nginx exited (${String(signal ?? code)}) before accepting connections: ${output}`);
  });
  // Raced below while it starts; once it runs, its exit (on close) is no failure.
  failed.catch(() => undefined);
  const deadline = performance.now() + 10_000;
  // Wait on its listening socket, or its exit, whichever comes first.
  for (;;) {
    const accepted = await Promise.race([accepts(port), failed]);
    if (accepted) break;
    if (performance.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`nginx did not accept connections on ${port} within 10 s: ${output}`);
    }
    await Promise.race([new Promise((resolve) => setTimeout(resolve, 20)), failed]);
  }
  return {
    port,
    httpUrl: `http://127.0.0.1:${port}`,
    url: `ws://127.0.0.1:${port}`,
    config,
    async close() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

/**
 * Every nginx started and not yet exited: stopped with the process (a failed or
 * interrupted run must not leave them behind). SIGTERM, not SIGKILL: a killed
 * master would leave its workers running, holding the port.
 */
const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) child.kill("SIGTERM");
});

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
