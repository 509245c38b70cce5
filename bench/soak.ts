/**
 * Soak (issue #8): a 3-node cluster of real `opstream serve` processes (Redis
 * backplane, Postgres storage, fault proxies on every link) under steady editing
 * load for N minutes, with a fault injected about every 3 minutes. Not run in CI.
 *
 *   npm run soak -- --minutes 60
 *
 * 1. Baseline, 60 s, no faults: issue #7's S1 profile (50 documents x 10 clients,
 *    each sending a small update twice a second), on one node as #7 defines it: every
 *    S1 client connects to node-1, which owns the S1 documents. Its p99 is "S1 p99".
 * 2. Soak: 500 clients over 200 documents (seated by SEATING below: every document
 *    has clients on 2 or 3 nodes, a third owned by each node, and no fault moves a
 *    document to or from node-1), each setting its own entry of the
 *    document's map "m" about every 2 s. Every value carries its sender's wall-clock
 *    time; the other clients of the document record send->apply latency when the
 *    update reaches them. Overwriting keeps each document's size stationary (Yjs
 *    merges a client's overwritten entries), so a rising heap means a leak rather
 *    than documents that grow by design (appending text grows them ~30 MB/h).
 *    Every 2 minutes 10 random documents are audited for divergence; every ~3
 *    minutes (first after 2) one fault is injected and healed: node-3 killed,
 *    stopped, cut off from Redis or cut off from Postgres, or every node's Redis
 *    links reset. Every node's
 *    /metrics is sampled every 5 s; once a minute node-1 (never faulted) is made to
 *    collect garbage through its inspector and its retained heap is read; every 5
 *    minutes from minute 5 (and 30 s before the end) a heap snapshot of node-1 is
 *    taken. The verdict's heap slope is fitted through the snapshots' data: their
 *    size without what the JIT holds (code, bytecode, their metadata, feedback, and
 *    the dependent-code lists), which grows as faults warm up new paths and
 *    optimized code is replaced and is bounded by the program, not by time or data.
 *    The per-minute slopes (without code and bytecode, without the code spaces,
 *    with everything) are printed next to it. Latencies around a snapshot's pause
 *    (~3.5 s) are left out of "steady", as are faults'.
 * 3. Writers stop, everything is healed, and all 200 documents are audited.
 *
 * Prints one line per minute and a summary, writes bench/results/soak-<time>.json,
 * and exits 0 when the verdict passes: zero divergence, steady p99 <= 2 x S1 p99,
 * and (runs of 30 minutes or more) node-1's heap slope < 1 %/h.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import * as Y from "yjs";
import { startCluster, type Cluster } from "../spec/support/cluster.js";
import { eventually } from "../spec/support/eventually.js";
import { stopSharedPostgres } from "../spec/support/postgres.js";
import { HeapProbe } from "./support/heap-probe.js";
import { summarizeHeapSnapshot, type HeapSummary } from "./support/heap-snapshot.js";
import { ReconnectingClient, REMOTE } from "./support/reconnecting-client.js";
import { heapSlope, summarize, type Percentiles } from "./support/soak-stats.js";
import { connect } from "./support/y-websocket-client.js";

const NODES = 3;
/**
 * 10 s, not the 5 s of runs 1-3: a heap snapshot pauses node-1 for about 3.5 s,
 * which must not outlast the time left on its leases (renewed every TTL / 3).
 */
const LEASE_TTL_MS = 10_000;
const SOAK = { docs: 200, clients: 500, intervalMs: 2000 } as const;
const S1 = { docs: 50, clients: 500, intervalMs: 500, seconds: 60 } as const;
const AUDIT = { everyMs: 120_000, docs: 10, limitMs: 15_000, finalLimitMs: 30_000 } as const;
const FAULT = { firstMs: 120_000, everyMs: 180_000, jitterMs: 30_000, linkCutMs: 5000 } as const;
/** Latencies sent or received this long after a fault was healed are not "steady". */
const STEADY_GAP_MS = 30_000;
const METRICS_EVERY_MS = 5000;
const RETAINED_EVERY_MS = 60_000;
/** A snapshot pauses node-1 (~3.5 s); latencies this long after it are not "steady". */
const SNAPSHOT_GAP_MS = 5000;
/** Constructors counted in each snapshot: placement (sessions) and per-client state. */
const COUNTED = ["DocumentSession", "RelayDocument", "RemoteClient", "Doc"] as const;
/** Probe documents per fault whose recovery is timed. */
const PROBE_DOCS = 5;
const PROBE_LIMIT_MS = 60_000;
const CONNECT_LIMIT_MS = 60_000;
const DRAIN_LIMIT_MS = 120_000;
/** Nodes unload a document this long after its last client left: the baseline's go before the soak. */
const IDLE_MS = 15_000;
const FRESH_LOADS_AT_ONCE = 20;

const { values: args } = parseArgs({ options: { minutes: { type: "string", default: "60" } } });
const MINUTES = Number(args.minutes);
if (!Number.isFinite(MINUTES) || MINUTES < 1)
  throw new Error(`--minutes wants a number >= 1, got ${args.minutes}`);
/**
 * node-1's heap snapshots, the heap verdict's points: every 5 minutes from minute 5
 * and 30 s before the end (every minute in runs under 30 minutes).
 */
const SNAPSHOT_EVERY_MS = MINUTES >= 30 ? 300_000 : 60_000;

/** Wall-clock milliseconds with sub-ms precision, comparable between sender and receivers. */
const wallNow = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const fmt = (ms: number | null | undefined, digits = 1): string => (ms == null ? "-" : ms.toFixed(digits));
const MARK = /(\d+)@(\d+(?:\.\d+)?);/g;

// ---------------------------------------------------------------------------
// Latency recording

interface FaultWindow {
  from: number;
  to: number;
}

