/**
 * What document history costs (issue #22): storage bytes per version in each store,
 * the time to read a version of a 20,000-update document through the management API
 * of a real `opstream serve` (as JSON, as Yjs, and diffed against now), and the
 * memory a diff works in. S1 latency with history on and off is measured by the
 * side-by-side bench:
 *
 *   npm run bench -- --scenarios S1 --targets opstream,opstream-no-history,opstream-busy-history,relay
 *
 * It reports numbers and asserts none; it exits non-zero if a step fails or a read
 * version's content is wrong.
 *
 *   npm run bench:history [-- --updates 20000 --versions 20 --reads 20]
 */
import { statSync } from "node:fs";
import { parseArgs } from "node:util";
import * as Y from "yjs";
import type { DocumentStore } from "../src/index.js";
import { spawnServer } from "../spec/support/process.js";
import { describeMachine, machineInfo } from "./support/machine-info.js";
import { postgresBackend, redisBackend, sqliteBackend, type Backend } from "./support/storages.js";

const { values } = parseArgs({
  options: {
    updates: { type: "string", default: "20000" },
    versions: { type: "string", default: "20" },
    reads: { type: "string", default: "20" },
  },
});
const UPDATES = Number(values.updates);
const VERSIONS = Number(values.versions);
const READS = Number(values.reads);
const DOC_ID = "history-bench";
const TOKEN = "history-bench-management-token";
const log = (line: string): void => void process.stdout.write(`${line}\n`);

/**
 * A typing session: `count` updates from 4 writers, each one word typed at a random
 * place or (one in five) a short range deleted, so the state carries tombstones
 * as real documents do. Deterministic (a fixed LCG), so every store gets the same bytes.
 */
function typingSession(count: number): { updates: Uint8Array[]; doc: Y.Doc } {
  let seed = 42;
  const random = (): number => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const doc = new Y.Doc();
  const writers = Array.from({ length: 4 }, () => new Y.Doc());
  const updates: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const writer = writers[i % writers.length]!;
    Y.applyUpdate(writer, Y.encodeStateAsUpdate(doc, Y.encodeStateVector(writer)));
    const text = writer.getText("text");
    // What the edit alone changed, as a provider sends it (a full-state diff would
    // carry the whole delete set every time).
    let update: Uint8Array | undefined;
    const capture = (change: Uint8Array): void => void (update = change);
    writer.on("update", capture);
    if (text.length > 20 && random() < 0.2) {
      text.delete(Math.floor(random() * (text.length - 5)), 1 + Math.floor(random() * 4));
    } else {
      text.insert(Math.floor(random() * (text.length + 1)), `w${i % 97} `);
    }
    writer.off("update", capture);
    if (!update) throw new Error("an edit produced no update");
    Y.applyUpdate(doc, update);
    updates.push(update);
  }
  return { updates, doc };
}

/** Appends `updates` as ops (100 per append, as a busy owner's group commit) and saves a version every `every` ops. */
async function fill(store: DocumentStore, updates: readonly Uint8Array[], every: number): Promise<number[]> {
  const epoch = await store.claimEpoch(DOC_ID);
  const replica = new Y.Doc();
  const versionIds: number[] = [];
  for (let start = 0; start < updates.length; start += 100) {
    const batch = updates.slice(start, start + 100);
    const seqs = await store.append(DOC_ID, epoch, batch);
    for (const update of batch) Y.applyUpdate(replica, update);
    if ((start + batch.length) % every === 0) {
      const saved = await store.saveVersion(DOC_ID, epoch, {
        seq: seqs.at(-1)!,
        time: Date.now(),
        kind: "auto",
        name: "",
        clients: [...replica.store.clients.keys()].sort((a, b) => a - b),
        authors: ["bench"],
        restoredFrom: 0,
        state: Y.encodeStateAsUpdate(replica),
      });
      versionIds.push(saved.id);
    }
  }
  return versionIds;
}

interface StorageRow {
  store: string;
  versions: number;
  stateBytesAvg: number;
  stateBytesLast: number;
  diskBytesPerVersion: number | null;
}

async function storageCost(backend: Backend, updates: readonly Uint8Array[]): Promise<StorageRow> {
  // The same ops on two locations, one with versions: on SQLite, the difference in
  // file size (closed, so the WAL is checkpointed into the file) is what the
  // versions take on disk.
  const plain = await backend.create("plain");
  const versioned = await backend.create("versioned");
  const plainStore = plain.open();
  const store = versioned.open();
  let ids: number[];
  let sizes: number[];
  try {
    await Promise.all([plainStore.whenReady?.(), store.whenReady?.()]);
    const epoch = await plainStore.claimEpoch(DOC_ID);
    for (let start = 0; start < updates.length; start += 100) {
      await plainStore.append(DOC_ID, epoch, updates.slice(start, start + 100));
    }
    ids = await fill(store, updates, Math.floor(updates.length / VERSIONS));
    sizes = (await store.listVersions(DOC_ID)).map((info) => info.bytes);
  } finally {
    await Promise.all([plainStore.close(), store.close()]);
  }
  return {
    store: backend.name,
    versions: ids.length,
    stateBytesAvg: Math.round(sizes.reduce((a, b) => a + b, 0) / sizes.length),
    stateBytesLast: sizes.at(-1) ?? 0,
    diskBytesPerVersion:
      backend.name === "sqlite"
        ? Math.round((fileBytes(versioned.storage) - fileBytes(plain.storage)) / ids.length)
        : null,
  };
}

