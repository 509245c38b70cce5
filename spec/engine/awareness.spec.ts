import { strict as assert } from "node:assert";
import { AwarenessRegistry } from "../../src/engine/awareness.js";
import { decodeAwarenessUpdate, encodeAwarenessUpdate } from "../../src/engine/awareness.js";

const update = (clientId: number, clock: number, state: unknown) =>
  encodeAwarenessUpdate([{ clientId, clock, json: JSON.stringify(state) }]);

describe("AwarenessRegistry", () => {
  it("forwards a new or changed state and applies the y-protocols clock rule", () => {
    const registry = new AwarenessRegistry();
    assert.ok(registry.apply("p", update(1, 1, { x: 1 }), 0).forward);
    assert.ok(registry.apply("p", update(1, 2, { x: 2 }), 10).forward);
    assert.equal(registry.apply("p", update(1, 1, { x: 3 }), 20).forward, null, "an older clock is ignored");
    assert.equal(registry.apply("p", update(1, 2, { x: 3 }), 20).forward, null, "an equal clock is ignored");
    assert.deepEqual(decodeAwarenessUpdate(registry.encodeAll()!), [
      { clientId: 1, clock: 2, json: '{"x":2}' },
    ]);
  });

  it("coalesces identical payloads but refreshes their expiry", () => {
    const registry = new AwarenessRegistry({ timeoutMs: 30_000, coalesceWindowMs: 5000 });
    registry.apply("p", update(1, 1, { c: 5 }), 0);
    for (let clock = 2; clock < 60; clock++) {
      assert.equal(
        registry.apply("p", update(1, clock, { c: 5 }), clock * 10).forward,
        null,
        "repeat coalesced",
      );
    }
    assert.ok(registry.apply("p", update(1, 60, { c: 5 }), 5000).forward, "a renewal passes once per window");
    assert.equal(registry.expire(34_000), null, "renewals kept it alive past 30 s from its first update");
    assert.ok(registry.expire(35_000), "expires 30 s after the last renewal");
    assert.equal(registry.size, 0);
  });

  it("removes a peer's states when it leaves, with a clock the clients accept", () => {
    const registry = new AwarenessRegistry();
    registry.apply("a", update(1, 4, { n: "a" }), 0);
    registry.apply("b", update(2, 1, { n: "b" }), 0);
    const removal = registry.removePeer("a");
    assert.deepEqual(decodeAwarenessUpdate(removal!), [{ clientId: 1, clock: 5, json: "null" }]);
    assert.equal(registry.size, 1);
    assert.equal(registry.removePeer("a"), null);
  });

  it("caps the states per document", () => {
    const registry = new AwarenessRegistry({ maxStates: 2 });
    registry.apply("p", update(1, 1, {}), 0);
    registry.apply("p", update(2, 1, {}), 0);
    const third = registry.apply("p", update(3, 1, {}), 0);
    assert.equal(third.forward, null);
    assert.equal(third.dropped, 1);
    assert.equal(registry.size, 2);
  });

  it("binds a client id to the peer that first set it: another peer's entries are refused (issue #23)", () => {
    const registry = new AwarenessRegistry();
    assert.ok(registry.apply("victim", update(7, 1, { n: "victim" }), 0).forward);
    const spoof = registry.apply("mallory", update(7, 1000, { n: "mallory" }), 10);
    assert.deepEqual([spoof.forward, spoof.foreign], [null, [7]], "a newer clock from another peer");
    const removal = registry.apply("mallory", update(7, 1001, null), 20);
    assert.deepEqual([removal.forward, removal.foreign], [null, [7]], "nor may it remove the state");
    const stale = registry.apply("mallory", update(7, 1, { n: "mallory" }), 20);
    assert.deepEqual(
      [stale.forward, stale.foreign],
      [null, []],
      "a stale entry changes nothing: not counted",
    );
    assert.ok(registry.apply("victim", update(7, 2, { n: "victim, renewed" }), 30).forward);
    assert.deepEqual(decodeAwarenessUpdate(registry.encodeAll()!), [
      { clientId: 7, clock: 2, json: '{"n":"victim, renewed"}' },
    ]);
  });

  it("frees a client id when its peer leaves, removes its state, or lets it expire", () => {
    const registry = new AwarenessRegistry({ timeoutMs: 1000 });
    registry.apply("a", update(1, 1, {}), 0);
    registry.removePeer("a");
    assert.deepEqual(registry.apply("b", update(1, 3, {}), 0).foreign, [], "after its peer left");
    registry.apply("b", update(1, 4, null), 0);
    assert.deepEqual(registry.apply("c", update(1, 5, {}), 0).foreign, [], "after a removal");
    registry.expire(1000);
    const taken = registry.apply("d", update(1, 6, {}), 1000);
    assert.deepEqual([taken.foreign, registry.size], [[], 1], "after it expired");
  });

  it("throws on a malformed update and applies none of it", () => {
    const registry = new AwarenessRegistry();
    assert.throws(() => registry.apply("p", new Uint8Array([5, 1]), 0));
    assert.equal(registry.size, 0);
  });
});
