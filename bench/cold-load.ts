/**
 * Cold load of one document made of 20,000 one-character edits, per server store
 * (SQLite, Redis, Postgres) and per history shape:
 *
 * - "log-only": the ops appended to the store directly, no snapshot: the whole log
 *   is replayed (the worst case);
 * - "as-served": the same edits typed by one client through `opstream serve`, whose
 *   snapshot policy folds the log as it goes; then the server is stopped (SIGTERM).
 *
 * A cold sync is timed from opening a WebSocket to a fresh `opstream serve` until the
 * client applied the server's SyncStep2 (and holds the full text). Every repetition
 * gets a fresh server and a fresh copy of the storage, because a load changes what
 * it loads: a log of 100+ ops is snapshotted right after the load, and that snapshot
 * is queued ahead of the client's SyncStep1, so it is part of the cold sync. The
 * store's own `load()` (and the Yjs replay) is timed in this process for comparison.
 * It reports times and asserts none; it exits non-zero if a step fails or a loaded
 * document's content is wrong.
 *
 *   npm run bench:cold-load
 */
import { mkdirSync, writeFileSync } from "node:fs";
import * as Y from "yjs";
import type { StoredDocument } from "../src/index.js";
import { spawnServer, type ServerProcess } from "../spec/support/process.js";
import {
  postgresBackend,
  redisBackend,
  sqliteBackend,
  type Backend,
  type Location,
} from "./support/storages.js";
import { describeMachine, machineInfo } from "./support/machine-info.js";
import { connect } from "./support/y-websocket-client.js";

const DOC_ID = "cold-load";
const OPS = 20_000;
const REPS = 5;
/** Ops per `append` call when writing the log directly (each op stays one entry of the log). */
const APPEND_BATCH = 100;
const SYNC_TIMEOUT_MS = 120_000;

const letter = (i: number): string => String.fromCharCode(97 + (i % 26));
const EXPECTED = Array.from({ length: OPS }, (_, i) => letter(i)).join("");

interface Shape {
  readonly name: "log-only" | "as-served";
  /** Writes the document into `location`; resolves once it is durable and nothing has it open. */
  write(location: Location): Promise<void>;
}

interface Result {
  backend: string;
  shape: Shape["name"];
  writeMs: number;
  layout: { snapshotSeq: number | null; snapshotBytes: number; logOps: number };
  storeLoadMs: number[];
  replayMs: number[];
  coldSyncMs: number[];
}

interface Stoppable {
  stop(): Promise<void>;
}
// Tracked from the moment they are asked for, so a signal during a start-up still
// stops them; stopping one twice is harmless, so stopped ones may stay in the sets.
const servers = new Set<Promise<Stoppable>>();
const backends = new Set<Promise<Stoppable>>();

async function stopAll(set: Set<Promise<Stoppable>>): Promise<void> {
  const started = await Promise.allSettled([...set]);
  set.clear();
  await Promise.allSettled(
    started.map((s) => (s.status === "fulfilled" ? s.value.stop() : Promise.resolve())),
  );
}

/** Stops every server, then every backend. Safe to call more than once. */
async function cleanUp(): Promise<void> {
  await stopAll(servers);
  await stopAll(backends);
}

function startServer(location: Location): Promise<ServerProcess> {
  const starting = spawnServer({ storage: location.storage, args: ["--no-sample", ...location.args] });
  servers.add(starting);
  return starting;
}

