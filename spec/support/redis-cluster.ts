import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { join } from "node:path";
import { Redis } from "ioredis";
import { eventually } from "./eventually.js";
import { killOnExit } from "./exit.js";
import { tempDir } from "./temp.js";

/** One `redis-server --cluster-enabled yes` process of a {@link RedisCluster}. */
export interface RedisClusterNode {
  readonly host: "127.0.0.1";
  readonly port: number;
}

/**
 * A real Redis Cluster on free local ports: 3 masters and 3 replicas (one each), no
 * persistence, `cluster-node-timeout` 1000 ms so a killed master's replica is
 * promoted within a few seconds.
 */
export interface RedisCluster {
  /** Every node, masters and replicas, as `useRedisBackplane({ cluster })` takes them. */
  readonly nodes: readonly RedisClusterNode[];
  /** The ports of the nodes that are masters now (asked of a live node). */
  masters(): Promise<number[]>;
  /** The port of the master that serves `key`'s hash slot now. */
  masterOf(key: string): Promise<number>;
  /**
   * Migrates the hash slot of `key`, with its keys, from the master serving it to the
   * master on `toPort` (CLUSTER SETSLOT IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE),
   * as `redis-cli --cluster reshard` does for each slot.
   */
  moveSlot(key: string, toPort: number): Promise<void>;
  /** SIGKILLs the node on `port` (a master's replica takes over after the node timeout). */
  kill(port: number): void;
  /**
   * Resolves once a replica was promoted for every slot the killed master on `port`
   * served: no live node names it master of anything, and the cluster is ok.
   */
  promoted(port: number, timeoutMs?: number): Promise<void>;
  /** Resolves once every live node reports `cluster_state:ok` and all 16384 slots served. */
  healthy(timeoutMs?: number): Promise<void>;
  /** Stops every node (SIGTERM) and resolves once all exited. Idempotent. */
  stop(): Promise<void>;
}

const MISSING = "redis-server and redis-cli are missing: run `apt-get install -y redis-server`";
/** Masters; each gets `replicas` replicas. */
const MASTERS = 3;
/** A cluster node also listens on its port + 10000 (the cluster bus). */
const BUS_OFFSET = 10_000;

/** Whether `port` can be bound on 127.0.0.1 right now. */
async function bindable(port: number): Promise<boolean> {
  const server = createServer();
  try {
    server.listen(port, "127.0.0.1");
    await once(server, "listening");
    return true;
  } catch {
    return false;
  } finally {
    server.close();
  }
}

/** A port below 55536 whose cluster-bus port (+10000) is free as well. */
async function freeClusterPort(taken: Set<number>): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    if (taken.has(port) || taken.has(port + BUS_OFFSET) || taken.has(port - BUS_OFFSET)) continue;
    if ((await bindable(port)) && (await bindable(port + BUS_OFFSET))) return port;
  }
  throw new Error("could not find free ports for a Redis Cluster node");
}

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("error", (error: NodeJS.ErrnoException) =>
      reject(error.code === "ENOENT" ? new Error(MISSING) : error),
    );
    child.on("exit", (code) =>
      code === 0
        ? resolve(output)
        : reject(new Error(`${command} ${args.join(" ")} exited ${code}: ${output}`)),
    );
  });
}

/** Asks `port` one command and disconnects; rejects when it does not answer within 1 s. */
async function ask(port: number, ...args: string[]): Promise<string> {
  return String(await askRaw(port, ...args));
}

/** {@link ask}, with the reply as it comes (arrays stay arrays). */
async function askRaw(port: number, ...args: string[]): Promise<unknown> {
  const client = new Redis({
    port,
    host: "127.0.0.1",
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    connectTimeout: 1000,
    commandTimeout: 1000,
    retryStrategy: () => null,
  });
  client.on("error", () => undefined); // the command's rejection reports it
  try {
    await client.connect();
    return await client.call(args[0]!, ...args.slice(1));
  } finally {
    client.disconnect();
  }
}

/**
 * Starts 6 `redis-server --cluster-enabled yes` processes (3 with `replicas: 0`) and
 * joins them with `redis-cli --cluster create … --cluster-replicas 1 --cluster-yes`;
 * resolves once the cluster is healthy and every replica has synced with its master.
 */
