// samples/cluster: one command starts a redis-server, three opstream nodes sharing
// it (and one SQLite file), and a non-sticky round-robin TCP proxy in front of them.
// Open http://localhost:1234 (or /tiptap.html) in several tabs: each connection may
// land on any node.
//
//   npm run cluster            (Ctrl-C stops everything)
//
// Environment: CLUSTER_PORT (proxy, 1234), CLUSTER_REDIS_PORT (6390),
// CLUSTER_LEASE_TTL_MS (unset: the nodes' default), CLUSTER_STORAGE (./data/cluster.sqlite).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { RoundRobinProxy } from "./round-robin-proxy.js";

const proxyPort = Number(process.env.CLUSTER_PORT ?? 1234);
const redisPort = Number(process.env.CLUSTER_REDIS_PORT ?? 6390);
const leaseTtlMs = process.env.CLUSTER_LEASE_TTL_MS;
const storage = process.env.CLUSTER_STORAGE ?? "./data/cluster.sqlite";
const nodePorts = [proxyPort + 1, proxyPort + 2, proxyPort + 3];
const cli = fileURLToPath(new URL("../../dist/cli.js", import.meta.url));
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
async function stop(): Promise<void> {
  stopping = true;
  const nodes = children.slice(1);
  for (const child of nodes) child.kill("SIGTERM"); // graceful: final snapshots, leases released
  await Promise.all(nodes.filter((child) => child.exitCode === null).map((child) => once(child, "exit")));
  children[0]?.kill("SIGTERM");
  process.exit(0);
}

if (spawnSync("redis-server", ["--version"]).error)
  fail("redis-server is missing: run `apt-get install -y redis-server`");
if (!existsSync(cli)) fail("dist/cli.js is missing: run `npm run build` (npm run cluster does)");
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
// A node that is down, hung or draining (its /readyz fails) gets no new clients:
// a client whose node died lands on a live one at its first reconnect.
const proxy = await RoundRobinProxy.start(
  nodePorts.map((port) => ({ host: "127.0.0.1", port })),
  proxyPort,
  "127.0.0.1",
  { healthPath: "/readyz" },
);
process.stdout.write(
  `\ncluster: redis on ${redisPort}, nodes on ${nodePorts.join(", ")}; ` +
    `open http://localhost:${proxy.port} (CodeMirror) or http://localhost:${proxy.port}/tiptap.html ` +
    `(Tiptap; &provider=hocuspocus or y-websocket), round-robin over the nodes. Ctrl-C stops everything.\n`,
);
