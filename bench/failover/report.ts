/** The failover bench's printed report: a table per run, the steady mode's per-node table, the generator. */
import { median, percentileOf } from "../support/histogram.js";
import { printGrid } from "../support/table.js";
import type { ModeRecord, TargetRecord } from "./records.js";
import type { SteadyRecord } from "./steady.js";

/** ms for a table cell; Infinity (no delivery within the limit) prints as `>limit`. */
export function fmtMs(ms: number | null | undefined, limitMs: number): string {
  if (ms == null || Number.isNaN(ms)) return "–";
  if (!Number.isFinite(ms)) return `>${limitMs}`;
  return ms >= 100 ? ms.toFixed(0) : ms.toFixed(1);
}

/** Counters summed over their labels, except the close code of connection closes. */
export function formatMetrics(deltas: Record<string, number>): string {
  const sums = new Map<string, number>();
  for (const [series, value] of Object.entries(deltas)) {
    const name = series.replace(/^opstream_/, "").replace(/_total/, "");
    const code = /code="(\d+)"/.exec(series)?.[1];
    const key = name.startsWith("connection_closes")
      ? `connection_closes{${code ?? "?"}}`
      : name.split("{")[0]!;
    sums.set(key, (sums.get(key) ?? 0) + value);
  }
  return [...sums].map(([key, value]) => `${key} ${value}`).join(", ") || "none moved";
}

/** How the nodes ran, for the report's heading. */
export interface RunSettings {
  storage: string;
  /** What the nodes ran with, and whether it is the CLI's default. */
  leaseTtlMs: number;
  leaseTtlIsDefault: boolean;
  requestTimeoutMs: number;
  rate: number;
  deliveryLimitMs: number;
}

function modeRow(t: TargetRecord, m: ModeRecord, limitMs: number): string[] {
  const ms = (value: number | null | undefined): string => fmtMs(value, limitMs);
  const lost = `${m.lostFromClients}/${m.lostFromStore ?? "–"}${m.convergence.converged ? "" : " NOT CONVERGED"}`;
  if (m.steady) {
    const closes = Object.values(m.steady.closes.dropped).reduce((sum, n) => sum + n, 0);
    return [
      `${t.target} steady`,
      `${m.steady.seconds.toFixed(0)} s`,
      "–",
      "–",
      "–",
      "–",
      String(closes),
      lost,
      "–",
    ];
  }
  const latencies = m.rounds.map((r) => r.latencyMs ?? Infinity);
  const waits = m.rounds.map((r) => r.worstWaitMs ?? r.latencyMs ?? Infinity);
  return [
    `${t.target} ${m.mode}${m.mode === "stop" ? " (hang bound)" : ""}`,
    String(m.rounds.length),
    ms(percentileOf(latencies, 50)),
    ms(percentileOf(latencies, 99)),
    ms(latencies.length ? Math.max(...latencies) : null),
    ms(percentileOf(waits, 99)),
    String(m.rounds.reduce((sum, r) => sum + r.relayCloses, 0)),
    lost,
    m.rounds.length ? String(median(m.rounds.map((r) => r.affectedDocs))) : "–",
  ];
}

