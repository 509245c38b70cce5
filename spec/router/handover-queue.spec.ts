import { strict as assert } from "node:assert";
import { HandoverQueue, handoverConcurrency } from "../../src/router/handoff.js";

describe("HandoverQueue (a draining node's documents, a few at a time)", () => {
  it("runs at most `limit` tasks at once, starts the rest in order as others end, and goes on after a failure", async () => {
    const queue = new HandoverQueue(2);
    const started: number[] = [];
    const finish = new Map<number, () => void>();
    let running = 0;
    let most = 0;
    const runs = [0, 1, 2, 3, 4].map((i) =>
      queue.run(async () => {
        started.push(i);
        running += 1;
        most = Math.max(most, running);
        await new Promise<void>((resolve) => finish.set(i, resolve));
        running -= 1;
        if (i === 1) throw new Error("handover 1 failed");
      }),
    );
    // Settled as they go: the failed one's rejection is handled when it happens.
    const settled = Promise.allSettled(runs);
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    await turn();
    assert.deepEqual(started, [0, 1]);
    finish.get(1)!();
    await turn();
    assert.deepEqual(started, [0, 1, 2], "a failed task frees its place too");
    finish.get(0)!();
    await turn();
    assert.deepEqual(started, [0, 1, 2, 3]);
    finish.get(2)!();
    finish.get(3)!();
    await turn();
    finish.get(4)!();
    const outcomes = await settled;
    assert.deepEqual(
      outcomes.map((outcome) => outcome.status),
      ["fulfilled", "rejected", "fulfilled", "fulfilled", "fulfilled"],
    );
    assert.equal(most, 2);
  });

  it("hands over 4 documents at a time, or one per 100 on a node holding more than 400", () => {
    assert.deepEqual([1, 36, 400, 401, 1000, 5000].map(handoverConcurrency), [4, 4, 4, 5, 10, 50]);
  });
});
