/** A prom-client metric as the specs read it. */
export interface ReadableMetric {
  get(): Promise<{ values: { labels: Record<string, unknown>; value: number }[] }>;
}

/** A counter's value summed over the series whose labels include `labels`. */
export async function counted(metric: ReadableMetric, labels: Record<string, string>): Promise<number> {
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([key, value]) => v.labels[key] === value))
    .reduce((sum, v) => sum + v.value, 0);
}
