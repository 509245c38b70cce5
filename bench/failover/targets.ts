/**
 * The cluster the failover bench breaks: three `opstream serve` nodes at their
 * default lease TTL (unless `--lease-ttl-ms` says otherwise) and request timeout,
 * on a store of storage.ts (peers.ts: the Hocuspocus pair). Each node
 * can be killed, terminated, stopped and restarted on its own; the bench's clients
 * ask `isUp` where a load balancer would send them.
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import * as Y from "yjs";
import { spawnServer, type ServerProcess } from "../../spec/support/process.js";
import { Y_WEBSOCKET, type Dialect } from "./client.js";
import type { Nodes } from "./fleet.js";
import { MetricsLedger } from "./metrics.js";
import type { BenchStorage } from "./storage.js";

/** What the CLI uses when `--lease-ttl-ms` / `--request-timeout-ms` are not given, as `--help` states it. */
export interface CliDefaults {
  leaseTtlMs: number;
  requestTimeoutMs: number;
}

const CLI = fileURLToPath(new URL("../../dist/opstream-cli.js", import.meta.url));

/** Reads the defaults from `opstream serve --help` of the build the nodes run. */
export function cliDefaults(): CliDefaults {
  const usage = execFileSync(process.execPath, [CLI, "serve", "--help"], { encoding: "utf8" });
  const read = (flag: string): number => {
    const match = new RegExp(`--${flag} <n>\\n.*default (\\d+)\\)`).exec(usage);
    if (!match) throw new Error(`opstream serve --help states no default for --${flag}:\n${usage}`);
    return Number(match[1]);
  };
  return { leaseTtlMs: read("lease-ttl-ms"), requestTimeoutMs: read("request-timeout-ms") };
}

/** The documents a victim's fault moves, and the one the round is measured on. */
export interface Choice {
  readonly docId: string;
  readonly victim: number;
  readonly affected: readonly string[];
}

export interface FailoverTarget extends Nodes {
  readonly name: string;
  readonly dialect: Dialect;
  /** See `Round`: whether a qualifying delivery must cross between two nodes. */
  readonly crossNode: boolean;
  nodeName(node: number): string;
  /** The server processes running now (for CPU accounting). */
  pids(): number[];
  /** The node to act on in round `index` and the documents that moves; null when none can be picked yet. */
  pick(index: number, docIds: readonly string[]): Promise<Choice | null>;
  /** Sends SIGKILL or SIGTERM; the node counts as down at once. Resolves once it has exited. */
  signal(node: number, signal: "SIGKILL" | "SIGTERM"): Promise<void>;
  /** Starts a node that exited again (opstream: same port and node id); resolves once it listens. */
  restart(node: number): Promise<void>;
  /** SIGSTOP; the node stays "up": a load balancer cannot tell a frozen process. */
  pause(node: number): void;
  resume(node: number): void;
  /** Documents as storage holds them (docId → text), where the target has storage. */
  readStored?(docIds: readonly string[]): Promise<Map<string, string>>;
  /** Who Redis names as the owner of `docId` now ("none" when nobody), where the target has owners. */
  ownerOf?(docId: string): Promise<string>;
  /** Reads every running node's /metrics into the ledger (opstream). */
  scrape?(): Promise<void>;
  readonly ledger?: MetricsLedger;
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------
// opstream

interface OpstreamNode {
  server: ServerProcess;
  incarnation: number;
  down: boolean;
  paused: boolean;
  exited: Promise<void> | undefined;
}

/** Restarting on the same port right after a kill may meet the old socket still closing. */
const RESTART_ATTEMPTS = 5;
/** A SIGTERM drain is bounded by the CLI's drain timeout (10 s); past this the node is killed. */
const EXIT_LIMIT_MS = 30_000;

export interface OpstreamClusterOptions {
  count: number;
  redisUrl: string;
  storage: BenchStorage;
  keyPrefix: string;
  managementToken: string;
  /** Passed to every node as `--lease-ttl-ms`; undefined: the CLI's default (the point of the bench). */
  leaseTtlMs: number | undefined;
}

export class OpstreamCluster implements FailoverTarget {
  readonly name = "opstream";
  readonly dialect = Y_WEBSOCKET;
  readonly crossNode = true;
  readonly ledger = new MetricsLedger();
  private readonly nodes: OpstreamNode[] = [];
  private readonly redis: Redis;