class Latencies {
  readonly all: number[] = [];
  readonly steady: number[] = [];
  readonly byMinute: number[][] = [];
  startedAt = wallNow();

  constructor(private readonly windows: readonly FaultWindow[] = []) {}

  record(sentAt: number, receivedAt: number): void {
    const latency = receivedAt - sentAt;
    this.all.push(latency);
    const minute = Math.max(0, Math.floor((receivedAt - this.startedAt) / 60_000));
    (this.byMinute[minute] ??= []).push(latency);
    const disturbed = this.windows.some(
      (w) => (sentAt >= w.from && sentAt <= w.to) || (receivedAt >= w.from && receivedAt <= w.to),
    );
    if (!disturbed) this.steady.push(latency);
  }
}

// ---------------------------------------------------------------------------
// Clients and writers

interface Member {
  readonly index: number;
  readonly node: number;
  readonly docId: string;
  readonly client: ReconnectingClient;
  timer: NodeJS.Timeout | undefined;
}

/** Where a client connects, and in which wave: wave 0 connects (and syncs) first. */
interface Seat {
  readonly node: number;
  readonly docId: string;
  readonly wave: 0 | 1;
}

/** Clients placed by a seating plan, with their writers. */
class Fleet {
  readonly members: Member[] = [];
  readonly byDoc = new Map<string, Member[]>();
  readonly paused = new Set<string>();
  sent = 0;
  private running = false;

  constructor(
    private readonly cluster: Cluster,
    private readonly clients: number,
    private readonly seat: (index: number) => Seat,
    private readonly intervalMs: number,
    private readonly latencies: Latencies,
    private readonly addressBlock: number,
  ) {}

  /**
   * Connects the clients wave by wave, each wave waiting up to `limitMs` to sync, so
   * the first wave's nodes become the owners of their documents (a document is
   * owned by the node where its first client arrives).
   */
  async open(limitMs: number, what: string): Promise<void> {
    for (const wave of [0, 1] as const) {
      const before = this.members.length;
      for (let index = 0; index < this.clients; index++) {
        const seat = this.seat(index);
        if (seat.wave === wave) this.add(index, seat);
      }
      if (this.members.length > before) await this.synced(limitMs, `${what} (wave ${wave})`);
    }
  }

  private add(index: number, { node, docId }: Seat): void {
    const server = this.cluster.nodes[node];
    if (!server) throw new Error(`no node ${node}`);
    // A node keeps its port across restarts, so the URL stays valid.
    // One source address per client, as real users have. (Loopback peers that
    // forward no client address are exempt from the per-address cap since
    // transport.trustProxy's defaults; distinct addresses keep the soak realistic.)
    const client = new ReconnectingClient(server.url, docId, {
      localAddress: `127.${this.addressBlock}.${Math.floor(index / 250)}.${(index % 250) + 1}`,
    });
    client.doc.on("update", (update: Uint8Array, origin: unknown) => {
      if (origin === REMOTE) this.measure(update);
    });
    const member: Member = { index, node, docId, client, timer: undefined };
    this.members.push(member);
    const list = this.byDoc.get(docId) ?? [];
    list.push(member);
    this.byDoc.set(docId, list);
  }

  get docIds(): string[] {
    return [...this.byDoc.keys()];
  }

  /**
   * Waits up to `limitMs` for every client to sync. An overloaded cluster is a
   * result, not a crash: the run goes on and the count is printed.
   */
  private async synced(limitMs: number, what: string): Promise<void> {
    const started = performance.now();
    try {
      await withTimeout(
        Promise.all(this.members.map((m) => m.client.whenSynced())),
        limitMs,
        "clients to sync",
      );
      console.log(
        `[soak] ${what}: ${this.members.length} clients synced in ${Math.round(performance.now() - started)} ms`,
      );
    } catch {
      const lastError = this.members.find((m) => m.client.lastError)?.client.lastError?.message;
      console.log(
        `[soak] ${what}: only ${this.countSynced()}/${this.members.length} clients synced in ${limitMs} ms ` +
          `(close codes ${JSON.stringify(this.socketStats().closeCodes)}, last socket error: ${lastError ?? "none"}); going on`,
      );
    }
  }

  countSynced(): number {
    return this.members.filter((m) => m.client.synced).length;
  }

  start(): void {
    this.running = true;
    for (const member of this.members) {
      member.timer = setTimeout(() => this.tick(member), Math.random() * this.intervalMs);
    }
  }

  stop(): void {
    this.running = false;
    for (const member of this.members) clearTimeout(member.timer);
  }

  close(): void {
    this.stop();
    for (const member of this.members) member.client.close();
  }

  /** Reconnects and errors summed over every client. */
  socketStats(): { reconnects: number; errors: number; closeCodes: Record<number, number> } {
    let reconnects = 0;
    let errors = 0;
    const closeCodes: Record<number, number> = {};
    for (const { client } of this.members) {
      reconnects += client.reconnects;
      errors += client.errors;
      for (const [code, count] of client.closeCodes) closeCodes[code] = (closeCodes[code] ?? 0) + count;
    }
    return { reconnects, errors, closeCodes };
  }

  private tick(member: Member): void {
    if (!this.running) return;
    // Offline clients keep editing, as people do: the next sync delivers the edits.
    if (!this.paused.has(member.docId)) {
      member.client.doc.getMap("m").set(String(member.index), `${member.index}@${wallNow().toFixed(1)};`);
      this.sent++;
    }
    member.timer = setTimeout(() => this.tick(member), this.intervalMs * (0.5 + Math.random()));
  }

  /** Decodes the applied update rather than reading the map, which would cost O(document). */
  private measure(update: Uint8Array): void {
    const receivedAt = wallNow();
    for (const struct of Y.decodeUpdate(update).structs) {
      if (!(struct instanceof Y.Item) || !(struct.content instanceof Y.ContentAny)) continue;
      for (const value of struct.content.arr) {
        if (typeof value !== "string") continue;
        for (const match of value.matchAll(MARK)) this.latencies.record(Number(match[2]), receivedAt);
      }
    }
  }
}

