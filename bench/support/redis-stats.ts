/**
 * What redis-server processes did during a load run: each one's CPU from
 * /proc/<pid>/stat (its pid from `INFO server`), and its counters from `INFO stats`,
 * `INFO commandstats` and, on a Redis Cluster node, `CLUSTER INFO`, as rates over the
 * window, and how many of opstream's node and document channels each master serves.
 * Cluster masters are labelled `m1`, `m2`, … by the lowest hash slot they
 * serve (so a label means the same slots in every repetition) and a replica
 * `<master>r`; a lone server is `redis`.
 *
 * The sampler's own commands (a handful of INFO per window) are counted with the rest.
 */
import { Redis } from "ioredis";
import { cpuSeconds } from "./proc-stats.js";

/** One process's counters at one moment. */
interface Counters {
  readonly cpuSeconds: number;
  readonly commands: number;
  readonly netBytes: number;
  /** Calls per command name (`publish`, `spublish`, `evalsha`, …). */
  readonly calls: ReadonlyMap<string, number>;
  /** Cluster-bus messages sent (0 outside a cluster). */
  readonly busMessages: number;
}

interface Node {
  readonly label: string;
  readonly master: boolean;
  /** A Redis Cluster node (`redis_mode:cluster`): it has cluster-bus counters. */
  readonly cluster: boolean;
  readonly pid: number;
  readonly client: Redis;
}

/** Node channels (`<prefix>node:<id>`) and document channels (`<prefix>doc:<id>`) with a subscriber. */
interface Channels {
  readonly node: number;
  readonly doc: number;
}

/** `key:value` lines of an INFO or CLUSTER INFO answer. */
function fields(text: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of text.split("\r\n")) {
    const at = line.indexOf(":");
    if (at > 0 && !line.startsWith("#")) map.set(line.slice(0, at), line.slice(at + 1));
  }
  return map;
}

function numberOf(map: ReadonlyMap<string, string>, key: string, what: string): number {
  const value = Number(map.get(key));
  if (!Number.isFinite(value)) throw new Error(`${what} has no number ${key}`);
  return value;
}

async function counters(node: Node): Promise<Counters> {
  const [stats, commandstats] = await Promise.all([
    node.client.info("stats"),
    node.client.info("commandstats"),
  ]);
  const { cluster } = node;
  const bus = cluster ? fields(String(await node.client.call("CLUSTER", "INFO"))) : new Map<string, string>();
  const stat = fields(stats);
  const calls = new Map<string, number>();
  // cmdstat_publish:calls=12,usec=40,usec_per_call=3.33,rejected_calls=0,failed_calls=0
  for (const [key, value] of fields(commandstats)) {
    const count = /(?:^|,)calls=(\d+)/.exec(value)?.[1];
    if (key.startsWith("cmdstat_") && count !== undefined) calls.set(key.slice(8), Number(count));
  }
  return {
    cpuSeconds: cpuSeconds(node.pid),
    commands: numberOf(stat, "total_commands_processed", "INFO stats"),
    netBytes:
      numberOf(stat, "total_net_input_bytes", "INFO stats") +
      numberOf(stat, "total_net_output_bytes", "INFO stats"),
    calls,
    busMessages: cluster ? numberOf(bus, "cluster_stats_messages_sent", "CLUSTER INFO") : 0,
  };
}

function connect(port: number): Redis {
  const client = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0 });
  // Failures reach the caller as rejected commands; a broken link after the run is not the bench's.
  client.on("error", (error: Error) => process.stderr.write(`redis-stats ${port}: ${error.message}\n`));
  return client;
}

/** Names the processes on `ports` (see the module comment) and finds their pids. */
async function identify(ports: readonly number[]): Promise<Node[]> {
  const found = await Promise.all(
    ports.map(async (port) => {
      const client = connect(port);
      await client.connect();
      const server = fields(await client.info("server"));
      const replication = fields(await client.info("replication"));
      const master = replication.get("role") === "master";
      const cluster = server.get("redis_mode") === "cluster";
      let lowestSlot = 0;
      if (cluster && master) {
        const me = String(await client.call("CLUSTER", "NODES"))
          .split("\n")
          .find((line) => line.includes("myself"));
        // <id> <addr> <flags> <master> <ping> <pong> <epoch> <state> <slot ranges…>
        lowestSlot = Math.min(...(me?.trim().split(" ").slice(8) ?? []).map((r) => Number(r.split("-")[0])));
      }
      const pid = numberOf(server, "process_id", `INFO server of ${port}`);
      const masterPort = Number(replication.get("master_port"));
      return { port, client, pid, master, lowestSlot, masterPort, cluster };
    }),
  );
  const masters = found.filter((n) => n.master).sort((a, b) => a.lowestSlot - b.lowestSlot);
  const labelOf = (port: number): string =>
    found.length === 1 ? "redis" : `m${masters.findIndex((m) => m.port === port) + 1}`;
  return found.map((n) => ({
    label: n.master ? labelOf(n.port) : `${labelOf(n.masterPort)}r`,
    master: n.master,
    cluster: n.cluster,
    pid: n.pid,
    client: n.client,
  }));
}

