/**
 * Retries `assertion` until it passes or `timeoutMs` elapses, then rethrows its
 * last failure. Waits on a condition, not a clock.
 */
export async function eventually<T>(
  assertion: () => T | Promise<T>,
  timeoutMs = 5000,
  intervalMs = 20,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      return await assertion();
    } catch (error) {
      if (performance.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }
}
