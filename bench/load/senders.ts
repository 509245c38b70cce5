/**
 * How a load worker's senders send: `paced` (S1, S5: a fixed rate per sender) or
 * `closed` (S2: a closed loop). Each send inserts the next token (tokens.ts) into the
 * sender's own text.
 */
import { now, type LeanClient } from "./lean-client.js";
import { within, type Measurement } from "./measurement.js";
import type { RunPlan } from "./messages.js";
import { token } from "./tokens.js";

/** While a sender waits for its socket buffer to drain, it looks again this often (ws has no client-side drain event). */
const BACKPRESSURE_RETRY_MS = 1;

/** A sending client and its place in the token sequence. */
export interface Sender {
  readonly id: number;
  readonly doc: string;
  readonly client: LeanClient;
  /** Tokens sent so far: the next token's seq. */
  sent: number;
  /** The highest seq this worker's observer has seen from this sender; −1 before the first. */
  acked: number;
  /** Set by the closed loop: called by the observer after `acked` moved. */
  onAck: (() => void) | undefined;
}

/** Sends `sender`'s next token; false (and a counted send error) when its socket is closed. */
function sendNext(sender: Sender, m: Measurement): boolean {
  const at = now();
  if (!sender.client.send(token(sender.id, sender.sent, at))) {
    if (m.sendErrors++ === 0) {
      const why = sender.client.failure?.message ?? "the socket is not open";
      process.stderr.write(`load worker: sender ${sender.id} of ${sender.doc} cannot send: ${why}\n`);
    }
    return false;
  }
  sender.sent += 1;
  if (within(m, at)) m.sent += 1;
  return true;
}

/**
 * Each sender sends `rate` tokens/s from a random phase, so that sends spread out.
 * Returns a function that stops sending.
 */
export function pace(senders: readonly Sender[], rate: number, m: Measurement): () => void {
  const period = 1000 / rate;
  const timers = senders.map((sender) => {
    const timer = {
      interval: undefined as NodeJS.Timeout | undefined,
      start: undefined as NodeJS.Timeout | undefined,
    };
    timer.start = setTimeout(() => {
      sendNext(sender, m);
      timer.interval = setInterval(() => sendNext(sender, m), period);
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

/**
 * The closed loop: each sender keeps up to `plan.window` tokens in flight and sends
 * the next one as soon as its worker's observer has seen one (acknowledged by seq, so
 * a frame that carries several of them frees as many places), unless its socket holds
 * `plan.bufferBytes` or more unsent. So the load follows what the server delivers
 * instead of piling up in socket buffers. Returns a function that stops sending.
 */
export function closedLoop(
  senders: readonly Sender[],
  plan: Extract<RunPlan, { mode: "closed" }>,
  m: Measurement,
): () => void {
  let running = true;
  const blocked = new Set<Sender>();
  let retry: NodeJS.Timeout | undefined;
  const unblock = (): void => {
    retry = undefined;
    const waiting = [...blocked];
    blocked.clear();
    for (const sender of waiting) pump(sender);
  };
  const pump = (sender: Sender): void => {
    while (running && sender.sent - 1 - sender.acked < plan.window) {
      if (sender.client.bufferedAmount() >= plan.bufferBytes) {
        blocked.add(sender);
        retry ??= setTimeout(unblock, BACKPRESSURE_RETRY_MS);
        return;
      }
      // A closed socket ends this sender: it would fail the same way on every ack.
      if (!sendNext(sender, m)) return;
    }
  };
  for (const sender of senders) sender.onAck = () => pump(sender);
  for (const sender of senders) pump(sender);
  return () => {
    running = false;
    clearTimeout(retry);
    for (const sender of senders) sender.onAck = undefined;
  };
}