/**
 * The soak's seating. Document d's clients are client d, d + 200 and (d < 100) d + 400;
 * the first connects in wave 0, so its node owns the document. Thirds of the
 * documents by d % 3:
 *
 * | d % 3 | owner  | other clients    | node-1's role |
 * |-------|--------|------------------|---------------|
 * | 0     | node-1 | node-2, node-3   | owner         |
 * | 1     | node-2 | node-1, node-3   | relay         |
 * | 2     | node-3 | node-2 (x2)      | none          |
 *
 * Only node-3 is killed, stopped or cut off (node-1 is measured; the Redis reset
 * hits everyone), and node-1 has no clients of node-3's documents.
 * So no fault moves a document to or from node-1: its owned and relayed documents
 * stay the same for the whole run, and its heap measures leaks, not placement.
 * With every document's clients round-robin over the nodes (the first runs), each
 * kill or stop of another node handed node-1 more documents for good (ownership
 * does not move back; 59 -> 146 owned sessions in the second half hour of a run),
 * which grew its heap by design. A Postgres cut for every node did the same (every
 * session closes; each document lands where a client reconnects first): node-1
 * owned 53 to 78 documents in run 3, so the cut is node-3's alone.
 */
const SEATING: readonly (readonly [number, number, number])[] = [
  [0, 1, 2],
  [1, 0, 2],
  [2, 1, 1],
];
const FAULTED_NODE = 2;

function soakSeat(index: number): Seat {
  const doc = index % SOAK.docs;
  const slot = Math.min(2, Math.floor(index / SOAK.docs));
  const node = SEATING[doc % 3]?.[slot];
  if (node === undefined) throw new Error(`no seat for client ${index}`);
  return { node, docId: `soak-${doc}`, wave: slot === 0 ? 0 : 1 };
}

// ---------------------------------------------------------------------------
// Divergence audits

interface AuditResult {
  docId: string;
  converged: boolean;
  ms: number;
  reason?: string;
}

/** The probes' text and the map's entries (sorted: entry order differs between replicas). */
function contentOf(doc: Y.Doc): string {
  const entries = Object.entries(doc.getMap("m").toJSON()).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify({ t: doc.getText("t").toString(), m: entries });
}

function stateOf(doc: Y.Doc): { vector: string; text: string } {
  return { vector: Buffer.from(Y.encodeStateVector(doc)).toString("base64"), text: contentOf(doc) };
}

type DocState = { vector: string; text: string };

/**
 * Waits until every client of `docId` is synced, holds no pending structs, and has
 * the same state vector and text as the others. Writers must be paused.
 */
function converged(fleet: Fleet, docId: string, limitMs: number): Promise<DocState> {
  const members = fleet.byDoc.get(docId) ?? [];
  return eventually(
    () => {
      let vector: string | undefined;
      for (const { client, node } of members) {
        if (!client.synced) throw new Error(`a client on node-${node + 1} is not connected and synced`);
        const store = client.doc.store;
        if (store.pendingStructs !== null || store.pendingDs !== null) {
          throw new Error(`a client on node-${node + 1} holds pending structs (a gap)`);
        }
        const own = Buffer.from(Y.encodeStateVector(client.doc)).toString("base64");
        vector ??= own;
        if (own !== vector) throw new Error("clients' state vectors differ");
      }
      // Contents only once the vectors agree: building them is the costly part.
      const texts = new Set(members.map((m) => contentOf(m.client.doc)));
      if (texts.size !== 1 || vector === undefined)
        throw new Error("clients' state vectors match but texts differ");
      return { vector, text: [...texts][0] ?? "" };
    },
    limitMs,
    250,
  );
}

/** A fresh client loading `docId` through node-1 must see `expected`. */
function freshLoadMatches(
  cluster: Cluster,
  docId: string,
  expected: DocState,
  limitMs: number,
): Promise<void> {
  const started = performance.now();
  return eventually(
    async () => {
      const node1 = cluster.nodes[0];
      if (!node1) throw new Error("no node-1");
      const fresh = connect(node1.url, docId);
      try {
        const left = Math.max(1000, limitMs - (performance.now() - started));
        await withTimeout(fresh.synced, left, "fresh load through node-1");
        const loaded = stateOf(fresh.doc);
        if (loaded.vector !== expected.vector || loaded.text !== expected.text) {
          throw new Error(
            `a fresh load through node-1 differs from the clients (${loaded.text.length} vs ${expected.text.length} characters)`,
          );
        }
      } finally {
        await fresh.close();
      }
    },
    limitMs,
    250,
  );
}

/**
 * Pauses the writers of `docIds`, waits (all at once) for each document's clients
 * to converge within `limitMs`, then checks a fresh load of each converged one
 * through node-1 (a few at a time, `limitMs` each), and resumes the writers.
 */
async function auditDocs(
  fleet: Fleet,
  cluster: Cluster,
  docIds: readonly string[],
  limitMs: number,
): Promise<AuditResult[]> {
  for (const docId of docIds) fleet.paused.add(docId);
  const started = performance.now();
  const failure = (docId: string, error: unknown): AuditResult => ({
    docId,
    converged: false,
    ms: Math.round(performance.now() - started),
    reason: error instanceof Error ? error.message : String(error),
  });
  try {
    const states = await Promise.all(
      docIds.map((docId) =>
        converged(fleet, docId, limitMs).then(
          (state) => ({ docId, state, ms: Math.round(performance.now() - started) }),
          (error: unknown) => failure(docId, error),
        ),
      ),
    );
    const results: AuditResult[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < states.length) {
        const entry = states[next++];
        if (!entry) continue;
        if (!("state" in entry)) {
          results.push(entry);
          continue;
        }
        try {
          await freshLoadMatches(cluster, entry.docId, entry.state, limitMs);
          results.push({ docId: entry.docId, converged: true, ms: entry.ms });
        } catch (error) {
          results.push(failure(entry.docId, error));
        }
      }
    };
    await Promise.all(Array.from({ length: FRESH_LOADS_AT_ONCE }, worker));
    return results;
  } finally {
    for (const docId of docIds) fleet.paused.delete(docId);
  }
}