export function printReport(
  targets: readonly TargetRecord[],
  settings: RunSettings,
  log: (line: string) => void,
): void {
  const ms = (value: number | null | undefined): string => fmtMs(value, settings.deliveryLimitMs);
  const head = [
    "mode",
    "rounds",
    "p50 ms",
    "p99 ms",
    "max ms",
    "worst wait p99 ms",
    "relay closes",
    "lost (clients/store)",
    "victim docs (median)",
  ];
  const rows = targets.flatMap((t) => t.modes.map((m) => modeRow(t, m, settings.deliveryLimitMs)));
  log("");
  log(
    `Failover: first edit typed after the signal by a client of a surviving node, delivered to a client of ` +
      `another surviving node (Hocuspocus: another client of the survivor), per round. opstream on ` +
      `${settings.storage}, lease TTL ${settings.leaseTtlMs} ms ` +
      `${settings.leaseTtlIsDefault ? "(CLI default)" : "(--lease-ttl-ms: NOT the CLI default)"}, ` +
      `request timeout ${settings.requestTimeoutMs} ms (CLI default); ${settings.rate} edits/s per client. ` +
      `Worst wait: per round, the longest any edit typed on that document between the signal and the ` +
      `victim's return waited for such a delivery.`,
  );
  printGrid(head, rows, log);
  for (const t of targets) {
    for (const m of t.modes) if (m.steady) printSteady(m.steady, log);
  }
  for (const t of targets) {
    const { cpu } = t.generator;
    log(
      `generator (${t.target}): cpu ${cpu.generatorPct.toFixed(0)}% of one core, ` +
        `loop delay p99 ${ms(t.generator.loopDelayP99Ms)} ms (max ${ms(t.generator.loopDelayMaxMs)} ms, ` +
        `in rounds ${ms(t.generator.roundLoopDelayMaxMs)} ms), ` +
        `heap ${t.generator.heapUsedMiB.toFixed(0)} MiB, ${t.clients} clients, ${t.tokensTyped} tokens typed; ` +
        `servers ${cpu.serversPct.toFixed(0)}%, machine busy ${cpu.machineBusyPct.toFixed(0)}% of ${cpu.cores * 100}%`,
    );
  }
}

/** Per node: what a steady load without faults cost in step-downs, and how late its event loop ran. */
export function printSteady(s: SteadyRecord, log: (line: string) => void): void {
  const ms = (value: number | null): string => fmtMs(value, Infinity);
  log("");
  log(
    `Steady: ${s.seconds.toFixed(0)} s without a fault, ${s.rate} edits/s per client ` +
      `(${s.tokensPerSecond.toFixed(0)}/s typed of ${s.askedPerSecond.toFixed(0)}/s asked: less when the generator falls ` +
      `over 1 s behind); event-loop delay from prom-client's ` +
      `nodejs_eventloop_lag_max/p99_seconds over 5 s windows (p99: highest / median window)`,
  );
  const head = [
    "node",
    "leases lost",
    "fenced writes",
    "relay moves",
    "peers expired",
    "cpu %",
    "loop max ms",
    "loop p99 ms",
  ];
  const rows = s.nodes.map((n) => [
    n.node,
    String(n.leasesLost),
    String(n.fencedWrites),
    String(n.relayMoves),
    String(n.remotePeersExpired),
    n.cpuPct.toFixed(0),
    ms(n.loopMaxMs),
    `${ms(n.loopP99MaxMs)} / ${ms(n.loopP99MedianMs)}`,
  ]);
  const cpu = s.generator.cpu;
  rows.push([
    "generator",
    "–",
    "–",
    "–",
    "–",
    cpu.generatorPct.toFixed(0),
    ms(s.generator.loopDelayMaxMs),
    `${ms(s.generator.loopDelayP99Ms)} (whole phase)`,
  ]);
  printGrid(head, rows, log);
  const closes = Object.entries(s.closes.dropped).map(([code, n]) => `${n}×${code}`);
  log(
    `steady: owners changed for ${s.ownerChanges} docs; client socket closes ${closes.join(" ") || "0"}` +
      `${s.closes.refused ? `, ${s.closes.refused} connects refused` : ""}; ` +
      `typing → other client p50 ${ms(s.delivery.p50Ms)} ms, p99 ${ms(s.delivery.p99Ms)} ms, ` +
      `p99.9 ${ms(s.delivery.p999Ms)} ms (${s.delivery.count} receipts); ` +
      `machine busy ${cpu.machineBusyPct.toFixed(0)}% of ${cpu.cores * 100}%`,
  );
  if (s.nodes.every((n) => n.loopMaxMs === null))
    log(
      `steady: /metrics has no ${"nodejs_eventloop_lag_max_seconds"}; it has: ${s.loopSeries.join(", ") || "nothing"}`,
    );
  for (const n of s.nodes) {
    if (n.failedReads.length) log(`steady: ${n.node}: ${n.failedReads.length} /metrics reads failed`);
  }
}
