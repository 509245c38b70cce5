/**
 * A load worker process (forked by generator.ts). It holds its share of the clients
 * (lean clients: lean-client.ts), sends tokens as the runner's plan says
 * (senders.ts), and measures what its clients receive.
 *
 * Latency: a token carries its sender's wall clock in ms
 * (`performance.timeOrigin + performance.now()`, comparable across processes); a
 * receiving client that finds it in a frame records `arrival - sentAt`. Each client
 * keeps the highest seq it saw per sender and drops anything at or below it (counted
 * as `repeats`), so a server's resync cannot count a token twice.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { LeanClient, now, type TokenListener } from "./lean-client.js";
import { measurement, within, type Measurement } from "./measurement.js";
import type { Command, PlacedClient, Reply, RunPlan, RunReport } from "./messages.js";
import { closedLoop, pace, type Sender } from "./senders.js";

/**
 * Sampling interval of the event-loop delay histogram. The histogram records the
 * interval between samples, so the delay is a value minus this; 1 ms gives the most
 * samples and the finest view of short stalls.
 */
const LOOP_RESOLUTION_MS = 1;

interface Client {
  readonly spec: PlacedClient;
  readonly lean: LeanClient;
}

let clients: Client[] = [];
/** This worker's senders by id: its observers acknowledge their tokens. */
const senders = new Map<number, Sender>();
let current: Measurement | undefined;

function reply(message: Reply): void {
  process.send?.(message);
}

/** What `spec`'s client does with each token it finds; undefined: it does not search frames. */
function listener(spec: PlacedClient): TokenListener | undefined {
  if (!spec.records && !spec.observer) return undefined;
  const last = new Map<number, number>();
  return (sender, seq, sentAt, receivedAt) => {
    if (sender === spec.id) return;
    if (seq <= (last.get(sender) ?? -1)) {
      if (current) current.repeats += 1;
      return;
    }
    last.set(sender, seq);
    const m = current;
    if (spec.observer) {
      // Only this worker's senders: the others are counted by their own worker's observer.
      const local = senders.get(sender);
      if (!local || local.doc !== spec.doc) return;
      local.acked = Math.max(local.acked, seq);
      if (m) count(m, "observed", sentAt, receivedAt);
      local.onAck?.();
    } else if (m) {
      count(m, "received", sentAt, receivedAt);
    }
  };
}

function count(m: Measurement, counter: "observed" | "received", sentAt: number, receivedAt: number): void {
  if (within(m, receivedAt)) m[counter] += 1;
  if (within(m, sentAt)) m.histogram.record(receivedAt - sentAt);
}

async function connectAll(specs: readonly PlacedClient[], concurrency: number): Promise<Reply> {
  const syncMs: number[] = [];
  const errors: string[] = [];
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < specs.length) {
      const spec = specs[next++]!;
      const { url, dialect, doc } = spec;
      const lean = new LeanClient({ url, dialect, doc, onToken: listener(spec) });
      clients.push({ spec, lean });
      if (spec.sends) {
        senders.set(spec.id, {
          id: spec.id,
          doc: spec.doc,
          client: lean,
          sent: 0,
          acked: -1,
          onAck: undefined,
        });
      }
      try {
        syncMs.push(await lean.synced);
      } catch (error) {
        errors.push(error instanceof Error ? error.message : String(error));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, lane));
  return { type: "connected", syncMs, errors };
}

/** A closed loop only closes through an observer of the same document in this worker. */
function checkObservers(): void {
  const observed = new Set(clients.filter((c) => c.spec.observer).map((c) => c.spec.doc));
  for (const sender of senders.values()) {
    if (!observed.has(sender.doc))
      throw new Error(
        `closed loop: sender ${sender.id} of ${sender.doc} has no observer in its worker; ` +
          `give the document an observer client placed (ClientSpec.worker) with this sender`,
      );
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const delayMs = (nanoseconds: number): number => Math.max(0, nanoseconds / 1e6 - LOOP_RESOLUTION_MS);

async function run(plan: RunPlan): Promise<RunReport> {
  if (plan.mode === "closed") checkObservers();
  const startedAt = now();
  const m = measurement(startedAt, plan.warmupSeconds, plan.seconds);
  current = m;
  const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  loop.enable();
  const cpuBefore = process.cpuUsage();
  const sending = [...senders.values()];
  const stopSending = plan.mode === "paced" ? pace(sending, plan.rate, m) : closedLoop(sending, plan, m);
  await sleep(plan.seconds * 1000);
  stopSending();
  loop.disable();
  const cpu = process.cpuUsage(cpuBefore);
  const wallMs = now() - startedAt;
  await sleep(plan.drainMs);
  current = undefined;
  const closed = clients.filter((client) => client.lean.failure !== undefined);
  return {
    latency: m.histogram.counts,
    sent: m.sent,
    received: m.received,
    observed: m.observed,
    repeats: m.repeats,
    sendErrors: m.sendErrors,
    socketsClosed: closed.length,
    firstClose: closed[0]?.lean.failure?.message,
    senders: sending.map((s) => ({ doc: s.doc, sender: s.id, count: s.sent })),
    cpuMicros: cpu.user + cpu.system,
    wallMs,
    loopDelayP99Ms: delayMs(loop.percentile(99)),
    loopDelayMaxMs: delayMs(loop.max),
  };
}

async function closeAll(): Promise<void> {
  await Promise.all(clients.map((client) => client.lean.close()));
  clients = [];
  senders.clear();
}

const handlers: { [K in Command["type"]]: (command: Extract<Command, { type: K }>) => Promise<Reply> } = {
  connect: (command) => connectAll(command.clients, command.concurrency),
  run: async (command) => ({ type: "ran", report: await run(command.plan) }),
  close: async () => {
    await closeAll();
    return { type: "closed" };
  },
};

process.on("message", (command: Command) => {
  const handler = handlers[command.type] as (command: Command) => Promise<Reply>;
  handler(command).then(reply, (error: unknown) =>
    reply({
      type: "failed",
      message: error instanceof Error ? (error.stack ?? error.message) : String(error),
    }),
  );
});
process.on("disconnect", () => process.exit(0));
