import { strict as assert } from "node:assert";
import type * as Y from "yjs";
import { connectClient, type Client } from "../support/clients.js";
import type { Cluster } from "../support/cluster.js";
import { eventually } from "../support/eventually.js";
import { PROVIDER_VERSIONS, connectHocuspocus, type HocuspocusClient } from "../support/hocuspocus.js";
import type { ServerProcess } from "../support/process.js";
import { storedText, tokensOf } from "./support.js";

/*
 * Editing helpers of the multi-node specs (failover, Redis outage): typists that
 * append unique tokens through stock clients of either dialect, and the checks
 * that every token reached every client and storage.
 */

/** Each typist appends a token this often. */
export const TYPING_EVERY_MS = 10;

/** What the specs edit: a stock client of either dialect. */
export interface Editor {
  readonly text: Y.Text;
}

/** Typists appending unique tokens (`<label><i>-<n>`) until stopped; `typed` lists every token, markers included. */
export interface Typing {
  readonly typed: Set<string>;
  stop(): Promise<void>;
}

export function keepTyping(
  editors: readonly Editor[],
  label: string,
  typed = new Set<string>(),
  everyMs = TYPING_EVERY_MS,
): Typing {
  let running = true;
  const loops = editors.map(async (editor, e) => {
    for (let n = 0; running; n++) {
      const token = `${label}${e}-${n}`;
      editor.text.insert(editor.text.length, `${token};`);
      typed.add(token);
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  });
  return {
    typed,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** Tokens of `editor`'s text written by anyone but the typists of `label` at index `own`. */
export function receivedBy(editor: Editor, own: string): number {
  return [...tokensOf(editor.text.toString())].filter((token) => !token.startsWith(`${own}-`)).length;
}

/** How many tokens typed by others each of `editors` (the typists of `label`) holds. */
export function receivedCounts(editors: readonly Editor[], label: string): number[] {
  return editors.map((editor, e) => receivedBy(editor, `${label}${e}`));
}

/**
 * Every editor holds the same text with nothing pending, each token once; it and
 * storage hold every token in `typed`, and storage holds exactly that text.
 * Resolves when the check that passed started (`performance.now()`).
 */
export async function assertAllHold(
  cluster: Cluster,
  doc: string,
  editors: readonly Editor[],
  typed: ReadonlySet<string>,
  timeoutMs = 20_000,
): Promise<number> {
  let checkedAt = 0;
  await eventually(async () => {
    checkedAt = performance.now();
    const texts = editors.map((editor) => editor.text.toString());
    const text = texts[0] ?? "";
    texts.forEach((other, i) =>
      assert.ok(
        other === text,
        `client ${i} holds other text than client 0 (${other.length} vs ${text.length})`,
      ),
    );
    for (const [i, editor] of editors.entries())
      assert.equal(editor.text.doc?.store.pendingStructs, null, `client ${i} has pending structs`);
    const held = tokensOf(text);
    assert.equal(text.split(";").filter(Boolean).length, held.size, "no token twice");
    const lost = [...typed].filter((token) => !held.has(token));
    assert.deepEqual(lost.slice(0, 10), [], `${lost.length} typed tokens are missing from the clients`);
    const stored = await storedText(cluster, doc);
    const unstored = [...typed].filter((token) => !tokensOf(stored).has(token));
    assert.deepEqual(unstored.slice(0, 10), [], `${unstored.length} typed tokens are missing from storage`);
    assert.ok(
      stored === text,
      `storage holds other text than the clients (${stored.length} vs ${text.length})`,
    );
  }, timeoutMs);
  return checkedAt;
}

/** A counter's value on `node`'s /metrics for the series with exactly these labels (0 when absent). */
export async function series(
  node: ServerProcess,
  name: string,
  labels: Record<string, string>,
): Promise<number> {
  const wanted = Object.entries(labels)
    .map(([key, value]) => `${key}="${value}"`)
    .sort()
    .join(",");
  const text = await (await fetch(`${node.httpUrl}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
  for (const line of text.split("\n")) {
    const match = /^([a-z_]+)\{([^}]*)\} ([0-9.e+-]+)$/.exec(line);
    if (match?.[1] === name && match[2]!.split(",").sort().join(",") === wanted) return Number(match[3]);
  }
  return 0;
}

/** A y-websocket client's lost sockets: "disconnected" status events, and each close's code and reason. */
export function countDisconnects(client: Client): { readonly count: number; readonly closes: string[] } {
  const counter = { count: 0, closes: [] as string[] };
  client.provider.on("status", ({ status }: { status: string }) => {
    if (status === "disconnected") counter.count += 1;
  });
  client.provider.on("connection-close", (event: { code: number; reason: string } | null) => {
    counter.closes.push(event ? `${event.code} ${event.reason}` : "closed by the client");
  });
  return counter;
}

export function measure(values: Record<string, string | number>): void {
  const fields = Object.entries(values).map(([key, value]) => `${key}=${value}`);
  console.log(`[measure] ${fields.join(" ")}`);
}

/** The stored ops of `doc` (after the latest snapshot) with their epochs, and the newest epoch storage has. */
export async function storedEpochs(
  cluster: Cluster,
  doc: string,
): Promise<{ epoch: number; ops: readonly { seq: number; epoch: number }[] }> {
  const store = cluster.openStore();
  try {
    const { snapshot, ops } = await store.load(doc);
    return {
      epoch: Math.max(snapshot?.epoch ?? 0, ...ops.map((op) => op.epoch)),
      ops: ops.map(({ seq, epoch }) => ({ seq, epoch })),
    };
  } finally {
    await store.close();
  }
}

/**
 * Stock clients on chosen nodes, each pushed onto `running` (which the spec
 * destroys after each case): y-websocket, and the Hocuspocus provider on `/hocuspocus`.
 */
export function clientsOn(running: { destroy(): void }[]): {
  yws: (node: ServerProcess, doc: string) => Client;
  hocuspocus: (node: ServerProcess, doc: string) => HocuspocusClient;
} {
  return {
    yws: (node, doc) => {
      const client = connectClient(node.url, doc);
      running.push(client);
      return client;
    },
    hocuspocus: (node, doc) => {
      const client = connectHocuspocus(PROVIDER_VERSIONS[1]!, `${node.url}/hocuspocus`, doc);
      running.push(client);
      return client;
    },
  };
}