// ---------------------------------------------------------------------------
// Faults

type FaultKind = "kill" | "stop" | "redis-cut" | "redis-reset-all" | "postgres-cut";
const FAULT_KINDS: readonly FaultKind[] = ["kill", "stop", "redis-cut", "redis-reset-all", "postgres-cut"];

interface FaultRecord {
  kind: FaultKind;
  /** The faulted node (1-based), or "all". */
  target: string;
  startedAtS: number;
  healedAtS: number;
  /**
   * From the heal until a probe insert, made at the heal by a client of the faulted
   * node, reached every other client of its document (max over the probed documents).
   */
  recoveryMs: number | null;
  probeFailures: number;
}

const stoppedNodes = new Set<number>();

async function injectFault(
  cluster: Cluster,
  fleet: Fleet,
  windows: FaultWindow[],
  soakStart: number,
): Promise<FaultRecord> {
  const kind = FAULT_KINDS[Math.floor(Math.random() * FAULT_KINDS.length)] ?? "kill";
  const node = FAULTED_NODE; // see SEATING
  const target = kind === "redis-reset-all" ? "all" : `node-${node + 1}`;
  const window: FaultWindow = { from: wallNow(), to: Infinity };
  windows.push(window);
  const startedAtS = (window.from - soakStart) / 1000;
  console.log(`[soak] ${fmtClock(startedAtS)} fault ${kind} ${target}`);
  switch (kind) {
    case "kill":
      await cluster.restart(node); // SIGKILL, then the same command on the same port
      break;
    case "stop": {
      const child = cluster.nodes[node]?.child;
      if (!child) throw new Error(`no node ${node}`);
      child.kill("SIGSTOP");
      stoppedNodes.add(node);
      await sleep(2 * LEASE_TTL_MS);
      child.kill("SIGCONT");
      stoppedNodes.delete(node);
      break;
    }
    case "redis-cut": {
      // Longer than the TTL, so that node-3's documents change owner.
      const link = cluster.redisLinks[node];
      link?.cut();
      await sleep(1.5 * LEASE_TTL_MS);
      link?.heal();
      break;
    }
    case "redis-reset-all":
      for (const link of cluster.redisLinks) link.reset();
      break;
    case "postgres-cut": {
      // node-3's link only: a cut for everyone closes every session, and the
      // documents land wherever a client reconnects first (run 3: node-1 owned 53-78).
      const link = cluster.storageLinks[node];
      link?.cut();
      await sleep(FAULT.linkCutMs);
      link?.heal();
      break;
    }
  }
  const healedAt = wallNow();
  window.to = healedAt + STEADY_GAP_MS;
  const healedAtS = (healedAt - soakStart) / 1000;
  const probe = await probeRecovery(fleet, target === "all" ? undefined : node, healedAt);
  console.log(
    `[soak] ${fmtClock(healedAtS)} healed ${kind} ${target}; recovered in ${fmt(probe.recoveryMs, 0)} ms` +
      (probe.failures ? ` (${probe.failures} probe(s) not delivered in ${PROBE_LIMIT_MS / 1000} s)` : ""),
  );
  return { kind, target, startedAtS, healedAtS, recoveryMs: probe.recoveryMs, probeFailures: probe.failures };
}

async function probeRecovery(
  fleet: Fleet,
  node: number | undefined,
  healedAt: number,
): Promise<{ recoveryMs: number | null; failures: number }> {
  const candidates = fleet.members.filter((m) => node === undefined || m.node === node);
  const picked = shuffle(candidates).slice(0, PROBE_DOCS);
  let failures = 0;
  const delivered: number[] = [];
  await Promise.all(
    picked.map(async (member, i) => {
      const marker = `probe-${Math.round(healedAt)}-${i};`;
      const text = member.client.doc.getText("t");
      text.insert(text.length, marker);
      const others = (fleet.byDoc.get(member.docId) ?? []).filter((m) => m !== member);
      try {
        await eventually(
          () => {
            for (const other of others) {
              if (!other.client.doc.getText("t").toString().includes(marker)) throw new Error("not yet");
            }
          },
          PROBE_LIMIT_MS,
          50,
        );
        delivered.push(wallNow() - healedAt);
      } catch {
        // Counted and reported: a probe that never arrived is a finding, not a crash.
        failures++;
      }
    }),
  );
  return { recoveryMs: delivered.length ? Math.round(Math.max(...delivered)) : null, failures };
}

function healEverything(cluster: Cluster): void {
  for (const link of cluster.redisLinks) link.heal();
  for (const link of cluster.storageLinks) link.heal();
  for (const node of stoppedNodes) cluster.nodes[node]?.child.kill("SIGCONT");
  stoppedNodes.clear();
}

// ---------------------------------------------------------------------------
// Metrics sampling

interface MemorySample {
  /** Milliseconds since the soak phase started (negative during the baseline). */
  atMs: number;
  node: number;
  heapUsedBytes: number;
  rssBytes: number;
  /** Documents the node owns (`opstream_sessions`). */
  sessions: number;
}

function metricValue(text: string, name: string): number | undefined {
  const match = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, "m").exec(text);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

