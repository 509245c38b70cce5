/**
 * Failover bench (issue #18, point 5): what a node failure costs the clients of a
 * 3-node opstream cluster at default settings, side by side with 2 Hocuspocus nodes
 * on its Redis extension (crash case only).
 *
 *   npm run bench:failover -- [--kills 20] [--docs 50] [--modes kill,term,stop,steady]
 *     [--storage sqlite|postgres] [--lease-ttl-ms <n>] [--steady-seconds 60] [--rate 2]
 *     [--no-peers] [--quick]
 *
 * Per round the owner of a busy document is killed (SIGKILL), terminated (SIGTERM,
 * a graceful handoff) or frozen (SIGSTOP until the document has moved, at most
 * 60 s), then restarted on its port (or thawed). Measured per round: t0 (just
 * before the signal) to the first edit typed after t0 by a client of a surviving
 * node that reaches a client of another surviving node; sockets of surviving
 * nodes' clients that closed. `steady` runs the load with no fault and counts
 * spurious step-downs. After each mode typing pauses, the clients must converge,
 * and every token ever typed must be in every client's text and in storage.
 * Method: bench/README.md "Failover".
 *
 * Prints a table, writes bench/results/failover-<time>.json, and exits 1 when an
 * edit was lost or documents did not converge.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg } from "node:os";
import { monitorEventLoopDelay, type IntervalHistogram } from "node:perf_hooks";
import { startRedis, type RedisServer } from "../spec/support/redis.js";
import { CpuMeter } from "./failover/cpu.js";
import { Fleet } from "./failover/fleet.js";
import { metricDeltas } from "./failover/metrics.js";
import { parseOptions, type BenchMode } from "./failover/options.js";
import { HocuspocusPair } from "./failover/peers.js";
import type { ModeRecord, RoundRecord, TargetRecord } from "./failover/records.js";
import { fmtMs as formatMs, formatMetrics, printReport, printSteady } from "./failover/report.js";
import { Round, watchOwner, type Mode } from "./failover/round.js";
import { runSteady } from "./failover/steady.js";
import { startStorage, type BenchStorage } from "./failover/storage.js";
import { cliDefaults, OpstreamCluster, type FailoverTarget } from "./failover/targets.js";

const LIMITS = {
  /** For every client to sync at the start. */
  connectMs: 60_000,
  /** From t0 to the first cross-node delivery; a SIGSTOP lasts at most this long. */
  deliveryMs: 60_000,
  /** After a restart, for every pair of clients to exchange edits again. */
  settleMs: 30_000,
  /** With typing paused, for every document's clients to agree. */
  convergeMs: 30_000,
  /** For some document to have an owner to aim at. */
  pickMs: 10_000,
} as const;
/** A round in which the generator's event loop stalled longer than this says so in its log line. */
const LOOP_STALL_MS = 250;
/** Clients per document on each node: 2 on each of opstream's 3 nodes, 3 on each of Hocuspocus's 2. */
const CLIENTS_PER_DOC = 6;

const options = parseOptions();

const log = (line: string): void => void process.stdout.write(`${line}\n`);
const fmtMs = (ms: number | null | undefined): string => formatMs(ms, LIMITS.deliveryMs);
const runStarted = performance.now();
const clock = (): string => `${((performance.now() - runStarted) / 1000).toFixed(0).padStart(5)} s`;

// ---------------------------------------------------------------------------
// Rounds

