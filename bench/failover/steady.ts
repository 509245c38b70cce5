/**
 * The failover bench's `steady` mode: the load, at `--rate`, with no fault, for
 * `--steady-seconds`. What a lease TTL costs when nothing fails: per node the
 * ownership leases it lost, the writes its store fenced off and the relay moves it
 * made (each one a spurious step-down or move), with its event-loop delay and CPU,
 * since a loop stalled longer than the lease renewal margin is what loses a lease.
 */
import type { IntervalHistogram } from "node:perf_hooks";
import { Histogram, median } from "../support/histogram.js";
import { cpuSeconds } from "../support/proc-stats.js";
import { CpuMeter, type CpuShares } from "./cpu.js";
import type { CloseCounts, Fleet } from "./fleet.js";
import { parseSamples, sumOf } from "./metrics.js";
import type { OpstreamCluster } from "./targets.js";

/**
 * /metrics is read this often: prom-client's `nodejs_eventloop_lag_*` gauges describe
 * the delay since the previous read, so each read closes a window.
 */
const WINDOW_MS = 5000;
const LAG_MAX = "nodejs_eventloop_lag_max_seconds";
const LAG_P99 = "nodejs_eventloop_lag_p99_seconds";

export interface SteadyNode {
  node: string;
  leasesLost: number;
  fencedWrites: number;
  /** `opstream_relay_moves_total`, all outcomes. */
  relayMoves: number;
  relayMovesByOutcome: Record<string, number>;
  leasesAcquired: number;
  /** `opstream_remote_peers_expired_total`: clients of other nodes this owner forgot (OPERATIONS.md: faults only). */
  remotePeersExpired: number;
  /** CPU of the node's process over the phase, % of one core. */
  cpuPct: number;
  /** The longest event-loop delay in any window (ms); null when /metrics has no such gauge. */
  loopMaxMs: number | null;
  /** The highest and the median of the windows' p99 event-loop delays (ms). */
  loopP99MaxMs: number | null;
  loopP99MedianMs: number | null;
  /** Windows read, and reads that failed (a node too busy to answer within 5 s). */
  windows: number;
  failedReads: string[];
}

export interface SteadyRecord {
  seconds: number;
  /** Tokens per client per second asked for; over all clients, asked for and typed per second. */
  rate: number;
  askedPerSecond: number;
  tokensPerSecond: number;
  nodes: SteadyNode[];
  /** The `nodejs_eventloop_*` series /metrics exposes (what the loop columns could use). */
  loopSeries: string[];
  /** Documents whose owner (Redis) differs between the phase's start and its end. */
  ownerChanges: number;
  /** Socket closes of any client during the phase (no fault: all unexpected). */
  closes: CloseCounts;
  /** Typing → receipt by another client of the document, every token (ms). */
  delivery: { count: number; p50Ms: number; p99Ms: number; p999Ms: number };
  generator: { cpu: CpuShares; loopDelayP99Ms: number; loopDelayMaxMs: number };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** CPU seconds of `pid`; NaN once it has exited (a node that died during the phase). */
function cpuOf(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    return cpuSeconds(pid);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return NaN;
    throw error;
  }
}

/** Series by outcome label of `opstream_relay_moves_total`, as `after - before`. */
function movesByOutcome(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const moves: Record<string, number> = {};
  for (const [series, value] of after) {
    const outcome = /^opstream_relay_moves_total\{.*outcome="([^"]+)"/.exec(series)?.[1];
    if (outcome === undefined) continue;
    const delta = value - (before.get(series) ?? 0);
    if (delta !== 0) moves[outcome] = delta;
  }
  return moves;
}

/**
 * Runs the load with no fault for `seconds` (typing must be on), reading every
 * node's /metrics every {@link WINDOW_MS}. `loopDelay` is the generator's monitor,
 * reset here.
 */