async function sampleMemory(
  cluster: Cluster,
  node: number,
): Promise<{ heap: number; rss: number; sessions: number } | undefined> {
  const server = cluster.nodes[node];
  if (!server) return undefined;
  try {
    const response = await fetch(`${server.httpUrl}/metrics`, { signal: AbortSignal.timeout(2000) });
    const text = await response.text();
    const heap = metricValue(text, "nodejs_heap_size_used_bytes");
    const rss = metricValue(text, "process_resident_memory_bytes");
    const sessions = metricValue(text, "opstream_sessions");
    return heap === undefined || rss === undefined || sessions === undefined
      ? undefined
      : { heap, rss, sessions };
  } catch {
    // A killed or stopped node has no sample for this tick; gaps are expected there.
    return undefined;
  }
}

// ---------------------------------------------------------------------------
// Helpers

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function shuffle<T>(items: readonly T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
  }
  return copy;
}

function fmtClock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** Share of one core this process used since `from`, in %. */
function cpuShare(from: { usage: NodeJS.CpuUsage; at: number }): number {
  const used = process.cpuUsage(from.usage);
  return ((used.user + used.system) / 1000 / (performance.now() - from.at)) * 100;
}

const cpuMark = (): { usage: NodeJS.CpuUsage; at: number } => ({
  usage: process.cpuUsage(),
  at: performance.now(),
});

// ---------------------------------------------------------------------------
// Main

let cluster: Cluster | undefined;
let clusterStarting: Promise<Cluster> | undefined;
const fleets: Fleet[] = [];
const intervals: NodeJS.Timeout[] = [];
let heapProbe: HeapProbe | undefined;

/** Stops every client, timer and process this script started. Safe to call twice. */
async function cleanUp(): Promise<void> {
  for (const interval of intervals.splice(0)) clearInterval(interval);
  heapProbe?.close();
  heapProbe = undefined;
  for (const fleet of fleets.splice(0)) fleet.close();
  const started = cluster ?? (await clusterStarting?.catch(() => undefined));
  cluster = undefined;
  clusterStarting = undefined;
  await started?.stop();
  await stopSharedPostgres();
}

/**
 * Waits until every node answers /metrics within a second again: an overloaded
 * baseline leaves a backlog of frames that would otherwise count against the soak.
 */
/**
 * Waits until every node answers /metrics and the baseline's documents have
 * unloaded (nodes run with a short idle timeout, IDLE_MS), so node-1 owns nothing
 * when the soak's clients arrive and its owned set stays the soak's all along.
 */
async function drained(c: Cluster): Promise<void> {
  const started = performance.now();
  try {
    await eventually(
      async () => {
        for (let node = 0; node < NODES; node++) {
          const server = c.nodes[node];
          if (!server) throw new Error(`no node ${node}`);
          const text = await fetch(`${server.httpUrl}/metrics`, { signal: AbortSignal.timeout(1000) }).then(
            (r) => r.text(),
          );
          const owned = metricValue(text, "opstream_sessions");
          if (owned !== 0) throw new Error(`node-${node + 1} still owns ${owned ?? "?"} documents`);
        }
      },
      DRAIN_LIMIT_MS,
      1000,
    );
    console.log(
      `[soak] cluster drained after the baseline (its documents unloaded) in ${Math.round(performance.now() - started)} ms`,
    );
  } catch (error) {
    console.log(`[soak] not drained after ${DRAIN_LIMIT_MS} ms (${String(error)}); going on`);
  }
}

async function runBaseline(c: Cluster): Promise<{
  latency: Percentiles;
  sent: number;
  cpuPct: number;
  notConverged: number;
  sockets: ReturnType<Fleet["socketStats"]>;
}> {
  console.log(`[soak] baseline S1: ${S1.docs} documents x ${S1.clients / S1.docs} clients, ${S1.seconds} s`);
  const latencies = new Latencies();
  const seat = (index: number): Seat => ({ node: 0, docId: `s1-${index % S1.docs}`, wave: 0 });
  const fleet = new Fleet(c, S1.clients, seat, S1.intervalMs, latencies, 2);
  fleets.push(fleet);
  await fleet.open(CONNECT_LIMIT_MS, "baseline S1");
  const cpu = cpuMark();
  latencies.startedAt = wallNow();
  fleet.start();
  await sleep(S1.seconds * 1000);
  fleet.stop();
  const cpuPct = cpuShare(cpu);
  // Late deliveries still count; the check also proves the baseline itself converged.
  const audits = await auditDocs(fleet, c, fleet.docIds, AUDIT.limitMs);
  const failed = audits.filter((a) => !a.converged);
  if (failed.length) {
    console.log(`[soak] baseline: ${failed.length} document(s) did not converge: ${failed[0]?.reason ?? ""}`);
  }
  fleet.close();
  fleets.splice(fleets.indexOf(fleet), 1);
  const latency = summarize(latencies.all);
  console.log(
    `[soak] baseline S1: ${fleet.sent} updates, ${latency.samples} deliveries, p50 ${fmt(latency.p50)} ` +
      `p95 ${fmt(latency.p95)} p99 ${fmt(latency.p99)} ms, generator CPU ${cpuPct.toFixed(0)} % of one core, ` +
      `close codes ${JSON.stringify(fleet.socketStats().closeCodes)}`,
  );
  return { latency, sent: fleet.sent, cpuPct, notConverged: failed.length, sockets: fleet.socketStats() };
}

