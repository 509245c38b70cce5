// samples/cluster: one command starts a redis-server, three opstream nodes sharing
// it (and one SQLite file), and nginx in front of them, configured as you would
// deploy it (nginx-config.ts: WebSocket upgrades, X-Forwarded-For, no sticky
// sessions). Open http://localhost:1234 (or /tiptap.html) in several tabs: each
// connection may land on any node.
//
//   npm run cluster            (Ctrl-C stops everything; needs redis-server and nginx)
//
// Environment: CLUSTER_PORT (nginx, 1234), CLUSTER_REDIS_PORT (6390),
// CLUSTER_LEASE_TTL_MS (unset: the nodes' default), CLUSTER_STORAGE (./data/cluster.sqlite).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
// The specs' launcher: nginx in the foreground, as the current user, from a temporary folder.
import { NGINX_INSTALL, nginxBinary, startNginx, type Nginx } from "../../spec/support/nginx.js";

const proxyPort = Number(process.env.CLUSTER_PORT ?? 1234);
const redisPort = Number(process.env.CLUSTER_REDIS_PORT ?? 6390);
const leaseTtlMs = process.env.CLUSTER_LEASE_TTL_MS;
const storage = process.env.CLUSTER_STORAGE ?? "./data/cluster.sqlite";
const nodePorts = [proxyPort + 1, proxyPort + 2, proxyPort + 3];
const cli = fileURLToPath(new URL("../../dist/opstream-cli.js", import.meta.url));
const children: ChildProcess[] = [];

function fail(message: string): never {
  process.stderr.write(`cluster: ${message}\n`);
  process.exit(1);
}

function start(name: string, command: string, args: string[]): ChildProcess {
  const child = spawn(command, args, { stdio: ["ignore", "inherit", "inherit"] });
  children.push(child);
  child.once("exit", (code, signal) => {
    if (!stopping) process.stderr.write(`cluster: ${name} exited (${signal ?? code})\n`);
  });
  return child;
}

async function waitFor(url: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await fetch(url)).ok) return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    if (Date.now() > deadline) throw new Error(`${url} did not become ready`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

let stopping = false;
/** nginx, once started (a signal may come before). */
const proxies: Nginx[] = [];
async function stop(): Promise<void> {
  stopping = true;
  await Promise.all(proxies.map((proxy) => proxy.close()));
  const nodes = children.slice(1);
  for (const child of nodes) child.kill("SIGTERM"); // graceful: final snapshots, leases released
  await Promise.all(nodes.filter((child) => child.exitCode === null).map((child) => once(child, "exit")));
  children[0]?.kill("SIGTERM");
  process.exit(0);
}

if (spawnSync("redis-server", ["--version"]).error)
  fail("redis-server is missing: run `apt-get install -y redis-server`");
try {
  nginxBinary();
} catch {
  fail(`nginx is missing: run \`${NGINX_INSTALL}\``);
}
if (!existsSync(cli)) fail("dist/opstream-cli.js is missing: run `npm run build` (npm run cluster does)");
mkdirSync(dirname(storage), { recursive: true });

start("redis-server", "redis-server", [
  "--port",
  String(redisPort),
  "--bind",
  "127.0.0.1",
  "--save",
  "",
  "--appendonly",
  "no",
]);
const redisUrl = `redis://127.0.0.1:${redisPort}`;
nodePorts.forEach((port, i) =>
  start(`node-${i + 1}`, process.execPath, [
    cli,
    "serve",
    "--port",
    String(port),
    "--host",
    "127.0.0.1",
    "--storage",
    storage,
    "--redis",
    redisUrl,
    "--node-id",
    `node-${i + 1}`,
    ...(leaseTtlMs === undefined ? [] : ["--lease-ttl-ms", leaseTtlMs]),
  ]),
);
process.once("SIGINT", () => void stop());
process.once("SIGTERM", () => void stop());
await Promise.all(nodePorts.map((port) => waitFor(`http://127.0.0.1:${port}/readyz`)));
// A node that is down, or answers 503 while it drains, is passed over for the next
// one: a client whose node died lands on a live one at its first reconnect.
const nginx = await startNginx({
  upstreams: nodePorts.map((port) => ({ host: "127.0.0.1", port })),
  port: proxyPort,
  stdio: "inherit",
});
proxies.push(nginx);
process.stdout.write(
  `\ncluster: redis on ${redisPort}, nodes on ${nodePorts.join(", ")}; ` +
    `open http://localhost:${nginx.port} (CodeMirror) or http://localhost:${nginx.port}/tiptap.html ` +
    `(Tiptap; &provider=hocuspocus or y-websocket), nginx round-robin over the nodes. Ctrl-C stops everything.\n`,
);
