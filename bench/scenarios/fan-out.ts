/**
 * Fan-out latency (S1), the same on 2 nodes (S1-2n), and cross-node (S5): documents
 * of 10 clients, each sending a token twice a second; latency from send to receipt
 * at the other clients. In S5 five clients of each document write on node A and five
 * only read on node B, so every measured update crossed the backplane.
 */
import type { ClientSpec } from "../load/messages.js";
import type { RunningTarget } from "../targets/index.js";
import { GENERATOR_METRICS, measureLoad } from "./load-run.js";
import {
  scaled,
  warmupFor,
  type Metric,
  type Outcome,
  type Scenario,
  type ScenarioOptions,
} from "./scenario.js";
import type { LoadGenerator } from "../load/generator.js";

const DOCS = 50;
const CLIENTS_PER_DOC = 10;
const RATE = 2;

const METRICS: readonly Metric[] = [
  { key: "p50", label: "p50 ms", better: "lower" },
  { key: "p95", label: "p95 ms", better: "lower" },
  { key: "p99", label: "p99 ms", better: "lower" },
  { key: "deliveredPerSec", label: "delivered/s", better: "higher" },
  ...GENERATOR_METRICS,
];

type Layout = (
  url: readonly string[],
  doc: number,
  client: number,
) => Pick<ClientSpec, "url" | "sends" | "records">;

async function fanOut(
  name: string,
  layout: Layout,
  context: { target: RunningTarget; generator: LoadGenerator; options: ScenarioOptions },
): Promise<Outcome> {
  const { target, generator, options } = context;
  const urls = target.urls();
  const docs = Array.from({ length: scaled(DOCS, options.scale, 1) }, (_, doc) => `${name}-${doc}`);
  const clients: ClientSpec[] = docs.flatMap((doc, d) =>
    Array.from({ length: CLIENTS_PER_DOC }, (_, client) => ({
      dialect: target.dialect,
      doc,
      ...layout(urls, d, client),
    })),
  );
  const connected = await generator.connect(clients);
  if (connected.errors.length > 0)
    throw new Error(`${connected.errors.length} clients failed: ${connected.errors[0]}`);
  const warmupSeconds = warmupFor(options.seconds);
  const { result, numbers, problems, details } = await measureLoad(
    target,
    generator,
    {
      mode: "paced",
      rate: RATE,
      seconds: options.seconds + warmupSeconds,
      warmupSeconds,
      drainMs: 1000,
    },
    docs,
  );
  return {
    numbers: {
      p50: result.latency.percentile(50),
      p95: result.latency.percentile(95),
      p99: result.latency.percentile(99),
      deliveredPerSec: result.received / result.measuredSeconds,
      sentPerSec: result.sent / result.measuredSeconds,
      ...numbers,
      clients: clients.length,
    },
    problems,
    details,
  };
}

const everyoneWritesAndReads =
  (node: (urls: readonly string[], client: number) => string): Layout =>
  (urls, _doc, client) => ({ url: node(urls, client), sends: true, records: true });

export const S1: Scenario = {
  name: "S1",
  description: `fan-out: ${DOCS} docs x ${CLIENTS_PER_DOC} clients, ${RATE} updates/s each, one node`,
  metrics: METRICS,
  persist: false,
  calibrated: true,
  applies: (target) => target.nodes === 1,
  run: (context) =>
    fanOut(
      "s1",
      everyoneWritesAndReads((urls) => urls[0]!),
      context,
    ),
};

export const S1_2N: Scenario = {
  name: "S1-2n",
  description: "S1 with the clients spread round-robin over 2 nodes sharing Redis",
  metrics: METRICS,
  persist: false,
  applies: (target) => target.nodes === 2,
  run: (context) =>
    fanOut(
      "s1-2n",
      everyoneWritesAndReads((urls, client) => urls[client % urls.length]!),
      context,
    ),
};

export const S5: Scenario = {
  name: "S5",
  description: "cross-node: per doc 5 writers on node A, 5 readers on node B; latency at B",
  metrics: METRICS,
  persist: false,
  applies: (target) => target.nodes === 2,
  run: (context) =>
    fanOut(
      "s5",
      (urls, _doc, client) =>
        client < CLIENTS_PER_DOC / 2
          ? { url: urls[0]!, sends: true, records: false }
          : { url: urls[1]!, sends: false, records: true },
      context,
    ),
};