function startBackend(start: () => Promise<Backend>): Promise<Backend> {
  const starting = start();
  backends.add(starting);
  return starting;
}

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took over ${SYNC_TIMEOUT_MS} ms`)), SYNC_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function checkText(doc: Y.Doc, where: string): void {
  const text = doc.getText("text").toString();
  if (text !== EXPECTED) {
    throw new Error(`${where}: wrong content (${text.length} characters, expected ${OPS})`);
  }
}

/** Types the text into `doc`, one character per transaction (one update each). */
function type(doc: Y.Doc): void {
  const text = doc.getText("text");
  for (let i = 0; i < OPS; i++) text.insert(i, letter(i));
}

/** The session's own replay: the snapshot, then every op, in one transaction. */
function replay(stored: StoredDocument): Y.Doc {
  const doc = new Y.Doc();
  Y.transact(doc, () => {
    if (stored.snapshot) Y.applyUpdate(doc, stored.snapshot.state);
    for (const op of stored.ops) Y.applyUpdate(doc, op.update);
  });
  return doc;
}

const logOnly: Shape = {
  name: "log-only",
  async write(location) {
    const source = new Y.Doc();
    const updates: Uint8Array[] = [];
    source.on("update", (update: Uint8Array) => updates.push(update));
    type(source);
    const store = location.open();
    try {
      const epoch = await store.claimEpoch(DOC_ID);
      for (let i = 0; i < updates.length; i += APPEND_BATCH) {
        await store.append(DOC_ID, epoch, updates.slice(i, i + APPEND_BATCH));
      }
    } finally {
      await store.close();
    }
  },
};

const asServed: Shape = {
  name: "as-served",
  async write(location) {
    const server = await startServer(location);
    try {
      const client = connect(server.url, DOC_ID);
      // Frames sent while the document loads are capped (maxPendingFrames): type after the sync.
      await withTimeout(client.synced, "first sync");
      type(client.doc);
      await withTimeout(client.roundTrip(), "flush"); // answered once every edit is durable
      checkText(client.doc, "as-served writer");
      await client.close();
    } finally {
      await server.stop("SIGTERM");
    }
  },
};

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/** `load()` REPS times on a store opened (and warmed up on another document) in this process. */
async function measureStore(
  location: Location,
): Promise<Pick<Result, "layout" | "storeLoadMs" | "replayMs">> {
  const store = location.open();
  try {
    await store.load("warm-up"); // connects, checks the schema, loads scripts: not this document's cost
    const storeLoadMs: number[] = [];
    const replayMs: number[] = [];
    let stored: StoredDocument | undefined;
    for (let rep = 0; rep < REPS; rep++) {
      let started = performance.now();
      stored = await store.load(DOC_ID);
      storeLoadMs.push(performance.now() - started);
      started = performance.now();
      const doc = replay(stored);
      replayMs.push(performance.now() - started);
      checkText(doc, `${store.kind} load()`);
    }
    const layout = {
      snapshotSeq: stored?.snapshot?.seq ?? null,
      snapshotBytes: stored?.snapshot?.state.byteLength ?? 0,
      logOps: stored?.ops.length ?? 0,
    };
    return { layout, storeLoadMs, replayMs };
  } finally {
    await store.close();
  }
}

/** One cold sync: a fresh server on a fresh copy of the storage (start-up not timed). */
async function coldSync(backend: Backend, template: string, copy: string): Promise<number> {
  const server = await startServer(await backend.copy(template, copy));
  try {
    const client = connect(server.url, DOC_ID);
    const ms = await withTimeout(client.synced, "cold sync");
    checkText(client.doc, `${backend.name} cold sync`);
    await client.close();
    return ms;
  } finally {
    await server.stop("SIGTERM");
  }
}

async function run(backend: Backend, shape: Shape): Promise<Result> {
  const template = shape.name.replace("-", "_");
  const location = await backend.create(template);
  const started = performance.now();
  await shape.write(location);
  const writeMs = performance.now() - started;
  const store = await measureStore(location);
  const coldSyncMs: number[] = [];
  for (let rep = 1; rep <= REPS; rep++) {
    coldSyncMs.push(await coldSync(backend, template, `${template}_r${rep}`));
  }
  const result = { backend: backend.name, shape: shape.name, writeMs, ...store, coldSyncMs };
  log(
    `${backend.name} ${shape.name}: written in ${fmt(writeMs)} ms, cold syncs ${coldSyncMs.map(fmt).join(", ")} ms`,
  );
  return result;
}

const fmt = (ms: number): string => (ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0));
const log = (line: string): void => void process.stdout.write(`${line}\n`);

function printTable(results: readonly Result[]): void {
  const head = "backend|shape|snapshot|log ops|load() med|replay med|cold min|cold med|cold max".split("|");
  const rows = results.map((r) => [
    r.backend,
    r.shape,
    r.layout.snapshotSeq === null ? "none" : `seq ${r.layout.snapshotSeq}`,
    String(r.layout.logOps),
    fmt(median(r.storeLoadMs)),
    fmt(median(r.replayMs)),
    fmt(Math.min(...r.coldSyncMs)),
    fmt(median(r.coldSyncMs)),
    fmt(Math.max(...r.coldSyncMs)),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string =>
    cells.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ");
  log("");
  log(`times in ms; load()/replay: median of ${REPS} in this process; cold: ${REPS} fresh servers`);
  log(line(head));
  log(line(widths.map((w) => "-".repeat(w))));
  for (const row of rows) log(line(row));
}

async function main(): Promise<void> {
  const machine = machineInfo();
  const startedAt = new Date().toISOString();
  log(`cold load of ${OPS} one-character updates, ${REPS} repetitions`);
  log(describeMachine(machine));
  const results: Result[] = [];
  const versions: string[] = [];
  for (const start of [sqliteBackend, redisBackend, postgresBackend]) {
    const backend = await startBackend(start);
    versions.push(backend.version);
    log(`${backend.name}: ${backend.version}`);
    for (const shape of [logOnly, asServed]) results.push(await run(backend, shape));
    await backend.stop();
  }
  printTable(results);
  const dir = new URL("./results/", import.meta.url);
  mkdirSync(dir, { recursive: true });
  const file = new URL(`cold-load-${startedAt.replace(/[:.]/g, "-")}.json`, dir);
  const config = { ops: OPS, reps: REPS, appendBatch: APPEND_BATCH };
  writeFileSync(file, `${JSON.stringify({ startedAt, machine, versions, config, results }, null, 2)}\n`);
  log(`\nresults: ${file.pathname}`);
}

let interrupted = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    interrupted = true;
    process.stderr.write(`cold-load: ${signal}, stopping servers\n`);
    void cleanUp().finally(() => process.exit(130));
  });
}
main()
  .catch((error: unknown) => {
    if (interrupted) return; // the run fails because its servers were stopped
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    process.stderr.write(`cold-load failed: ${message}\n`);
    process.exitCode = 1;
  })
  .finally(() => cleanUp());
