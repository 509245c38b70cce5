/**
 * Saturation (S2): one document, 20 senders in a closed loop. Each sender keeps at
 * most `WINDOW` tokens in flight: a token leaves the window when the observer client
 * in the sender's own worker process sees it come back from the server, and a sender
 * whose socket holds `BUFFER_BYTES` unsent waits. So the offered load follows what the
 * server delivers, and "accepted/s" is the rate at which it applied and passed on
 * updates: the tokens of each worker's senders seen by that worker's observer.
 * Latency is send → that observer's receipt.
 */
import type { ClientSpec } from "../load/messages.js";
import { GENERATOR_METRICS, measureLoad } from "./load-run.js";
import { scaled, warmupFor, type Scenario } from "./scenario.js";

const SENDERS = 20;
/**
 * Tokens in flight per sender. 20 × 16 = 320 in flight keep a server that batches
 * (opstream merges what queued behind one apply) busy, while the queues stay short
 * enough that latency is the server's, not the generator's backlog.
 */
const WINDOW = 16;
/** A sender whose socket buffer holds this much unsent waits, whatever its window. */
const BUFFER_BYTES = 16 * 1024;

export const S2: Scenario = {
  name: "S2",
  description: `saturation: 1 doc, ${SENDERS} senders in a closed loop (${WINDOW} in flight each), an observer per worker`,
  metrics: [
    { key: "acceptedPerSec", label: "accepted/s", better: "higher" },
    { key: "p50", label: "p50 ms", better: "lower" },
    { key: "p99", label: "p99 ms", better: "lower" },
    ...GENERATOR_METRICS,
  ],
  persist: false,
  applies: (target) => target.nodes === 1,
  async run({ target, generator, options }) {
    const url = target.urls()[0]!;
    const base = { url, dialect: target.dialect, doc: "s2" };
    // One observer in every worker: each sender's window closes in its own process.
    const clients: ClientSpec[] = [
      ...Array.from({ length: generator.count }, (_, worker) => ({
        ...base,
        sends: false,
        records: false,
        observer: true,
        worker,
      })),
      ...Array.from({ length: scaled(SENDERS, options.scale, 2) }, (_, i) => ({
        ...base,
        sends: true,
        records: false,
        worker: i % generator.count,
      })),
    ];
    const connected = await generator.connect(clients);
    if (connected.errors.length > 0)
      throw new Error(`${connected.errors.length} clients failed: ${connected.errors[0]}`);
    const warmupSeconds = warmupFor(options.seconds);
    const { result, numbers, problems, details } = await measureLoad(
      target,
      generator,
      {
        mode: "closed",
        window: WINDOW,
        bufferBytes: BUFFER_BYTES,
        seconds: options.seconds + warmupSeconds,
        warmupSeconds,
        drainMs: 2000,
      },
      [base.doc],
    );
    return {
      numbers: {
        acceptedPerSec: result.observed / result.measuredSeconds,
        sentPerSec: result.sent / result.measuredSeconds,
        p50: result.latency.percentile(50),
        p99: result.latency.percentile(99),
        ...numbers,
        clients: clients.length,
      },
      problems,
      details,
    };
  },
};
