/**
 * What the failover bench reads from the nodes' /metrics (Prometheus text format):
 * opstream's failover counters, summed over node restarts, and per node the counters
 * and event-loop gauges the `steady` mode reports.
 */

/** Counters of interest from the nodes' /metrics (a series is `name{labels}`). */
const COUNTERS =
  /^(opstream_(?:leases_\w+|lease_\w+|relay_\w+|handoff_\w+|rpc_timeouts_total|rpc_retries_total|fenced_writes_total|remote_peers_expired_total|connection_closes_total))(\{[^}]*\})? ([\d.e+-]+)$/;

/** Any sample line: name, optional labels, value. */
const SAMPLE = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})? ([\d.e+-]+|NaN|[+-]Inf)$/;

/** Every sample of a /metrics text, `name{labels}` → value. */
export function parseSamples(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split("\n")) {
    const match = SAMPLE.exec(line);
    if (match) values.set(`${match[1]}${match[2] ?? ""}`, Number(match[3]));
  }
  return values;
}

/** The sum of every series of `name`, whatever its labels; undefined when there is none. */
export function sumOf(samples: ReadonlyMap<string, number>, name: string): number | undefined {
  let sum: number | undefined;
  for (const [series, value] of samples) {
    if (series === name || series.startsWith(`${name}{`)) sum = (sum ?? 0) + value;
  }
  return sum;
}

/**
 * Counter totals over node restarts: every process incarnation keeps the values of
 * its last scrape, and a total is their sum. What a killed node counted after its
 * last scrape is lost; what survivors count is not.
 */
export class MetricsLedger {
  private readonly latest = new Map<string, Map<string, number>>();

  record(incarnation: string, text: string): void {
    const values = new Map<string, number>();
    for (const line of text.split("\n")) {
      const match = COUNTERS.exec(line);
      if (match) values.set(`${match[1]}${match[2] ?? ""}`, Number(match[3]));
    }
    this.latest.set(incarnation, values);
  }

  totals(): Map<string, number> {
    const sum = new Map<string, number>();
    for (const values of this.latest.values())
      for (const [series, value] of values) sum.set(series, (sum.get(series) ?? 0) + value);
    return sum;
  }
}

/** `after - before` per series, leaving out series that did not move. */
export function metricDeltas(
  before: ReadonlyMap<string, number>,
  after: ReadonlyMap<string, number>,
): Record<string, number> {
  const deltas: Record<string, number> = {};
  for (const [series, value] of after) {
    const delta = value - (before.get(series) ?? 0);
    if (delta !== 0) deltas[series] = delta;
  }
  return deltas;
}