export async function startRedisCluster(options: { replicas?: 0 | 1 } = {}): Promise<RedisCluster> {
  const replicas = options.replicas ?? 1;
  const dir = tempDir("opstream-redis-cluster-");
  const taken = new Set<number>();
  const ports: number[] = [];
  for (let i = 0; i < MASTERS * (1 + replicas); i++) {
    const port = await freeClusterPort(taken);
    taken.add(port);
    ports.push(port);
  }
  const children = new Map<number, { child: ChildProcess; guard: { release(): void } }>();
  const outputs = new Map<number, string>();
  for (const port of ports) {
    const child = spawn(
      "redis-server",
      [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        join(dir, `nodes-${port}.conf`),
        "--cluster-node-timeout",
        "1000",
        "--dir",
        dir,
        "--save",
        "",
        "--appendonly",
        "no",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    child.on("error", () => undefined); // ENOENT is reported by the wait below, with the fix
    const keep = (chunk: Buffer): void =>
      void outputs.set(port, ((outputs.get(port) ?? "") + chunk.toString()).slice(-4000));
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    children.set(port, { child, guard: killOnExit(child) });
  }

  const stop = async (): Promise<void> => {
    const running = [...children.values()];
    children.clear();
    await Promise.all(
      running.map(async ({ child, guard }) => {
        guard.release();
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = once(child, "exit");
        child.kill("SIGCONT");
        child.kill("SIGTERM");
        await exited;
      }),
    );
  };

  const live = (): number[] =>
    [...children.entries()]
      .filter(([, { child }]) => child.exitCode === null && child.signalCode === null)
      .map(([port]) => port);

  const healthy = async (timeoutMs = 20_000): Promise<void> => {
    await eventually(async () => {
      for (const port of live()) {
        const info = await ask(port, "CLUSTER", "INFO");
        if (!info.includes("cluster_state:ok") || !info.includes("cluster_slots_ok:16384"))
          throw new Error(`node ${port} is not ok yet: ${info.split("\r\n").slice(0, 4).join(" ")}`);
      }
    }, timeoutMs);
  };

  const masters = async (): Promise<number[]> => {
    const nodes = await ask(live()[0]!, "CLUSTER", "NODES");
    return nodes
      .split("\n")
      .filter((line) => line.includes("master") && !line.includes("fail") && !line.includes("noaddr"))
      .map((line) => Number(/:(\d+)@/.exec(line)?.[1]))
      .filter((port) => ports.includes(port));
  };

  const masterOf = async (key: string): Promise<number> => {
    const slot = Number(await ask(live()[0]!, "CLUSTER", "KEYSLOT", key));
    const shards = await ask(live()[0]!, "CLUSTER", "NODES");
    for (const line of shards.split("\n")) {
      if (!line.includes("master") || line.includes("fail")) continue;
      const fields = line.trim().split(" ");
      for (const range of fields.slice(8)) {
        const [from, to = from] = range.split("-").map(Number);
        if (slot >= from! && slot <= to!) return Number(/:(\d+)@/.exec(line)?.[1]);
      }
    }
    throw new Error(`no live master serves slot ${slot} of ${key}`);
  };

  try {
    await eventually(async () => {
      for (const port of ports) {
        const { child } = children.get(port)!;
        if (child.exitCode !== null)
          throw new Error(
            `redis-server on ${port} exited with ${child.exitCode}: ${outputs.get(port) ?? ""}`,
          );
        await ask(port, "PING");
      }
    }, 10_000).catch((error: unknown) => {
      throw [...children.values()].some(({ child }) => child.pid === undefined) ? new Error(MISSING) : error;
    });
    await run("redis-cli", [
      "--cluster",
      "create",
      ...ports.map((port) => `127.0.0.1:${port}`),
      "--cluster-replicas",
      String(replicas),
      "--cluster-yes",
    ]);
    await healthy();
    // Every replica has synced: a master killed right away must not lose its slots' data.
    await eventually(async () => {
      for (const port of ports) {
        const info = await ask(port, "INFO", "replication");
        if (info.includes("role:slave") && !info.includes("master_link_status:up"))
          throw new Error(`replica ${port} has not synced yet`);
      }
    }, 20_000);
  } catch (error) {
    await stop();
    throw error;
  }

  return {
    nodes: ports.map((port) => ({ host: "127.0.0.1" as const, port })),
    masters,
    masterOf,
    async moveSlot(key, toPort) {
      const slot = await ask(live()[0]!, "CLUSTER", "KEYSLOT", key);
      const fromPort = await masterOf(key);
      if (fromPort === toPort) return;
      const [fromId, toId] = await Promise.all([
        ask(fromPort, "CLUSTER", "MYID"),
        ask(toPort, "CLUSTER", "MYID"),
      ]);
      await ask(toPort, "CLUSTER", "SETSLOT", slot, "IMPORTING", fromId);
      await ask(fromPort, "CLUSTER", "SETSLOT", slot, "MIGRATING", toId);
      for (;;) {
        const keys = (await askRaw(fromPort, "CLUSTER", "GETKEYSINSLOT", slot, "100")) as string[];
        if (keys.length === 0) break;
        await ask(fromPort, "MIGRATE", "127.0.0.1", String(toPort), "", "0", "5000", "KEYS", ...keys);
      }
      for (const port of await masters()) await ask(port, "CLUSTER", "SETSLOT", slot, "NODE", toId);
    },
    kill(port) {
      const node = children.get(port);
      if (!node) return;
      node.guard.release();
      children.delete(port);
      node.child.kill("SIGKILL");
    },
    async promoted(port, timeoutMs = 30_000) {
      await eventually(async () => {
        for (const live of [...children.keys()]) {
          const nodes = await ask(live, "CLUSTER", "NODES");
          const line = nodes.split("\n").find((entry) => entry.includes(`:${port}@`));
          const flags = line?.split(" ")[2]?.split(",") ?? [];
          if (flags.includes("master") && !flags.includes("fail"))
            throw new Error(`node ${live} still sees ${port} as a live master`);
          const info = await ask(live, "CLUSTER", "INFO");
          if (!info.includes("cluster_state:ok")) throw new Error(`node ${live} is not ok yet`);
        }
      }, timeoutMs);
    },
    healthy,
    stop,
  };
}