/** Bytes of a SQLite database with its WAL. */
function fileBytes(path: string): number {
  let total = statSync(path).size;
  try {
    total += statSync(`${path}-wal`).size;
  } catch {
    // no WAL file
  }
  return total;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

async function readTimes(updates: readonly Uint8Array[], expected: string): Promise<Record<string, string>> {
  const backend = await sqliteBackend();
  const location = await backend.create("reads");
  const store = location.open();
  await store.whenReady?.();
  const ids = await fill(store, updates, updates.length); // one version, of the whole session
  await store.close();
  const versionId = ids[0]!;
  const server = await spawnServer({ storage: location.storage, args: ["--management-token", TOKEN] });
  const base = `http://127.0.0.1:${server.port}/api/documents/${DOC_ID}/versions/${versionId}`;
  const headers = { authorization: `Bearer ${TOKEN}` };
  const rows: Record<string, string> = {};
  try {
    for (const [label, url] of [
      ["JSON", base],
      ["Yjs", `${base}?format=yjs`],
      ["diff vs now", `${base}/diff/now`],
    ] as const) {
      const times: number[] = [];
      for (let i = 0; i < READS + 1; i++) {
        const started = performance.now();
        const response = await fetch(url, { headers });
        const body: unknown =
          label === "Yjs" ? new Uint8Array(await response.arrayBuffer()) : await response.json();
        times.push(performance.now() - started);
        if (!response.ok) throw new Error(`${label}: HTTP ${response.status}`);
        if (label === "JSON" && (body as { content: { text: string } }).content.text !== expected) {
          throw new Error("the version read back is not the document");
        }
      }
      const [first, ...rest] = times;
      rest.sort((a, b) => a - b);
      rows[label] =
        `first ${first!.toFixed(1)} ms, then p50 ${percentile(rest, 50).toFixed(1)} ms, p99 ${percentile(rest, 99).toFixed(1)} ms`;
    }
  } finally {
    await server.stop();
    await backend.stop();
  }
  return rows;
}

/** The heap a diff's temporary gc:false document takes for two versions of the session. */
function diffWorkingSet(updates: readonly Uint8Array[]): { mib: number; stateMib: number } {
  const half = new Y.Doc();
  for (const update of updates.slice(0, updates.length / 2)) Y.applyUpdate(half, update);
  const whole = new Y.Doc();
  for (const update of updates) Y.applyUpdate(whole, update);
  const from = Y.encodeStateAsUpdate(half);
  const to = Y.encodeStateAsUpdate(whole);
  half.destroy();
  whole.destroy();
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const before = process.memoryUsage().heapUsed;
  const merged = new Y.Doc({ gc: false });
  Y.applyUpdate(merged, from);
  Y.applyUpdate(merged, to);
  gc?.();
  const after = process.memoryUsage().heapUsed;
  merged.destroy();
  return { mib: (after - before) / 2 ** 20, stateMib: (from.byteLength + to.byteLength) / 2 ** 20 };
}

async function main(): Promise<void> {
  log(`# document history: ${UPDATES} updates, ${VERSIONS} versions`);
  log(describeMachine(machineInfo()));
  const { updates, doc } = typingSession(UPDATES);
  const expected = doc.getText("text").toString();
  log(
    `document: ${expected.length} characters visible, state ${Y.encodeStateAsUpdate(doc).byteLength} bytes, ` +
      `${updates.reduce((a, u) => a + u.byteLength, 0)} bytes of updates`,
  );

  log("\n## storage per version (each version holds the whole state at its seq)\n");
  log("| store | versions | state bytes, average | state bytes, last | on disk per version |");
  log("|---|---:|---:|---:|---:|");
  for (const start of [sqliteBackend, redisBackend, postgresBackend]) {
    const backend = await start();
    try {
      const row = await storageCost(backend, updates);
      log(
        `| ${row.store} | ${row.versions} | ${row.stateBytesAvg} | ${row.stateBytesLast} | ${row.diskBytesPerVersion ?? "–"} |`,
      );
    } finally {
      await backend.stop();
    }
  }

  log(
    `\n## reading the version of the ${UPDATES}-update document (opstream serve, SQLite, ${READS} reads)\n`,
  );
  for (const [label, row] of Object.entries(await readTimes(updates, expected))) log(`- ${label}: ${row}`);

  const { mib, stateMib } = diffWorkingSet(updates);
  log(
    `\n## diff working set\n\nthe temporary gc:false document of a diff between the half-way version and the last: ` +
      `${mib.toFixed(1)} MiB of heap for ${stateMib.toFixed(2)} MiB of version states` +
      ((globalThis as { gc?: unknown }).gc ? "" : " (run node with --expose-gc for a steadier figure)"),
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
