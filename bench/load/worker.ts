/**
 * A load worker process (forked by generator.ts). It holds its share of the clients,
 * sends updates as the runner's plan says, and measures what its clients receive.
 *
 * Latency: each update appends the sender's wall clock in ms
 * (`performance.timeOrigin + performance.now()`, comparable across processes) to the
 * Y.Array "t"; a receiver reads the values inserted by a remote transaction and
 * records `now - value`. An array, not a map, so that a server that merges several
 * updates into one broadcast still delivers every timestamp.
 */
import * as Y from "yjs";
import { Histogram } from "../support/histogram.js";
import { connectHocuspocus } from "../support/hocuspocus-client.js";
import { connect, type BenchClient } from "../support/y-websocket-client.js";
import type { ClientSpec, Command, Reply, RunPlan, RunReport } from "./messages.js";

/** Flood mode sends only while the socket holds less than this unsent. */
const FLOOD_BUFFER_BYTES = 16 * 1024;

interface Client {
  readonly spec: ClientSpec;
  readonly bench: BenchClient;
  readonly stamps: Y.Array<number>;
}

/** The measured window of the current run, and what fell into it. */
interface Window {
  from: number;
  to: number;
  histogram: Histogram;
  sent: number;
  received: number;
  observed: number;
  sendErrors: number;
}

const now = (): number => performance.timeOrigin + performance.now();
let clients: Client[] = [];
let window: Window | undefined;

function reply(message: Reply): void {
  process.send?.(message);
}

function open(spec: ClientSpec): Client {
  const bench =
    spec.dialect === "hocuspocus" ? connectHocuspocus(spec.url, spec.doc) : connect(spec.url, spec.doc);
  const stamps = bench.doc.getArray<number>("t");
  stamps.observe((event) => {
    if (event.transaction.local || !window) return;
    const at = now();
    for (const change of event.delta) {
      for (const sentAt of (change.insert as number[] | undefined) ?? []) {
        const inWindow = at >= window.from && at <= window.to;
        if (spec.observer) {
          if (inWindow) window.observed += 1;
        } else if (spec.records) {
          if (inWindow) window.received += 1;
          if (sentAt >= window.from && sentAt <= window.to) window.histogram.record(at - sentAt);
        }
      }
    }
  });
  return { spec, bench, stamps };
}

async function connectAll(specs: readonly ClientSpec[], concurrency: number): Promise<Reply> {
  const syncMs: number[] = [];
  const errors: string[] = [];
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < specs.length) {
      const client = open(specs[next++]!);
      clients.push(client);
      try {
        syncMs.push(await client.bench.synced);
      } catch (error) {
        errors.push(error instanceof Error ? error.message : String(error));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, lane));
  return { type: "connected", syncMs, errors };
}

function stamp(client: Client, current: Window): void {
  const at = now();
  try {
    client.stamps.push([at]);
  } catch (error) {
    // The server closed this client (the reason went to its `synced` waiters): count, don't crash the worker.
    if (current.sendErrors++ === 0) process.stderr.write(`load worker: ${String(error)}\n`);
    return;
  }
  if (at >= current.from && at <= current.to) current.sent += 1;
}

async function run(plan: RunPlan): Promise<RunReport> {
  const startedAt = now();
  const current: Window = {
    from: startedAt + plan.warmupSeconds * 1000,
    to: startedAt + plan.seconds * 1000,
    histogram: new Histogram(),
    sent: 0,
    received: 0,
    observed: 0,
    sendErrors: 0,
  };
  window = current;
  const cpuBefore = process.cpuUsage();
  const senders = clients.filter((client) => client.spec.sends);
  const stopSending = plan.mode === "paced" ? pace(senders, plan.rate, current) : flood(senders, current);
  await new Promise((resolve) => setTimeout(resolve, plan.seconds * 1000));
  stopSending();
  const cpu = process.cpuUsage(cpuBefore);
  const wallMs = now() - startedAt;
  await new Promise((resolve) => setTimeout(resolve, plan.drainMs));
  window = undefined;
  const { histogram, sent, received, observed, sendErrors } = current;
  const cpuMicros = cpu.user + cpu.system;
  return { latency: histogram.counts, sent, received, observed, sendErrors, cpuMicros, wallMs };
}

/** Each sender sends `rate` updates/s, starting at a random phase so that sends spread out. */
function pace(senders: readonly Client[], rate: number, current: Window): () => void {
  const period = 1000 / rate;
  const timers = senders.map((client) => {
    const timer = {
      interval: undefined as NodeJS.Timeout | undefined,
      start: undefined as NodeJS.Timeout | undefined,
    };
    timer.start = setTimeout(() => {
      stamp(client, current);
      timer.interval = setInterval(() => stamp(client, current), period);
    }, Math.random() * period);
    return timer;
  });
  return () => {
    for (const timer of timers) {
      clearTimeout(timer.start);
      clearInterval(timer.interval);
    }
  };
}

/** Each sender sends one update per event-loop turn while its socket buffer is low. */
function flood(senders: readonly Client[], current: Window): () => void {
  let running = true;
  const turn = (): void => {
    if (!running) return;
    for (const client of senders)
      if (client.bench.bufferedAmount() < FLOOD_BUFFER_BYTES) stamp(client, current);
    setImmediate(turn);
  };
  setImmediate(turn);
  return () => void (running = false);
}

async function closeAll(): Promise<void> {
  await Promise.all(clients.map((client) => client.bench.close()));
  clients = [];
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
