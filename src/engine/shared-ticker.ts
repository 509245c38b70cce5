/**
 * One timer per period for all the sessions of a process, instead of one per
 * session: a node with 500 open documents had 500 heartbeat timers firing every
 * second and 100 awareness sweeps a second, most of its idle CPU after the frames
 * sent to silent clients (BENCHMARKS.md, "Where S3's idle CPU goes"). Callbacks of
 * a period run in the order they were added; one that throws is reported to its
 * own `onError`, and the others still run. The timer is unref'd, and stops once
 * its last callback is removed.
 */
interface Entry {
  readonly run: () => void;
  readonly onError: (error: unknown) => void;
}

const tickers = new Map<number, { readonly timer: NodeJS.Timeout; readonly entries: Set<Entry> }>();

/**
 * Calls `run` every `periodMs`, on the timer it shares with every other callback of
 * that period, until the returned function is called.
 */
export function everyPeriod(
  periodMs: number,
  run: () => void,
  onError: (error: unknown) => void,
): () => void {
  let ticker = tickers.get(periodMs);
  if (!ticker) {
    const entries = new Set<Entry>();
    const timer = setInterval(() => {
      for (const entry of entries) {
        try {
          entry.run();
        } catch (error) {
          entry.onError(error);
        }
      }
    }, periodMs);
    timer.unref();
    ticker = { timer, entries };
    tickers.set(periodMs, ticker);
  }
  const entry: Entry = { run, onError };
  const { timer, entries } = ticker;
  entries.add(entry);
  return () => {
    if (!entries.delete(entry) || entries.size > 0) return;
    clearInterval(timer);
    tickers.delete(periodMs);
  };
}
