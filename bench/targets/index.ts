/**
 * The benchmark targets. Each start gives fresh processes on fresh storage (and, for
 * 2-node targets, a redis-server of their own), so repetitions do not inherit each
 * other's documents or heap. opstream persists every update before it broadcasts it
 * (SQLite); the peers keep documents in memory only, except in S4 (`persist`).
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { startRedis, type RedisServer } from "../../spec/support/redis.js";
import { startRedisCluster } from "../../spec/support/redis-cluster.js";
import { RedisSampler } from "../support/redis-stats.js";
import { tempDir } from "../../spec/support/temp.js";
import { startOpstream, startPeer, type NodeProcess } from "./processes.js";

/** Which wire format the generator speaks to a target. */
export type Dialect = "y-websocket" | "hocuspocus";

export interface RunningTarget {
  readonly dialect: Dialect;
  /** Keeps no document (the relay): a fresh client's sync returns nothing, so convergence cannot be checked. */
  readonly stateless: boolean;
  /** `ws://127.0.0.1:<port>` of each node: y-websocket documents are at `<url>/<name>`, Hocuspocus's endpoint is the URL itself. */
  urls(): string[];
  /** The server processes to sample (not redis-server). */
  pids(): number[];
  /**
   * Starts sampling what the nodes share (their redis-server processes) over a load
   * run; `stop()` gives the numbers (support/redis-stats.ts). Absent: nothing shared.
   */
  sampleShared?(): Promise<{ stop(): Promise<Record<string, number>> }>;
  /** Stops every node gracefully (SIGTERM: persisting servers flush) and starts them again on the same storage. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface Target {
  readonly name: string;
  readonly nodes: 1 | 2;
  /** Whether the target can keep a document across a restart (S4). */
  readonly canPersist: boolean;
  /**
   * The calibration target (the stateless relay): its S1 latency is what the generator,
   * loopback and a trivial forwarder cost, so the runner adds it to every S1 run.
   */
  readonly calibration?: boolean;
  /** `persist`: peers keep documents in files (S4 only); opstream always persists. */
  start(options: { persist: boolean }): Promise<RunningTarget>;
}

/** What a target's nodes share: stopped after them, and sampled over load runs if it can be. */
interface Shared extends Pick<RunningTarget, "sampleShared"> {
  stop(): Promise<void>;
}

/** A target made of `count` nodes started by `startNode(index)`, plus what they share. */
async function cluster(
  { dialect, stateless = false }: { dialect: Dialect; stateless?: boolean },
  count: number,
  startNode: (index: number) => Promise<NodeProcess>,
  shared: Shared = { stop: () => Promise.resolve() },
): Promise<RunningTarget> {
  let nodes: NodeProcess[] = [];
  const startAll = async (): Promise<void> => {
    nodes = await Promise.all(Array.from({ length: count }, (_, index) => startNode(index)));
  };
  const stopAll = async (): Promise<void> => {
    await Promise.all(nodes.map((node) => node.stop("SIGTERM")));
  };
  try {
    await startAll();
  } catch (error) {
    await stopAll().finally(() => shared.stop());
    throw error;
  }
  return {
    dialect,
    stateless,
    urls: () => nodes.map((node) => `ws://127.0.0.1:${node.port}`),
    pids: () => nodes.map((node) => node.pid),
    ...(shared.sampleShared && { sampleShared: shared.sampleShared }),
    async restart() {
      await stopAll();
      await startAll();
    },
    async stop() {
      await stopAll().finally(() => shared.stop());
    },
  };
}

const sharedRedis = (redis: RedisServer): Shared => ({
  stop: () => redis.stop(),
  sampleShared: () => RedisSampler.start([redis.port]),
});

/** 2 opstream nodes on one SQLite file and a fresh key prefix; `backplane`: their --redis or --redis-cluster. */
function opstreamPair(backplane: readonly string[], shared: Shared): Promise<RunningTarget> {
  const storage = join(tempDir("opstream-bench-"), "bench.sqlite");
  const args = [...backplane, "--key-prefix", `bench-${randomUUID().slice(0, 8)}:`];
  return cluster({ dialect: "y-websocket" }, 2, () => startOpstream(storage, args), shared);
}