async function pick(target: FailoverTarget, index: number, docIds: readonly string[]) {
  const startedAt = performance.now();
  for (;;) {
    const chosen = await target.pick(index, docIds);
    if (chosen) return chosen;
    if (performance.now() - startedAt > LIMITS.pickMs)
      throw new Error(`no document had an owner on a live node within ${LIMITS.pickMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * `roundLoopDelay`: the generator's event-loop delay, reset as the round starts. It
 * stays enabled between rounds: a monitor enabled again counts the time it was off
 * as one long delay.
 */
async function runRound(
  target: FailoverTarget,
  fleet: Fleet,
  mode: Mode,
  index: number,
  roundLoopDelay: IntervalHistogram,
): Promise<RoundRecord> {
  await target.scrape?.(); // counters of the victim's incarnation, before it goes
  const chosen = await pick(target, index, fleet.docIds);
  const { docId, victim } = chosen;
  const round = new Round(mode, docId, victim, new Set(chosen.affected), target.crossNode);
  fleet.beginRound(round);
  roundLoopDelay.reset();
  try {
    const ownerOf = target.ownerOf?.bind(target);
    const owner =
      ownerOf && mode !== "baseline"
        ? watchOwner(() => ownerOf(docId), target.nodeName(victim), round.t0)
        : undefined;
    let exited: Promise<void> | undefined;
    if (mode === "kill") exited = target.signal(victim, "SIGKILL");
    else if (mode === "term") exited = target.signal(victim, "SIGTERM");
    else if (mode === "stop") target.pause(victim);
    const latencyMs = await round.whenDelivered(docId, LIMITS.deliveryMs);
    const ownerMoves = await owner?.stop();
    // Nothing delivered within the limit: who Redis names as owner, and which of the
    // survivors' clients are synced, help tell why.
    const ownerAtLimit = latencyMs === null ? ((await target.ownerOf?.(docId)) ?? null) : null;
    const survivorsClients = fleet.byDoc.get(docId)!.filter((client) => client.home !== victim);
    const syncedAtLimit =
      latencyMs === null
        ? `${survivorsClients.filter((client) => client.synced).length}/${survivorsClients.length}`
        : null;
    if (exited) await target.restart(victim);
    else if (mode === "stop") target.resume(victim);
    const healedAt = performance.now();
    const movedBack = fleet.rebalance();
    const settleMs = await fleet.settle(healedAt, LIMITS.settleMs);
    // The worst wait counts every token typed in its window: let the window close
    // and those tokens arrive before the round's accounting ends.
    const windowLeft = round.windowEnd - performance.now();
    if (windowLeft > 0) {
      await new Promise((resolve) => setTimeout(resolve, windowLeft));
      await fleet.settle(performance.now(), LIMITS.settleMs);
    }
    const deliveries = round.deliveries();
    const record: RoundRecord = {
      index,
      docId,
      victim: target.nodeName(victim),
      atS: (round.t0 - runStarted) / 1000,
      latencyMs,
      worstWaitMs: round.worstWaitMs(),
      ownerGoneMs: ownerMoves?.goneMs ?? null,
      ownerMovedMs: ownerMoves?.movedMs ?? null,
      affectedDocs: chosen.affected.length,
      affectedDelivered: deliveries.length,
      affectedMaxMs: deliveries.length === chosen.affected.length ? Math.max(...deliveries) : null,
      relayCloses: round.relayCloses,
      relayCloseCodes: round.relayCloseCodes,
      movedCloses: round.movedCloses,
      victimCloses: round.victimCloses,
      refusedByVictim: round.refusedByVictim,
      refusedBySurvivors: round.refusedBySurvivors,
      downMs: mode === "baseline" ? null : healedAt - round.t0,
      movedBack,
      settleMs,
      loopDelayMaxMs: roundLoopDelay.max / 1e6,
      ownerAtLimit,
      syncedAtLimit,
    };
    const codes = Object.entries(round.relayCloseCodes)
      .map(([code, count]) => `${count}×${code}`)
      .join(" ");
    log(
      `[failover] ${clock()}  ${target.name} ${mode} ${index + 1}: ${record.victim} ` +
        `(${chosen.affected.length} docs) -> first delivered edit ${fmtMs(latencyMs ?? Infinity)} ms` +
        `, worst wait ${fmtMs(record.worstWaitMs)} ms` +
        `${ownerMoves ? ` (owner in Redis: gone ${fmtMs(ownerMoves.goneMs)}, moved ${fmtMs(ownerMoves.movedMs)} ms)` : ""}` +
        `${latencyMs === null ? ` (then: owner ${ownerAtLimit ?? "?"}, survivors' clients synced ${syncedAtLimit})` : ""}` +
        `${record.affectedMaxMs === null ? ` (${deliveries.length}/${chosen.affected.length} docs)` : `, all docs ${fmtMs(record.affectedMaxMs)} ms`}; ` +
        `relay closes ${round.relayCloses}${codes ? ` (${codes})` : ""}` +
        `${round.refusedBySurvivors ? `, ${round.refusedBySurvivors} connects refused by survivors` : ""}` +
        `${record.downMs === null ? "" : `; back after ${fmtMs(record.downMs)} ms`}` +
        `; settled ${settleMs === null ? `NOT within ${LIMITS.settleMs} ms` : `in ${fmtMs(settleMs)} ms`}` +
        `${record.loopDelayMaxMs > LOOP_STALL_MS ? `; generator loop stalled up to ${fmtMs(record.loopDelayMaxMs)} ms` : ""}`,
    );
    return record;
  } finally {
    fleet.endRound();
  }
}

/** Pauses typing, waits for convergence and counts tokens missing from clients and storage. */
async function checkpoint(
  target: FailoverTarget,
  fleet: Fleet,
  known: Set<string>,
): Promise<Pick<ModeRecord, "lostFromClients" | "lostFromStore" | "lostSample" | "convergence">> {
  fleet.stopTyping();
  const convergence = await fleet.converge(LIMITS.convergeMs);
  const stored = target.readStored ? await target.readStored(fleet.docIds) : undefined;
  const missing = fleet.missing(stored);
  let lostFromClients = 0;
  let lostFromStore = 0;
  const lostSample: string[] = [];
  for (const { docId, fromClients, fromStore } of missing) {
    for (const [where, tokens] of [
      ["clients", fromClients],
      ["store", fromStore],
    ] as const) {
      for (const token of tokens) {
        const key = `${where} ${docId} ${token}`;
        if (known.has(key)) continue;
        known.add(key);
        if (where === "clients") lostFromClients++;
        else lostFromStore++;
        if (lostSample.length < 20) lostSample.push(key);
      }
    }
  }
  fleet.startTyping();
  const settleMs = await fleet.settle(performance.now(), LIMITS.settleMs);
  if (settleMs === null)
    log(`[failover] the load did not settle within ${LIMITS.settleMs} ms after a checkpoint`);
  return { lostFromClients, lostFromStore: stored ? lostFromStore : null, lostSample, convergence };
}

async function runTarget(
  target: FailoverTarget,
  modesToRun: readonly (BenchMode | "baseline")[],
  docIds: readonly string[],
): Promise<TargetRecord> {
  const fleet = new Fleet(target, target.dialect, docIds, CLIENTS_PER_DOC / target.count, options.rate);
  current.fleet = fleet;
  const cpu = new CpuMeter(() => target.pids());
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  const roundLoopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  roundLoopDelay.enable();
  try {
    await fleet.open(LIMITS.connectMs);
    fleet.startTyping();
    const warmUp = await fleet.settle(performance.now(), LIMITS.settleMs);
    if (warmUp === null)
      throw new Error(`the load did not settle within ${LIMITS.settleMs} ms of connecting`);
    let ownerKeyPttlMaxMs: number | undefined;
    if (target instanceof OpstreamCluster) {
      ownerKeyPttlMaxMs = await target.ownerKeyPttlMax(docIds);
      log(`[failover] owner keys' longest remaining TTL after warm-up: ${ownerKeyPttlMaxMs} ms`);
    }
    log(
      `[failover] ${clock()}  ${target.name}: ${fleet.clients.length} clients on ${docIds.length} docs typing`,
    );
    const known = new Set<string>();
    const modeRecords: ModeRecord[] = [];
    for (const mode of modesToRun) {
      await target.scrape?.();
      const before = target.ledger?.totals();
      const rounds: RoundRecord[] = [];
      let steady: ModeRecord["steady"];
      if (mode === "steady") {
        if (!(target instanceof OpstreamCluster)) throw new Error(`${target.name} has no steady mode`);
        log(`[failover] ${clock()}  ${target.name} steady: ${options.steadySeconds} s without a fault`);
        steady = await runSteady(target, fleet, options.steadySeconds, options.rate, roundLoopDelay);
        printSteady(steady, log);
      } else {
        for (let index = 0; index < options.kills; index++)
          rounds.push(await runRound(target, fleet, mode, index, roundLoopDelay));
      }
      const found = await checkpoint(target, fleet, known);
      await target.scrape?.();
      const after = target.ledger?.totals();
      const metrics = before && after ? metricDeltas(before, after) : null;
      log(
        `[failover] ${clock()}  ${target.name} ${mode}: converged ${found.convergence.converged ? `in ${fmtMs(found.convergence.ms)} ms` : `NOT (${found.convergence.notConverged.length} docs)`}` +
          `, lost ${found.lostFromClients} from clients, ${found.lostFromStore ?? "–"} from storage` +
          (metrics ? `; counters: ${formatMetrics(metrics)}` : ""),
      );
      modeRecords.push({
        target: target.name,
        mode,
        rounds,
        ...(steady ? { steady } : {}),
        ...found,
        metrics,
      });
    }
    fleet.stopTyping();
    return {
      target: target.name,
      clients: fleet.clients.length,
      docs: docIds.length,
      modes: modeRecords,
      tokensTyped: fleet.typed,
      sockets: fleet.sockets(),
      closesOutsideRounds: fleet.outside,
      generator: {
        cpu: cpu.stop(),
        loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
        loopDelayMaxMs: loopDelay.max / 1e6,
        roundLoopDelayMaxMs: Math.max(
          0,
          ...modeRecords.flatMap((m) => m.rounds.map((r) => r.loopDelayMaxMs)),
        ),
        heapUsedMiB: process.memoryUsage().heapUsed / 2 ** 20,
      },
      ...(ownerKeyPttlMaxMs === undefined ? {} : { ownerKeyPttlMaxMs }),
    };
  } finally {
    loopDelay.disable();
    roundLoopDelay.disable();
    cpu.stop();
    fleet.close();
    current.fleet = undefined;
  }
}