export async function runSteady(
  cluster: OpstreamCluster,
  fleet: Fleet,
  seconds: number,
  rate: number,
  loopDelay: IntervalHistogram,
): Promise<SteadyRecord> {
  const nodes = Array.from({ length: cluster.count }, (_, node) => node);
  const ownersBefore = await cluster.owners(fleet.docIds);
  // This first read also starts the nodes' event-loop windows afresh.
  const first = await Promise.all(nodes.map(async (node) => parseSamples(await cluster.metricsText(node))));
  const last = [...first];
  const lagMax: number[][] = nodes.map(() => []);
  const lagP99: number[][] = nodes.map(() => []);
  const failedReads: string[][] = nodes.map(() => []);
  const loopSeries = [...first[0]!.keys()].filter((series) => series.startsWith("nodejs_eventloop"));
  const outsideBefore = structuredClone(fleet.outside);
  const pids = nodes.map((node) => cluster.pidOf(node));
  const cpuBefore = pids.map(cpuOf);
  const typedBefore = fleet.typed;
  const startedAt = performance.now();
  const cpu = new CpuMeter(() => cluster.pids());
  const latency = new Histogram();
  fleet.latency = latency;
  loopDelay.reset();
  try {
    for (let window = 1; window * WINDOW_MS <= seconds * 1000 + WINDOW_MS / 2; window++) {
      await sleep(Math.max(0, startedAt + window * WINDOW_MS - performance.now()));
      await Promise.all(
        nodes.map(async (node) => {
          try {
            const samples = parseSamples(await cluster.metricsText(node));
            last[node] = samples;
            const max = samples.get(LAG_MAX);
            const p99 = samples.get(LAG_P99);
            if (max !== undefined) lagMax[node]!.push(max * 1000);
            if (p99 !== undefined) lagP99[node]!.push(p99 * 1000);
          } catch (error) {
            // A node too busy to answer is itself a finding: kept, and the phase goes on.
            failedReads[node]!.push(`${Math.round(performance.now() - startedAt)} ms: ${String(error)}`);
          }
        }),
      );
    }
  } finally {
    fleet.latency = undefined;
  }
  const elapsed = (performance.now() - startedAt) / 1000;
  const generatorCpu = cpu.stop();
  const ownersAfter = await cluster.owners(fleet.docIds);
  const counter = (node: number, name: string): number =>
    (sumOf(last[node]!, name) ?? 0) - (sumOf(first[node]!, name) ?? 0);
  const dropped: Record<string, number> = {};
  for (const [code, count] of Object.entries(fleet.outside.dropped)) {
    const delta = count - (outsideBefore.dropped[code] ?? 0);
    if (delta > 0) dropped[code] = delta;
  }
  return {
    seconds: elapsed,
    rate,
    askedPerSecond: rate * fleet.clients.length,
    tokensPerSecond: (fleet.typed - typedBefore) / elapsed,
    nodes: nodes.map((node) => ({
      node: cluster.nodeName(node),
      leasesLost: counter(node, "opstream_leases_lost_total"),
      fencedWrites: counter(node, "opstream_fenced_writes_total"),
      relayMoves: counter(node, "opstream_relay_moves_total"),
      relayMovesByOutcome: movesByOutcome(first[node]!, last[node]!),
      leasesAcquired: counter(node, "opstream_leases_acquired_total"),
      remotePeersExpired: counter(node, "opstream_remote_peers_expired_total"),
      cpuPct: (100 * (cpuOf(pids[node]) - cpuBefore[node]!)) / elapsed,
      loopMaxMs: lagMax[node]!.length ? Math.max(...lagMax[node]!) : null,
      loopP99MaxMs: lagP99[node]!.length ? Math.max(...lagP99[node]!) : null,
      loopP99MedianMs: lagP99[node]!.length ? median(lagP99[node]!) : null,
      windows: lagMax[node]!.length,
      failedReads: failedReads[node]!,
    })),
    loopSeries,
    ownerChanges: ownersBefore.filter((owner, i) => owner !== ownersAfter[i]).length,
    closes: { dropped, refused: fleet.outside.refused - outsideBefore.refused },
    delivery: {
      count: latency.count,
      p50Ms: latency.percentile(50),
      p99Ms: latency.percentile(99),
      p999Ms: latency.percentile(99.9),
    },
    generator: {
      cpu: generatorCpu,
      loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
      loopDelayMaxMs: loopDelay.max / 1e6,
    },
  };
}
