import assert from "node:assert/strict";
import { everyPeriod } from "../../src/engine/shared-ticker.js";

const PERIOD_MS = 5;

const failOn = (error: unknown): never => assert.fail(String(error));

/** Resolves once `condition` holds (checked every period). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, PERIOD_MS));
}

describe("everyPeriod (one timer per period for every session)", () => {
  it("runs the callbacks of a period in the order they were added, until each is stopped", async () => {
    const calls: number[] = [];
    const stops = [0, 1, 2].map((i) => everyPeriod(PERIOD_MS, () => calls.push(i), failOn));
    await until(() => calls.length >= 6);
    assert.deepEqual(calls.slice(0, 6), [0, 1, 2, 0, 1, 2]);
    stops[0]!();
    calls.length = 0;
    await until(() => calls.length >= 4);
    assert.deepEqual(calls.slice(0, 4), [1, 2, 1, 2]);
    stops[1]!();
    stops[2]!();
    stops[2]!(); // twice is harmless
    calls.length = 0;
    await new Promise((resolve) => setTimeout(resolve, PERIOD_MS * 4));
    assert.deepEqual(calls, []);
  });

  it("reports a throwing callback to its own onError, and the others still run", async () => {
    const errors: unknown[] = [];
    let after = 0;
    const stopThrowing = everyPeriod(
      PERIOD_MS,
      () => {
        throw new Error("boom");
      },
      (error) => errors.push(error),
    );
    const stopAfter = everyPeriod(PERIOD_MS, () => after++, failOn);
    await until(() => after >= 2 && errors.length >= 2);
    stopThrowing();
    stopAfter();
    assert.match(String(errors[0]), /boom/);
  });
});