// ---------------------------------------------------------------------------
// Main and clean-up

/** What is running, for the clean-up on any exit. */
const current: {
  fleet: Fleet | undefined;
  targets: (FailoverTarget & { killNow(): void })[];
  redis: RedisServer | undefined;
  storage: BenchStorage | undefined;
} = { fleet: undefined, targets: [], redis: undefined, storage: undefined };

async function cleanUp(): Promise<void> {
  current.fleet?.close();
  current.fleet = undefined;
  for (const target of current.targets.splice(0).reverse()) await target.stop();
  await current.redis?.stop();
  current.redis = undefined;
  await current.storage?.stop();
  current.storage = undefined;
}

// Whatever ends the process, no node outlives it (redis-server, Postgres and temp dirs have their own hooks).
process.once("exit", () => {
  for (const target of current.targets) target.killNow();
});

/** opstream's nodes take OPSTREAM_* from the environment: only the CLI's defaults and the bench's flags count. */
function clearOpstreamEnvironment(): void {
  for (const name of Object.keys(process.env)) {
    if (!name.startsWith("OPSTREAM_")) continue;
    log(`[failover] ignoring ${name}=${process.env[name]}: the nodes run at the CLI's defaults`);
    delete process.env[name];
  }
}

async function main(): Promise<number> {
  clearOpstreamEnvironment();
  const defaults = cliDefaults();
  const leaseTtlMs = options.leaseTtlMs ?? defaults.leaseTtlMs;
  const atDefaults = options.leaseTtlMs === undefined || options.leaseTtlMs === defaults.leaseTtlMs;
  const startedAt = new Date();
  const loadAtStart = loadavg();
  const docIds = Array.from({ length: options.docs }, (_, i) => `failover-${i}`);
  const modes = ["baseline", ...options.modes] as const;
  log(
    `[failover] ${options.kills} rounds per fault mode (${modes.join(", ")})` +
      `${options.modes.includes("steady") ? `, steady ${options.steadySeconds} s` : ""}` +
      `${options.peers ? ", then Hocuspocus (baseline, kill)" : ""}; ` +
      `${options.docs} docs × ${CLIENTS_PER_DOC} clients at ${options.rate} edits/s each; opstream on ` +
      `${options.storage}, lease TTL ${leaseTtlMs} ms, request timeout ${defaults.requestTimeoutMs} ms`,
  );
  if (!atDefaults) {
    const banner = "!".repeat(78);
    log(banner);
    log(`!!! --lease-ttl-ms ${leaseTtlMs}: the nodes are NOT at default settings`);
    log(
      `!!! (the CLI's default lease TTL is ${defaults.leaseTtlMs} ms); every figure below is for ${leaseTtlMs} ms`,
    );
    log(banner);
  }
  const redis = await startRedis();
  current.redis = redis;
  const storage = await startStorage(options.storage);
  current.storage = storage;
  const results: TargetRecord[] = [];

  const opstream = await OpstreamCluster.start({
    count: 3,
    redisUrl: redis.url,
    storage,
    keyPrefix: `failover-${randomUUID().slice(0, 8)}:`,
    managementToken: randomBytes(16).toString("hex"),
    leaseTtlMs: options.leaseTtlMs,
  });
  current.targets.push(opstream);
  results.push(await runTarget(opstream, modes, docIds));
  await current.targets.pop()?.stop();

  if (options.peers) {
    const hocuspocus = await HocuspocusPair.start(redis.url);
    current.targets.push(hocuspocus);
    results.push(await runTarget(hocuspocus, ["baseline", "kill"], docIds));
    await current.targets.pop()?.stop();
  }

  printReport(
    results,
    {
      storage: options.storage,
      leaseTtlMs,
      leaseTtlIsDefault: atDefaults,
      requestTimeoutMs: defaults.requestTimeoutMs,
      rate: options.rate,
      deliveryLimitMs: LIMITS.deliveryMs,
    },
    log,
  );
  const lost = results
    .flatMap((t) => t.modes)
    .reduce((sum, m) => sum + m.lostFromClients + (m.lostFromStore ?? 0), 0);
  const diverged = results.flatMap((t) => t.modes).filter((m) => !m.convergence.converged).length;
  const seconds = (performance.now() - runStarted) / 1000;
  const load = (averages: number[]): string => averages.map((n) => n.toFixed(1)).join(" ");
  log(
    `lost edits: ${lost}; checkpoints that did not converge: ${diverged}; run took ${(seconds / 60).toFixed(1)} min; ` +
      `load average ${load(loadAtStart)} at the start, ${load(loadavg())} at the end (${availableParallelism()} cores)`,
  );
  if (!atDefaults) log(`NOTE: lease TTL ${leaseTtlMs} ms set by --lease-ttl-ms, NOT the default`);

  const dir = new URL("./results/", import.meta.url);
  mkdirSync(dir, { recursive: true });
  const file = new URL(`failover-${startedAt.toISOString().replace(/[:.]/g, "-")}.json`, dir);
  const record = {
    startedAt: startedAt.toISOString(),
    seconds,
    machine: {
      cpu: cpus()[0]?.model ?? "unknown",
      cores: availableParallelism(),
      node: process.version,
      /** 1, 5 and 15 min load averages as the run started and as it ended (other work on the machine). */
      loadAverage: { start: loadAtStart, end: loadavg() },
    },
    config: {
      ...options,
      clientsPerDoc: CLIENTS_PER_DOC,
      limits: LIMITS,
      opstreamDefaults: defaults,
      /** What the nodes ran with: NOT the default when `leaseTtlAtDefault` is false. */
      leaseTtlMs,
      leaseTtlAtDefault: atDefaults,
    },
    targets: results,
  };
  writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
  log(`results: ${file.pathname}`);
  return lost > 0 || diverged > 0 ? 1 : 0;
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    log(`[failover] ${signal}: cleaning up`);
    void cleanUp().finally(() => process.exit(130));
  });
}

main().then(
  async (code) => {
    await cleanUp();
    process.exit(code);
  },
  async (error: unknown) => {
    console.error("[failover] failed:", error);
    await cleanUp().catch((cleanUpError: unknown) =>
      console.error("[failover] clean-up failed:", cleanUpError),
    );
    process.exit(1);
  },
);
