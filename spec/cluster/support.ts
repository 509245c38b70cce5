import { strict as assert } from "node:assert";
import * as Y from "yjs";
import { connectClient, type Client } from "../support/clients.js";
import type { Cluster } from "../support/cluster.js";
import { MANAGEMENT_TOKEN } from "../support/management.js";
import { startNginx, type Nginx } from "../support/nginx.js";
import type { ServerProcess } from "../support/process.js";

/**
 * Indexes of the nodes whose /healthz says they own `doc` (nodes that do not answer
 * are skipped). `owns` needs the management credential, which startCluster gives
 * every node.
 */
export async function ownersOf(nodes: readonly ServerProcess[], doc: string): Promise<number[]> {
  const answers = await Promise.all(
    nodes.map(async (node, index) => {
      try {
        const response = await fetch(`${node.httpUrl}/healthz?doc=${encodeURIComponent(doc)}`, {
          headers: { authorization: `Bearer ${MANAGEMENT_TOKEN}` },
          signal: AbortSignal.timeout(1000),
        });
        return ((await response.json()) as { owns?: boolean }).owns ? index : -1;
      } catch {
        return -1; // a stopped or killed node owns nothing we can see
      }
    }),
  );
  return answers.filter((index) => index >= 0);
}

/** nginx over the cluster's node ports, as samples/cluster deploys it (round-robin, no sticky sessions). */
export function proxyFor(cluster: Cluster): Promise<Nginx> {
  return startNginx({ upstreams: cluster.nodes.map((node) => ({ host: "127.0.0.1", port: node.port })) });
}

/** `n` stock clients through nginx: consecutive connections land on consecutive nodes. */
export function clientsVia(proxy: Nginx, doc: string, n: number): Client[] {
  return Array.from({ length: n }, () => connectClient(`ws://127.0.0.1:${proxy.port}`, doc));
}

/** What the helpers below read of a client: a stock y-websocket or Hocuspocus provider's document. */
export type Editor = Pick<Client, "doc" | "text">;

/** Keeps every client appending unique tokens (`c<i>-<n>;`) until stopped. */
export function keepWriting(clients: readonly Editor[], everyMs = 5): { stop(): Promise<void> } {
  let running = true;
  const loops = clients.map(async (client, c) => {
    for (let n = 0; running; n++) {
      client.text.insert(client.text.length, `c${c}-${n};`);
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

export function tokensOf(text: string): Set<string> {
  return new Set(text.split(";").filter(Boolean));
}

/** Tokens each client holds that another client wrote: what it had *received* from the server. */
export function receivedTokens(clients: readonly Editor[]): Set<string> {
  const received = new Set<string>();
  clients.forEach((client, c) => {
    for (const token of tokensOf(client.text.toString()))
      if (!token.startsWith(`c${c}-`)) received.add(token);
  });
  return received;
}

/** The document as storage has it (latest snapshot + ops after it), read from the nodes' store. */
export async function storedText(cluster: Cluster, doc: string): Promise<string> {
  const store = cluster.openStore();
  try {
    const { snapshot, ops } = await store.load(doc);
    const ydoc = new Y.Doc();
    if (snapshot) Y.applyUpdate(ydoc, snapshot.state);
    for (const op of ops) Y.applyUpdate(ydoc, op.update);
    return ydoc.getText("text").toString();
  } finally {
    await store.close();
  }
}

/** All clients hold the same text, and it has no pending (undeliverable) structs. */
export function assertConverged(clients: readonly Editor[]): string {
  const texts = clients.map((client) => client.text.toString());
  for (const text of texts) assert.equal(text, texts[0]);
  for (const client of clients) assert.equal(client.doc.store.pendingStructs, null, "no pending structs");
  return texts[0] ?? "";
}

/** Every client holds the same text, and it contains every token in `received`. */
export function assertConvergedWith(clients: readonly Editor[], received: ReadonlySet<string>): void {
  const final = tokensOf(assertConverged(clients));
  assert.deepEqual(
    [...received].filter((token) => !final.has(token)),
    [],
    "every update a client had received is in every client",
  );
}
