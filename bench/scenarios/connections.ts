/**
 * Idle connections (S3): 5,000 clients over 500 documents connect and sync, then
 * stay idle. Reports connect+sync time percentiles, the server's RSS growth per
 * connection ((RSS after − RSS before) / connections, documents included, as a user
 * would pay it) and its CPU while everything idles.
 */
import type { ClientSpec } from "../load/messages.js";
import { percentileOf } from "../support/histogram.js";
import { cpuSeconds, rssBytes } from "../support/proc-stats.js";
import { scaled, type Scenario } from "./scenario.js";

const CONNECTIONS = 5000;
const DOCS = 500;
/** Time for the server to finish what the connects started (loads, GC) before RSS is read. */
const SETTLE_MS = 2000;
/**
 * The shortest idle window. The servers' periodic work on idle connections has
 * periods up to 30 s (ws pings every 30 s, keep-alive frames every 15 s), and the
 * connections of a run start within a few seconds of each other, so a shorter
 * window catches one server's round and misses another's: with 10 s, Hocuspocus's
 * 30 s ping round never fell inside it.
 */
const MIN_IDLE_SECONDS = 30;

const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export const S3: Scenario = {
  name: "S3",
  description: `connections: ${CONNECTIONS} idle clients over ${DOCS} docs`,
  metrics: [
    { key: "syncP50", label: "sync p50 ms", better: "lower" },
    { key: "syncP99", label: "sync p99 ms", better: "lower" },
    { key: "rssPerConnKB", label: "KB/conn", better: "lower" },
    { key: "idleCpu", label: "idle CPU", better: "lower" },
  ],
  persist: false,
  applies: (target) => target.nodes === 1,
  async run({ target, generator, options }) {
    const url = target.urls()[0]!;
    const pids = target.pids();
    const connections = scaled(CONNECTIONS, options.scale, 10);
    const docs = scaled(DOCS, options.scale, 1);
    const clients: ClientSpec[] = Array.from({ length: connections }, (_, i) => ({
      url,
      dialect: target.dialect,
      doc: `s3-${i % docs}`,
      sends: false,
      records: false,
    }));
    await sleep(SETTLE_MS); // the freshly started server finishes its start-up allocations
    const rssBefore = sum(pids.map(rssBytes));
    const connected = await generator.connect(clients);
    if (connected.errors.length > 0)
      throw new Error(`${connected.errors.length} clients failed: ${connected.errors[0]}`);
    await sleep(SETTLE_MS);
    const rssAfter = sum(pids.map(rssBytes));
    const cpuBefore = sum(pids.map(cpuSeconds));
    const idleSeconds = Math.max(options.seconds, MIN_IDLE_SECONDS);
    await sleep(idleSeconds * 1000);
    const idleCpu = (sum(pids.map(cpuSeconds)) - cpuBefore) / idleSeconds;
    const numbers = {
      syncP50: percentileOf(connected.syncMs, 50),
      syncP99: percentileOf(connected.syncMs, 99),
      rssPerConnKB: (rssAfter - rssBefore) / connections / 1024,
      rssBeforeMB: rssBefore / 1024 / 1024,
      rssAfterMB: rssAfter / 1024 / 1024,
      idleCpu,
      connections,
      docs,
    };
    return { numbers };
  },
};