  private constructor(private readonly options: OpstreamClusterOptions) {
    this.redis = new Redis(options.redisUrl, { lazyConnect: true });
  }

  /** Starts `count` nodes, each on a free port. */
  static async start(options: OpstreamClusterOptions): Promise<OpstreamCluster> {
    const cluster = new OpstreamCluster(options);
    try {
      await cluster.redis.connect();
      const servers = await Promise.allSettled(
        Array.from({ length: options.count }, (_, node) => cluster.spawn(node, 0)),
      );
      for (const result of servers) {
        if (result.status === "fulfilled")
          cluster.nodes.push({
            server: result.value,
            incarnation: 0,
            down: false,
            paused: false,
            exited: undefined,
          });
      }
      const failed = servers.find((result) => result.status === "rejected");
      if (failed) throw failed.reason;
      return cluster;
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  }

  get count(): number {
    return this.options.count;
  }

  private spawn(node: number, port: number): Promise<ServerProcess> {
    return spawnServer({
      storage: this.options.storage.location,
      port,
      args: [
        "--redis",
        this.options.redisUrl,
        "--key-prefix",
        this.options.keyPrefix,
        "--node-id",
        this.nodeName(node),
        "--no-sample",
        "--management-token",
        this.options.managementToken,
        // Pure defaults otherwise: loopback clients are under no per-address cap
        // (a trusted peer forwarding no address), and no client types past the
        // per-connection rate limit (the probe's 25 tokens/s per client at most).
        ...(this.options.leaseTtlMs === undefined ? [] : ["--lease-ttl-ms", String(this.options.leaseTtlMs)]),
      ],
    });
  }

  nodeName(node: number): string {
    return `node-${node + 1}`;
  }

  pids(): number[] {
    return this.nodes.flatMap(({ server, down }) =>
      down || server.child.pid === undefined ? [] : [server.child.pid],
    );
  }

  /** The process of `node` now (undefined while it is down). */
  pidOf(node: number): number | undefined {
    const entry = this.node(node);
    return entry.down ? undefined : entry.server.child.pid;
  }

  private node(node: number): OpstreamNode {
    const entry = this.nodes[node];
    if (!entry) throw new Error(`no node ${node}`);
    return entry;
  }

  baseUrl(node: number): string {
    return this.node(node).server.url;
  }

  isUp(node: number): boolean {
    return !this.node(node).down;
  }

  /** Each document's owner (node index), from `<prefix>owner:<doc>`; undefined when none holds it. */
  async owners(docIds: readonly string[]): Promise<(number | undefined)[]> {
    const ids = await this.redis.mget(docIds.map((docId) => `${this.options.keyPrefix}owner:${docId}`));
    return ids.map((id) => {
      const match = /^node-(\d+)$/.exec(id ?? "");
      return match ? Number(match[1]) - 1 : undefined;
    });
  }

  async ownerOf(docId: string): Promise<string> {
    return (await this.redis.get(`${this.options.keyPrefix}owner:${docId}`)) ?? "none";
  }

  /** The longest remaining TTL of any owner key: close below the lease TTL right after a renewal. */
  async ownerKeyPttlMax(docIds: readonly string[]): Promise<number> {
    const ttls = await Promise.all(
      docIds.map((docId) => this.redis.pttl(`${this.options.keyPrefix}owner:${docId}`)),
    );
    return Math.max(...ttls);
  }

  /**
   * Round `index` aims at node `index % count` (so faults spread over the nodes):
   * one of the documents it owns, at random, else any owned document.
   */
  async pick(index: number, docIds: readonly string[]): Promise<Choice | null> {
    const owners = await this.owners(docIds);
    const owned = docIds.flatMap((docId, i) => {
      const owner = owners[i];
      return owner !== undefined && this.isUp(owner) ? [{ docId, owner }] : [];
    });
    const preferred = owned.filter((entry) => entry.owner === index % this.count);
    const choices = preferred.length > 0 ? preferred : owned;
    const choice = choices[Math.floor(Math.random() * choices.length)];
    if (!choice) return null;
    return {
      docId: choice.docId,
      victim: choice.owner,
      affected: owned.filter((entry) => entry.owner === choice.owner).map((entry) => entry.docId),
    };
  }

  signal(node: number, signal: "SIGKILL" | "SIGTERM"): Promise<void> {
    const entry = this.node(node);
    entry.down = true;
    entry.exited = entry.server.stop(signal);
    return entry.exited;
  }

  async restart(node: number): Promise<void> {
    const entry = this.node(node);
    const exited = entry.exited ?? Promise.resolve();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), EXIT_LIMIT_MS)));
    if ((await Promise.race([exited, late])) === "late") {
      process.stderr.write(
        `[failover] ${this.nodeName(node)} had not exited ${EXIT_LIMIT_MS} ms after its signal; SIGKILL\n`,
      );
      entry.server.child.kill("SIGKILL");
      await exited;
    }
    clearTimeout(timer);
    for (let attempt = 1; ; attempt++) {
      try {
        entry.server = await this.spawn(node, entry.server.port);
        break;
      } catch (error) {
        if (attempt >= RESTART_ATTEMPTS) throw error;
        process.stderr.write(
          `[failover] restart of ${this.nodeName(node)} failed (${String(error)}); again\n`,
        );
      }
    }
    entry.incarnation++;
    entry.exited = undefined;
    entry.down = false;
  }

  pause(node: number): void {
    const entry = this.node(node);
    entry.paused = true;
    entry.server.child.kill("SIGSTOP");
  }

  resume(node: number): void {
    const entry = this.node(node);
    entry.server.child.kill("SIGCONT");
    entry.paused = false;
  }

  /**
   * `node`'s /metrics now. Each read also resets the event-loop delay histogram
   * behind prom-client's `nodejs_eventloop_lag_*` gauges: they cover the time since
   * the previous read.
   */
  async metricsText(node: number): Promise<string> {
    const entry = this.node(node);
    const response = await fetch(`${entry.server.httpUrl}/metrics`, {
      headers: { authorization: `Bearer ${this.options.managementToken}` },
      signal: AbortSignal.timeout(5000),
    });
    if (!response.ok) throw new Error(`${this.nodeName(node)} /metrics answered ${response.status}`);
    return response.text();
  }

  async scrape(): Promise<void> {
    await Promise.all(
      this.nodes.map(async (entry, node) => {
        if (entry.down || entry.paused) return;
        this.ledger.record(`${node}/${entry.incarnation}`, await this.metricsText(node));
      }),
    );
  }

  /** Reads each document from the store the nodes share (a connection of its own, reads only). */
  async readStored(docIds: readonly string[]): Promise<Map<string, string>> {
    const store = this.options.storage.open();
    try {
      const texts = new Map<string, string>();
      for (const docId of docIds) {
        const { snapshot, ops } = await store.load(docId);
        const doc = new Y.Doc();
        if (snapshot) Y.applyUpdate(doc, snapshot.state);
        for (const op of ops) Y.applyUpdate(doc, op.update);
        texts.set(docId, doc.getText("t").toString());
        doc.destroy();
      }
      return texts;
    } finally {
      await store.close();
    }
  }

  /** Kills every node (thawing a stopped one first) and closes the Redis connection. */
  async stop(): Promise<void> {
    await Promise.all(
      this.nodes.map(async (entry) => {
        if (entry.paused) this.resume(this.nodes.indexOf(entry));
        await entry.server.stop("SIGKILL");
      }),
    );
    this.redis.disconnect();
  }

  /** Synchronous last resort for process exit: SIGCONT and SIGKILL to every node still running. */
  killNow(): void {
    for (const { server } of this.nodes) {
      if (server.child.exitCode !== null || server.child.signalCode !== null) continue;
      server.child.kill("SIGCONT");
      server.child.kill("SIGKILL");
    }
  }
}
