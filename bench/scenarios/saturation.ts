/**
 * Saturation (S2): one document, 20 clients each sending its next update as soon as
 * its socket's send buffer is low, for the measured seconds. "Accepted" counts the
 * updates a read-only observer client received: what the server applied and passed
 * on. "Delivered" counts every receipt at the 20 senders.
 */
import type { ClientSpec } from "../load/messages.js";
import { ProcessSampler } from "../support/proc-stats.js";
import { MB, scaled, warmupFor, type Scenario } from "./scenario.js";

const SENDERS = 20;

export const S2: Scenario = {
  name: "S2",
  description: `saturation: 1 doc, ${SENDERS} clients sending as fast as backpressure allows, 1 observer`,
  metrics: [
    { key: "acceptedPerSec", label: "accepted/s", better: "higher" },
    { key: "deliveredPerSec", label: "delivered/s", better: "higher" },
    { key: "p50", label: "p50 ms", better: "lower" },
    { key: "p99", label: "p99 ms", better: "lower" },
    { key: "serverCpu", label: "server CPU", better: "lower" },
    { key: "peakRssMB", label: "peak RSS MB", better: "lower" },
    { key: "generatorCpu", label: "gen CPU", better: "lower" },
  ],
  persist: false,
  applies: (target) => target.nodes === 1,
  async run({ target, generator, options }) {
    const url = target.urls()[0]!;
    const base = { url, dialect: target.dialect, doc: "s2" };
    const clients: ClientSpec[] = [
      { ...base, sends: false, records: false, observer: true },
      ...Array.from({ length: scaled(SENDERS, options.scale, 2) }, () => ({
        ...base,
        sends: true,
        records: true,
      })),
    ];
    const connected = await generator.connect(clients);
    if (connected.errors.length > 0)
      throw new Error(`${connected.errors.length} clients failed: ${connected.errors[0]}`);
    const warmupSeconds = warmupFor(options.seconds);
    const sampler = new ProcessSampler(target.pids());
    const result = await generator.run({
      mode: "flood",
      rate: 0,
      seconds: options.seconds + warmupSeconds,
      warmupSeconds,
      drainMs: 2000,
    });
    const usage = sampler.stop();
    return {
      acceptedPerSec: result.observed / result.measuredSeconds,
      deliveredPerSec: result.received / result.measuredSeconds,
      sentPerSec: result.sent / result.measuredSeconds,
      sendErrors: result.sendErrors,
      p50: result.latency.percentile(50),
      p99: result.latency.percentile(99),
      serverCpu: usage.cpuCores,
      peakRssMB: usage.peakRssBytes / MB,
      generatorCpu: result.cpuShare,
      clients: clients.length,
    };
  },
};