async function main(): Promise<number> {
  const runStarted = new Date();
  console.log(
    `[soak] ${MINUTES} min: ${NODES} nodes (Redis backplane, Postgres storage, lease TTL ${LEASE_TTL_MS} ms), ` +
      `${availableParallelism()} cores`,
  );
  clusterStarting = startCluster(NODES, {
    storage: "postgres",
    faults: true,
    leaseTtlMs: LEASE_TTL_MS,
    extraArgs: ["--idle-ms", String(IDLE_MS)],
  });
  const c = await clusterStarting;
  cluster = c;

  const node1Pid = c.nodes[0]?.child.pid;
  if (node1Pid === undefined) throw new Error("node-1 has no pid");
  heapProbe = await HeapProbe.attach(node1Pid);
  const probe = await sampleMemory(c, 0);
  if (!probe)
    throw new Error("node-1's /metrics lacks nodejs_heap_size_used_bytes or process_resident_memory_bytes");

  const baseline = await runBaseline(c);
  await drained(c);

  // The soak phase.
  const windows: FaultWindow[] = [];
  const latencies = new Latencies(windows);
  const fleet = new Fleet(c, SOAK.clients, soakSeat, SOAK.intervalMs, latencies, 1);
  fleets.push(fleet);
  await fleet.open(CONNECT_LIMIT_MS, "soak");
  const soakStart = wallNow();
  latencies.startedAt = soakStart;
  const soakCpu = cpuMark();
  let minuteCpu = cpuMark();
  fleet.start();

  const memory: MemorySample[] = [];
  const retained: { atMs: number; bytes: number; withoutCodeBytes: number; dataBytes: number }[] = [];
  const sampleRetained = (): void => {
    const atMs = wallNow() - soakStart;
    heapProbe?.retained().then(
      (sample) => retained.push({ atMs, ...sample }),
      (error: unknown) => console.log(`[soak] retained-heap sample failed: ${String(error)}`),
    );
  };
  sampleRetained();
  intervals.push(setInterval(sampleRetained, RETAINED_EVERY_MS));
  intervals.push(
    setInterval(() => {
      const atMs = wallNow() - soakStart;
      for (let node = 0; node < NODES; node++) {
        void sampleMemory(c, node).then((sample) => {
          if (sample)
            memory.push({
              atMs,
              node,
              heapUsedBytes: sample.heap,
              rssBytes: sample.rss,
              sessions: sample.sessions,
            });
        });
      }
    }, METRICS_EVERY_MS),
  );

  const faults: FaultRecord[] = [];
  const perMinute: Record<string, unknown>[] = [];
  let lastSent = 0;
  let minute = 0;
  const reportMinute = (): void => {
    const stats = summarize(latencies.byMinute[minute] ?? []);
    const node1 = memory.filter((m) => m.node === 0).at(-1);
    const node1Retained = retained.at(-1)?.dataBytes ?? null;
    const cpuPct = cpuShare(minuteCpu);
    minuteCpu = cpuMark();
    const sent = fleet.sent - lastSent;
    lastSent = fleet.sent;
    const synced = fleet.countSynced();
    const faultsThisMinute = faults
      .filter((f) => Math.floor(f.startedAtS / 60) === minute)
      .map((f) => f.kind);
    perMinute.push({
      minute: minute + 1,
      sent,
      ...stats,
      node1HeapUsedBytes: node1?.heapUsedBytes ?? null,
      node1RssBytes: node1?.rssBytes ?? null,
      node1RetainedHeapBytes: node1Retained,
      node1Sessions: node1?.sessions ?? null,
      syncedClients: synced,
      generatorCpuPct: Math.round(cpuPct),
    });
    console.log(
      `[soak] min ${minute + 1}/${MINUTES}  sent ${sent}  deliveries ${stats.samples}  ` +
        `p50 ${fmt(stats.p50)} p95 ${fmt(stats.p95)} p99 ${fmt(stats.p99)} ms  ` +
        `node-1 heap ${fmt((node1?.heapUsedBytes ?? NaN) / 2 ** 20)} MiB (data after GC ${fmt((node1Retained ?? NaN) / 2 ** 20)}) rss ${fmt((node1?.rssBytes ?? NaN) / 2 ** 20)} MiB owns ${node1?.sessions ?? "-"}  ` +
        `synced ${synced}/${fleet.members.length}  gen CPU ${cpuPct.toFixed(0)} %` +
        (faultsThisMinute.length ? `  fault: ${faultsThisMinute.join(",")}` : ""),
    );
    minute++;
  };
  intervals.push(setInterval(reportMinute, 60_000));

  // One sequence of audits and faults, so an audit never runs during a fault.
  const endMs = MINUTES * 60_000;
  const events: { atMs: number; what: "audit" | "fault" | "snapshot" }[] = [];
  for (let at = AUDIT.everyMs; at < endMs; at += AUDIT.everyMs) events.push({ atMs: at, what: "audit" });
  // A fault takes at most ~20 s (2 x TTL stop, 1.5 x TTL Redis cut) plus its probe.
  for (let at = FAULT.firstMs; at + FAULT.jitterMs + 20_000 < endMs; at += FAULT.everyMs) {
    events.push({ atMs: at + Math.random() * FAULT.jitterMs, what: "fault" });
  }
  for (let at = SNAPSHOT_EVERY_MS; at < endMs - 60_000; at += SNAPSHOT_EVERY_MS) {
    events.push({ atMs: at, what: "snapshot" });
  }
  events.push({ atMs: endMs - 30_000, what: "snapshot" });
  events.sort((a, b) => a.atMs - b.atMs);
  const audits: { atS: number; results: AuditResult[] }[] = [];
  const snapshotDir = mkdtempSync(join(tmpdir(), "opstream-soak-heap-"));
  const snapshots: { atMs: number; path: string; pauseMs: number }[] = [];
  for (const event of events) {
    const wait = event.atMs - (wallNow() - soakStart);
    if (wait > 0) await sleep(wait);
    if (event.what === "fault") {
      faults.push(await injectFault(c, fleet, windows, soakStart));
    } else if (event.what === "snapshot") {
      const window: FaultWindow = { from: wallNow(), to: Infinity };
      windows.push(window);
      const atMs = window.from - soakStart;
      const path = join(
        snapshotDir,
        `node-1-${String(Math.round(atMs / 1000)).padStart(4, "0")}s.heapsnapshot`,
      );
      try {
        await heapProbe?.snapshot(path);
        snapshots.push({ atMs, path, pauseMs: Math.round(wallNow() - window.from) });
      } catch (error) {
        console.log(`[soak] heap snapshot failed: ${String(error)}`);
      }
      window.to = wallNow() + SNAPSHOT_GAP_MS;
    } else {
      const atS = (wallNow() - soakStart) / 1000;
      const results = await auditDocs(fleet, c, shuffle(fleet.docIds).slice(0, AUDIT.docs), AUDIT.limitMs);
      audits.push({ atS, results });
      const bad = results.filter((r) => !r.converged);
      console.log(
        `[soak] ${fmtClock(atS)} audit: ${results.length - bad.length}/${results.length} converged ` +
          `(slowest ${Math.max(...results.map((r) => r.ms))} ms)` +
          bad.map((r) => `\n[soak]   DIVERGED ${r.docId}: ${r.reason ?? ""}`).join(""),
      );
    }
  }
  const untilEnd = endMs - (wallNow() - soakStart);
  if (untilEnd > 0) await sleep(untilEnd);

  // The end: stop writing, heal, audit everything.
  fleet.stop();
  const generatorCpuPct = cpuShare(soakCpu);
  for (const interval of intervals.splice(0)) clearInterval(interval);
  if (minute < MINUTES) reportMinute(); // the last tick and the end can race
  healEverything(c);
  console.log(`[soak] writers stopped; auditing all ${fleet.docIds.length} documents`);
  const finalAudit = await auditDocs(fleet, c, fleet.docIds, AUDIT.finalLimitMs);
  const finalBad = finalAudit.filter((r) => !r.converged);
  for (const r of finalBad) console.log(`[soak]   DIVERGED ${r.docId}: ${r.reason ?? ""}`);

  // Results.
  const overall = summarize(latencies.all);
  const steady = summarize(latencies.steady);
  const node1Heap = memory.filter((m) => m.node === 0).map((m) => ({ atMs: m.atMs, bytes: m.heapUsedBytes }));
  const node1Rss = memory.filter((m) => m.node === 0).map((m) => ({ atMs: m.atMs, bytes: m.rssBytes }));
  const heapWithCode = heapSlope(retained, MINUTES);
  const heapWithoutCodeSpaces = heapSlope(
    retained.map((r) => ({ atMs: r.atMs, bytes: r.withoutCodeBytes })),
    MINUTES,
  );
  const heapGcData = heapSlope(
    retained.map((r) => ({ atMs: r.atMs, bytes: r.dataBytes })),
    MINUTES,
  );
  // The verdict's points: node-1's heap snapshots, without what the JIT holds. The
  // first and last files are kept for a diff by constructor; the others go.
  const snapshotSummaries: ({ atMs: number; pauseMs: number; path: string } & HeapSummary)[] = [];
  for (const [i, snap] of snapshots.entries()) {
    snapshotSummaries.push({ ...snap, ...summarizeHeapSnapshot(snap.path, COUNTED) });
    if (i > 0 && i < snapshots.length - 1) rmSync(snap.path);
  }
  const heap = heapSlope(
    snapshotSummaries.map((snap) => ({ atMs: snap.atMs, bytes: snap.data })),
    MINUTES,
  );
  const sessionsInSnapshots = snapshotSummaries.map((snap) => snap.instances.DocumentSession ?? 0);
  const heapSampled = heapSlope(node1Heap, MINUTES);
  const rss = heapSlope(node1Rss, MINUTES);
  const heapMeaningful = MINUTES >= 30;
  const node1Owned = memory.filter((m) => m.node === 0 && m.atMs >= 300_000).map((m) => m.sessions);
  const owned = node1Owned.length
    ? { min: Math.min(...node1Owned), max: Math.max(...node1Owned) }
    : { min: null, max: null };
  const periodicBad = audits.flatMap((a) => a.results.filter((r) => !r.converged));
  const divergences = periodicBad.length + finalBad.length;
  const s1p99 = baseline.latency.p99;
  const p99Bound = s1p99 === null ? null : 2 * s1p99;
  const checks = {
    zeroDivergence: divergences === 0,
    steadyP99WithinTwiceS1: steady.p99 !== null && p99Bound !== null && steady.p99 <= p99Bound,
    heapSlopeBelow1PctPerHour: heapMeaningful
      ? heap.slopePctPerHour !== null && heap.slopePctPerHour < 1
      : ("not applicable (run < 30 min)" as const),
  };
  const pass =
    checks.zeroDivergence && checks.steadyP99WithinTwiceS1 && checks.heapSlopeBelow1PctPerHour !== false;
  const sockets = fleet.socketStats();

  const rows: [string, string][] = [
    [
      "S1 p99 (baseline, no faults)",
      `${fmt(s1p99)} ms (p50 ${fmt(baseline.latency.p50)}, ${baseline.latency.samples} deliveries)`,
    ],
    [
      "soak p50 / p95 / p99 overall",
      `${fmt(overall.p50)} / ${fmt(overall.p95)} / ${fmt(overall.p99)} ms (max ${fmt(overall.max)})`,
    ],
    [
      "soak p99 steady (faults + 30 s, snapshots + 5 s excluded)",
      `${fmt(steady.p99)} ms (bound 2 x S1 p99 = ${fmt(p99Bound)} ms)`,
    ],
    ["updates sent / deliveries", `${fleet.sent} / ${overall.samples} (steady ${steady.samples})`],
    [
      "node-1 heap slope",
      `${fmt(heap.slopePctPerHour, 2)} %/h of mean, through ${snapshotSummaries.length} heap snapshots ` +
        `(${fmt((snapshotSummaries[0]?.data ?? NaN) / 2 ** 20, 2)} -> ${fmt((snapshotSummaries.at(-1)?.data ?? NaN) / 2 ** 20, 2)} MiB of data; ` +
        `the JIT's code, metadata and dependent-code lists excluded: ${fmt((snapshotSummaries[0]?.code ?? NaN) / 2 ** 20, 2)} -> ${fmt((snapshotSummaries.at(-1)?.code ?? NaN) / 2 ** 20, 2)} MiB). ` +
        `After a full GC each minute: ${fmt(heapGcData.slopePctPerHour, 2)} %/h without code and bytecode, ` +
        `${fmt(heapWithoutCodeSpaces.slopePctPerHour, 2)} %/h without the code spaces, with code ${fmt(heapWithCode.slopePctPerHour, 2)} %/h; /metrics heap used ${fmt(heapSampled.slopePctPerHour, 2)} %/h, rss ${fmt(rss.slopePctPerHour, 2)} %/h)` +
        (heapMeaningful ? "" : " - not meaningful: run < 30 min"),
    ],
    [
      "node-1 owned documents",
      `${owned.min ?? "-"}..${owned.max ?? "-"} from minute 5 (/metrics); DocumentSessions in the snapshots: ${sessionsInSnapshots.join(", ") || "-"} (placement held still: see SEATING in bench/soak.ts)`,
    ],
    [
      "divergences",
      `${divergences} (periodic audits ${audits.length} x ${AUDIT.docs}: ${periodicBad.length}; final ${finalAudit.length} docs: ${finalBad.length})`,
    ],
    [
      "faults",
      faults.length
        ? faults
            .map(
              (f) => `${fmtClock(f.startedAtS)} ${f.kind} ${f.target} (recovered ${fmt(f.recoveryMs, 0)} ms)`,
            )
            .join("; ")
        : "none",
    ],
    [
      "client reconnects / socket errors",
      `${sockets.reconnects} / ${sockets.errors} (close codes ${JSON.stringify(sockets.closeCodes)})`,
    ],
    [
      "generator CPU",
      `${generatorCpuPct.toFixed(0)} % of one core (S1 ${baseline.cpuPct.toFixed(0)} %), ${availableParallelism()} cores`,
    ],
    [
      "verdict",
      `${pass ? "PASS" : "FAIL"} (zero divergence: ${checks.zeroDivergence}; steady p99 <= 2 x S1 p99: ${checks.steadyP99WithinTwiceS1}; heap < 1 %/h: ${checks.heapSlopeBelow1PctPerHour})`,
    ],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  console.log(
    `\nSoak summary: ${MINUTES} min, ${SOAK.clients} clients / ${SOAK.docs} documents on ${NODES} nodes`,
  );
  console.log("minute  sent  deliveries  p50 ms  p95 ms  p99 ms  node-1 heap MiB  data after GC MiB  owns");
  for (const row of perMinute) {
    const r = row as {
      minute: number;
      sent: number;
      samples: number;
      p50: number;
      p95: number;
      p99: number;
      node1HeapUsedBytes: number | null;
      node1RetainedHeapBytes: number | null;
      node1Sessions: number | null;
    };
    console.log(
      `${String(r.minute).padStart(6)}  ${String(r.sent).padStart(4)}  ${String(r.samples).padStart(10)}  ` +
        `${fmt(r.p50).padStart(6)}  ${fmt(r.p95).padStart(6)}  ${fmt(r.p99).padStart(6)}  ` +
        `${fmt(r.node1HeapUsedBytes === null ? null : r.node1HeapUsedBytes / 2 ** 20).padStart(15)}  ` +
        `${fmt(r.node1RetainedHeapBytes === null ? null : r.node1RetainedHeapBytes / 2 ** 20).padStart(17)}  ` +
        `${String(r.node1Sessions ?? "-").padStart(4)}`,
    );
  }
  console.log("");
  for (const [key, value] of rows) console.log(`${key.padEnd(width)}  ${value}`);

  const result = {
    startedAt: runStarted.toISOString(),
    minutes: MINUTES,
    config: {
      nodes: NODES,
      leaseTtlMs: LEASE_TTL_MS,
      idleMs: IDLE_MS,
      soak: SOAK,
      s1: S1,
      audit: AUDIT,
      fault: FAULT,
      steadyGapMs: STEADY_GAP_MS,
      cores: availableParallelism(),
    },
    s1: {
      ...baseline.latency,
      sent: baseline.sent,
      generatorCpuPct: Math.round(baseline.cpuPct),
      documentsNotConvergedAfter: baseline.notConverged,
      sockets: baseline.sockets,
    },
    soak: {
      sent: fleet.sent,
      overall,
      steady,
      perMinute,
      generatorCpuPct: Math.round(generatorCpuPct),
      sockets,
    },
    heap: {
      node1: heap,
      node1GcData: heapGcData,
      node1WithoutCodeSpaces: heapWithoutCodeSpaces,
      snapshots: snapshotSummaries,
      keptSnapshots: [snapshotSummaries[0]?.path, snapshotSummaries.at(-1)?.path].filter(Boolean),
      node1WithCode: heapWithCode,
      node1Sampled: heapSampled,
      node1Rss: rss,
      meaningful: heapMeaningful,
      node1Owned: owned,
      retained,
      samples: memory,
    },
    audits,
    finalAudit: {
      documents: finalAudit.length,
      diverged: finalBad,
      slowestMs: Math.max(...finalAudit.map((r) => r.ms)),
    },
    divergences,
    faults,
    verdict: { pass, checks, s1P99Ms: s1p99, steadyP99Ms: steady.p99 },
  };
  const dir = new URL("./results/", import.meta.url);
  mkdirSync(dir, { recursive: true });
  const file = new URL(`soak-${runStarted.toISOString().replace(/[:.]/g, "-")}.json`, dir);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\n[soak] results: ${file.pathname}`);
  return pass ? 0 : 1;
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    console.log(`[soak] ${signal}: cleaning up`);
    void cleanUp().finally(() => process.exit(130));
  });
}

main().then(
  async (code) => {
    await cleanUp();
    process.exit(code);
  },
  async (error: unknown) => {
    console.error("[soak] failed:", error);
    await cleanUp().catch((cleanUpError: unknown) => console.error("[soak] clean-up failed:", cleanUpError));
    process.exit(1);
  },
);