export const TARGETS: readonly Target[] = [
  {
    name: "opstream",
    nodes: 1,
    canPersist: true,
    start() {
      const storage = join(tempDir("opstream-bench-"), "bench.sqlite");
      return cluster({ dialect: "y-websocket" }, 1, () => startOpstream(storage));
    },
  },
  {
    // The same with SQLite's synchronous = NORMAL: commits reach the OS before a
    // broadcast (a process crash loses nothing) but are not fsynced each time.
    name: "opstream-normal",
    nodes: 1,
    canPersist: true,
    start() {
      const storage = join(tempDir("opstream-bench-"), "bench.sqlite");
      return cluster({ dialect: "y-websocket" }, 1, () =>
        startOpstream(storage, ["--sqlite-synchronous", "normal"]),
      );
    },
  },
  {
    // History off (`--no-history`): what recording who edits costs per op.
    name: "opstream-no-history",
    nodes: 1,
    canPersist: true,
    start() {
      const storage = join(tempDir("opstream-bench-"), "bench.sqlite");
      return cluster({ dialect: "y-websocket" }, 1, () => startOpstream(storage, ["--no-history"]));
    },
  },
  {
    // Automatic versions as often as they go: a version of each busy document every
    // second (the defaults take one after 2 min of quiet, never within a 10 s run).
    name: "opstream-busy-history",
    nodes: 1,
    canPersist: true,
    start() {
      const storage = join(tempDir("opstream-bench-"), "bench.sqlite");
      const args = ["--history-quiet-ms", "0", "--history-min-interval-ms", "1000"];
      return cluster({ dialect: "y-websocket" }, 1, () => startOpstream(storage, args));
    },
  },
  {
    name: "opstream-2n",
    nodes: 2,
    canPersist: true,
    async start() {
      const redis = await startRedis();
      return opstreamPair(["--redis", redis.url], sharedRedis(redis));
    },
  },
  {
    name: "hocuspocus",
    nodes: 1,
    canPersist: true,
    start({ persist }) {
      const args = persist ? ["--persist-dir", tempDir("hocuspocus-bench-")] : [];
      return cluster({ dialect: "hocuspocus" }, 1, () => startPeer("hocuspocus-server", args));
    },
  },
  {
    name: "hocuspocus-2n",
    nodes: 2,
    canPersist: false,
    async start() {
      const redis = await startRedis();
      const args = ["--redis", redis.url];
      return cluster(
        { dialect: "hocuspocus" },
        2,
        () => startPeer("hocuspocus-server", args),
        sharedRedis(redis),
      );
    },
  },
  {
    name: "y-websocket",
    nodes: 1,
    canPersist: true,
    start({ persist }) {
      const args = persist ? ["--persist-dir", tempDir("y-websocket-bench-")] : [];
      return cluster({ dialect: "y-websocket" }, 1, () => startPeer("y-websocket-server", args));
    },
  },
  {
    name: "relay",
    nodes: 1,
    canPersist: false,
    calibration: true,
    start: () => cluster({ dialect: "y-websocket", stateless: true }, 1, () => startPeer("relay-server")),
  },
];

/**
 * opstream-2n on a Redis Cluster of its own (3 masters, each with `replicas`
 * replicas; spec/support/redis-cluster.ts) through `--redis-cluster`: sharded
 * pub/sub, keys hash-tagged by document. For bench/scale-out.ts; not in {@link TARGETS}.
 */
export const opstream2nRedisCluster = (replicas: 0 | 1): Target => ({
  name: "opstream-2n-cluster",
  nodes: 2,
  canPersist: true,
  async start() {
    const redis = await startRedisCluster({ replicas });
    const ports = redis.nodes.map((node) => node.port);
    const seeds = redis.nodes.map((node) => `${node.host}:${node.port}`).join(",");
    return opstreamPair(["--redis-cluster", seeds], {
      stop: () => redis.stop(),
      sampleShared: () => RedisSampler.start(ports),
    });
  },
});