/** The channels `node` serves (a replica: none; its master serves its shard's subscribers). */
async function channels(node: Node): Promise<Channels> {
  if (!node.master) return { node: 0, doc: 0 };
  const names = (await node.client.call("PUBSUB", node.cluster ? "SHARDCHANNELS" : "CHANNELS")) as string[];
  const count = (kind: string): number => names.filter((name) => name.includes(`${kind}:`)).length;
  return { node: count("node"), doc: count("doc") };
}

/** Samples redis-server processes from `start()` until `stop()`. */
export class RedisSampler {
  private constructor(
    private readonly nodes: readonly Node[],
    private readonly before: readonly Counters[],
    private readonly channels: readonly Channels[],
    private readonly startedAt: number,
  ) {}

  /** `ports`: every redis-server to sample (a cluster's masters and replicas). */
  static async start(ports: readonly number[]): Promise<RedisSampler> {
    const nodes = await identify(ports);
    try {
      const served = await Promise.all(nodes.map(channels));
      const before = await Promise.all(nodes.map(counters));
      return new RedisSampler(nodes, before, served, performance.now());
    } catch (error) {
      for (const node of nodes) node.client.disconnect();
      throw error;
    }
  }

  /**
   * Rates over the window, per process `redis.<label>.<what>` (`cpu` in cores,
   * `commandsPerSec`, `publishesPerSec`: PUBLISH + SPUBLISH calls, `netKBPerSec` in +
   * out, `busMessagesPerSec`, `calls.<command>` per second, `master` 1 or 0,
   * `nodeChannels` and `docChannels` at the start), and over
   * the masters `busiestCpu`, `busiestCommandsPerSec`, `busiestPublishesPerSec` (each
   * the highest of any master) and `redisCpu`, `redisCommandsPerSec`, `redisPublishesPerSec`
   * (all processes together).
   */
  async stop(): Promise<Record<string, number>> {
    try {
      const after = await Promise.all(this.nodes.map(counters));
      const seconds = (performance.now() - this.startedAt) / 1000;
      const numbers: Record<string, number> = {};
      const totals = { cpu: 0, commands: 0, publishes: 0 };
      const busiest = { cpu: 0, commands: 0, publishes: 0 };
      this.nodes.forEach((node, i) => {
        const [then, now] = [this.before[i]!, after[i]!];
        const rate = (n: number): number => n / seconds;
        const callsOf = (name: string): number => (now.calls.get(name) ?? 0) - (then.calls.get(name) ?? 0);
        const own = {
          cpu: rate(now.cpuSeconds - then.cpuSeconds),
          commands: rate(now.commands - then.commands),
          publishes: rate(callsOf("publish") + callsOf("spublish")),
        };
        const key = `redis.${node.label}`;
        numbers[`${key}.master`] = node.master ? 1 : 0;
        numbers[`${key}.cpu`] = own.cpu;
        numbers[`${key}.commandsPerSec`] = own.commands;
        numbers[`${key}.publishesPerSec`] = own.publishes;
        numbers[`${key}.netKBPerSec`] = rate(now.netBytes - then.netBytes) / 1024;
        numbers[`${key}.busMessagesPerSec`] = rate(now.busMessages - then.busMessages);
        numbers[`${key}.nodeChannels`] = this.channels[i]!.node;
        numbers[`${key}.docChannels`] = this.channels[i]!.doc;
        for (const name of now.calls.keys())
          if (callsOf(name) > 0) numbers[`${key}.calls.${name}`] = rate(callsOf(name));
        for (const what of ["cpu", "commands", "publishes"] as const) {
          totals[what] += own[what];
          if (node.master) busiest[what] = Math.max(busiest[what], own[what]);
        }
      });
      return {
        ...numbers,
        redisSeconds: seconds,
        redisCpu: totals.cpu,
        redisCommandsPerSec: totals.commands,
        redisPublishesPerSec: totals.publishes,
        busiestCpu: busiest.cpu,
        busiestCommandsPerSec: busiest.commands,
        busiestPublishesPerSec: busiest.publishes,
      };
    } finally {
      await Promise.allSettled(this.nodes.map((node) => node.client.quit()));
    }
  }
}
