/**
 * The check that ends a fan-out or saturation run. The lean clients never hold the
 * document, so nothing in the run shows that the server kept what it passed on: a
 * full client (bench/support/*-client.ts: a Y.Doc that applies everything) joins a
 * few documents after the sending stopped, syncs, and must find every token the
 * generator sent to each of them (by sender and seq: seqs 0 … count − 1).
 */
import { connectHocuspocus } from "../support/hocuspocus-client.js";
import { connect, type BenchClient } from "../support/y-websocket-client.js";
import type { RunningTarget } from "../targets/index.js";
import type { SenderCount } from "./messages.js";
import { TEXT, tokensOf } from "./tokens.js";

/** Documents verified per run. */
export const CHECKED_DOCS = 3;
/**
 * How long a verified document may take to hold every token once its replica synced:
 * a loaded server may still have updates queued when the drain ends.
 */
const CONVERGE_TIMEOUT_MS = 10_000;
const POLL_MS = 100;

export interface Convergence {
  /** Documents verified. */
  readonly docs: number;
  /** Tokens sent to them that their replica lacked at the deadline. */
  readonly missing: number;
  /** One line per document that lacked tokens or could not be read. */
  readonly problems: string[];
}

/** Up to {@link CHECKED_DOCS} of `docs`, spread over the list (first, middle, last). */
export function docsToCheck(docs: readonly string[]): string[] {
  const picks = [0, Math.floor((docs.length - 1) / 2), docs.length - 1].map((i) => docs[i]);
  return [...new Set(picks.filter((doc) => doc !== undefined))].slice(0, CHECKED_DOCS);
}

/** The tokens `expected` says were sent that `text` lacks: how many, and the first as `sender:seq`. */
function lacking(text: string, expected: readonly SenderCount[]): { count: number; first?: string } {
  const seen = tokensOf(text);
  let count = 0;
  let first: string | undefined;
  for (const { sender, count: sent } of expected) {
    const seqs = seen.get(sender);
    for (let seq = 0; seq < sent; seq++) {
      if (seqs?.has(seq)) continue;
      count += 1;
      first ??= `${sender}:${seq}`;
    }
  }
  return { count, first };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Verifies `docs` on `target` against `senders` (the generator's counts). Document i
 * is read through node i mod the node count, so on 2-node targets the check also
 * crosses the backplane.
 */
export async function checkConvergence(
  target: RunningTarget,
  senders: readonly SenderCount[],
  docs: readonly string[],
): Promise<Convergence> {
  const urls = target.urls();
  let missing = 0;
  const problems: string[] = [];
  for (const [i, doc] of docs.entries()) {
    const expected = senders.filter((s) => s.doc === doc);
    const total = expected.reduce((sum, s) => sum + s.count, 0);
    const url = urls[i % urls.length]!;
    const client: BenchClient =
      target.dialect === "hocuspocus" ? connectHocuspocus(url, doc) : connect(url, doc);
    try {
      await client.synced;
      const deadline = performance.now() + CONVERGE_TIMEOUT_MS;
      let gap = lacking(client.doc.getText(TEXT).toString(), expected);
      while (gap.count > 0 && performance.now() < deadline) {
        await sleep(POLL_MS);
        gap = lacking(client.doc.getText(TEXT).toString(), expected);
      }
      if (gap.count > 0) {
        missing += gap.count;
        problems.push(
          `${doc}: a full replica synced through ${url} lacks ${gap.count} of the ${total} tokens sent ` +
            `(first missing sender:seq ${gap.first}) ${CONVERGE_TIMEOUT_MS} ms after its sync`,
        );
      }
    } catch (error) {
      missing += total;
      problems.push(`${doc}: the full replica could not sync through ${url}: ${String(error)}`);
    } finally {
      await client.close();
    }
  }
  return { docs: docs.length, missing, problems };
}
