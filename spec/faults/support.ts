import { strict as assert } from "node:assert";
import { createInterface } from "node:readline";
import * as Y from "yjs";
import { ownersOf } from "../cluster/support.js";
import { connectClient, synced } from "../support/clients.js";
import type { Cluster } from "../support/cluster.js";
import { eventually } from "../support/eventually.js";
import type { ServerProcess } from "../support/process.js";

/** What {@link assertConverged} compares. */
export interface ConvergenceCheck {
  /** The documents of every client in the case (on all nodes). */
  clients: readonly Y.Doc[];
  cluster: Cluster;
  docName: string;
  /** How long convergence may take. @default 10000 */
  timeoutMs?: number;
}

/** What every party agreed on. */
export interface Converged {
  /** The `"text"` type's content. */
  text: string;
  /** `Y.encodeStateVector` of the agreed state. */
  stateVector: Uint8Array;
  /** The owner node's index in `cluster.nodes`. */
  owner: number;
}

/**
 * Waits until every client, the document's one owner (as it serves a fresh client
 * connected straight to it) and a fresh load from storage hold the same state:
 * equal state vectors and delete sets (`Y.snapshot`), equal text, and no
 * pending structs or deletions anywhere (Yjs parks an update whose dependencies
 * are missing; that is a gap, not success). Rethrows the last mismatch after
 * `timeoutMs`.
 */
export async function assertConverged({
  clients,
  cluster,
  docName,
  timeoutMs = 10_000,
}: ConvergenceCheck): Promise<Converged> {
  const deadline = performance.now() + timeoutMs;
  const left = (): number => Math.max(1, deadline - performance.now());
  const owner = await eventually(async () => {
    const owners = await ownersOf(cluster.nodes, docName);
    assert.equal(owners.length, 1, `exactly one owner of "${docName}", got [${owners.join(", ")}]`);
    return owners[0]!;
  }, left());
  // A client of its own on the owner: it syncs from the owner's in-memory document.
  const probe = connectClient(cluster.nodes[owner]!.url, docName);
  try {
    await synced(probe, left());
    return await eventually(async () => {
      const stored = await loadStored(cluster, docName);
      try {
        const parties: [string, Y.Doc][] = [
          ...clients.map((doc, i): [string, Y.Doc] => [`client ${i}`, doc]),
          [`owner (node ${owner})`, probe.doc],
          ["storage", stored],
        ];
        const [, reference] = parties[0]!;
        const text = reference.getText("text").toString();
        const snapshot = Y.snapshot(reference);
        for (const [name, doc] of parties) {
          assert.equal(doc.store.pendingStructs, null, `${name} has pending structs`);
          assert.equal(doc.store.pendingDs, null, `${name} has pending deletions`);
          const own = doc.getText("text").toString();
          // Not assert.equal: a diff of megabytes of text would drown the report.
          assert.ok(
            own === text,
            `${name} holds other text than client 0 (${own.length} vs ${text.length} chars)`,
          );
          assert.ok(
            Y.equalSnapshots(Y.snapshot(doc), snapshot),
            `${name} has another state vector or delete set than client 0`,
          );
        }
        return { text, stateVector: Y.encodeStateVector(reference), owner };
      } finally {
        stored.destroy();
      }
    }, left());
  } finally {
    probe.destroy();
  }
}

/** The document as a cold load from the nodes' storage builds it (snapshot + later ops). */
export async function loadStored(cluster: Cluster, docName: string): Promise<Y.Doc> {
  const store = cluster.openStore();
  try {
    const { snapshot, ops } = await store.load(docName);
    const doc = new Y.Doc();
    if (snapshot) Y.applyUpdate(doc, snapshot.state);
    for (const op of ops) Y.applyUpdate(doc, op.update);
    return doc;
  } finally {
    await store.close();
  }
}

/** The sum of every series of `name` on the node's /metrics (labels summed); 0 when absent. */
export async function metricOf(node: ServerProcess, name: string): Promise<number> {
  const text = await (await fetch(`${node.httpUrl}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    const match = /^([a-z_]+)(?:\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
    if (match?.[1] === name) sum += Number(match[2]);
  }
  return sum;
}

/** A log entry of a node (pino JSON on its stdout). */
export interface LogEntry {
  readonly msg?: string;
  /** `Date.now()` when it was logged. */
  readonly time: number;
  readonly [field: string]: unknown;
}

/** Collects a node's log lines from now on. */
export function watchLogs(node: ServerProcess): {
  entries(msg: string): LogEntry[];
  all(): readonly LogEntry[];
} {
  const entries: LogEntry[] = [];
  const lines = createInterface({ input: node.child.stdout! });
  lines.on("line", (line) => {
    try {
      entries.push(JSON.parse(line) as LogEntry);
    } catch {
      // not a JSON log line (nothing else is printed on stdout)
    }
  });
  return { entries: (msg) => entries.filter((entry) => entry.msg === msg), all: () => entries };
}
