/**
 * Cold load (S4): one client writes a document of 20,000 one-character updates
 * through the target, the server process is stopped gracefully (so persisting peers
 * flush) and started again on the same storage, and a fresh client's sync is timed
 * from opening its socket to applying the server's SyncStep2; its content is checked.
 * The relay keeps nothing, so it is left out. bench/cold-load.ts compares opstream's
 * stores in more depth.
 */
import { connectHocuspocus } from "../support/hocuspocus-client.js";
import { connect, type BenchClient } from "../support/y-websocket-client.js";
import type { RunningTarget } from "../targets/index.js";
import { scaled, type Scenario } from "./scenario.js";

const UPDATES = 20_000;

function open(target: RunningTarget, doc: string): BenchClient {
  const url = target.urls()[0]!;
  return target.dialect === "hocuspocus" ? connectHocuspocus(url, doc) : connect(url, doc);
}

export const S4: Scenario = {
  name: "S4",
  description: `cold load: a doc of ${UPDATES} one-character updates, server restarted, a fresh client's sync`,
  metrics: [
    { key: "coldSyncMs", label: "cold sync ms", better: "lower" },
    { key: "writeMs", label: "write ms", better: "lower" },
  ],
  persist: true,
  applies: (target) => target.nodes === 1 && target.canPersist,
  async run({ target, options }) {
    const updates = scaled(UPDATES, options.scale, 100);
    const writer = open(target, "s4");
    await writer.synced;
    const started = performance.now();
    const text = writer.doc.getText("text");
    for (let i = 0; i < updates; i++) text.insert(i, String.fromCharCode(97 + (i % 26)));
    // Each server handles a socket's frames in order: the answer to this SyncStep1 comes after every update.
    await writer.roundTrip();
    const writeMs = performance.now() - started;
    const expected = text.toString();
    await writer.close();
    await target.restart();
    const reader = open(target, "s4");
    const coldSyncMs = await reader.synced;
    const loaded = reader.doc.getText("text").toString();
    await reader.close();
    if (loaded !== expected) {
      throw new Error(`cold load returned ${loaded.length} characters, ${expected.length} were written`);
    }
    return { numbers: { coldSyncMs, writeMs, updates } };
  },
};
