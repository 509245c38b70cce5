import { strict as assert } from "node:assert";
import fc from "fast-check";
import * as Y from "yjs";
import { MemoryDocumentStore, type Origin } from "../../src/index.js";
import { openSession } from "../support/engine.js";

/** One edit of a client, or a sync that makes it see another client's edits first. */
type Step =
  | { kind: "insert"; client: number; at: number; text: string }
  | { kind: "delete"; client: number; at: number; length: number }
  | { kind: "set"; client: number; key: string; value: number }
  | { kind: "sync"; client: number; from: number };

const CLIENTS = 3;
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constant("insert" as const),
    client: fc.nat(CLIENTS - 1),
    at: fc.nat(40),
    text: fc.string({ minLength: 1, maxLength: 4 }),
  }),
  fc.record({
    kind: fc.constant("delete" as const),
    client: fc.nat(CLIENTS - 1),
    at: fc.nat(40),
    length: fc.integer({ min: 1, max: 3 }),
  }),
  fc.record({
    kind: fc.constant("set" as const),
    client: fc.nat(CLIENTS - 1),
    key: fc.constantFrom("a", "b"),
    value: fc.nat(9),
  }),
  fc.record({ kind: fc.constant("sync" as const), client: fc.nat(CLIENTS - 1), from: fc.nat(CLIENTS - 1) }),
);

/** Runs `steps` on CLIENTS replicas and returns every update they made, in the order made. */
function edit(steps: readonly Step[]): Uint8Array[] {
  const docs = Array.from({ length: CLIENTS }, (_, i) => {
    const doc = new Y.Doc();
    doc.clientID = 1000 + i;
    return doc;
  });
  const updates: Uint8Array[] = [];
  for (const doc of docs)
    doc.on("update", (update: Uint8Array, origin: unknown) => origin !== "sync" && updates.push(update));
  for (const s of steps) {
    const doc = docs[s.client]!;
    const text = doc.getText("text");
    if (s.kind === "insert") text.insert(Math.min(s.at, text.length), s.text);
    else if (s.kind === "delete" && text.length > 0) {
      const at = Math.min(s.at, text.length - 1);
      text.delete(at, Math.min(s.length, text.length - at));
    } else if (s.kind === "set") doc.getMap("map").set(s.key, s.value);
    else if (s.kind === "sync") Y.applyUpdate(doc, Y.encodeStateAsUpdate(docs[s.from]!), "sync");
  }
  return updates;
}

const contentOf = (doc: Y.Doc): string => {
  const map = doc.getMap<number>("map");
  return JSON.stringify([doc.getText("text").toString(), [...map.keys()].sort().map((k) => [k, map.get(k)])]);
};

describe("what a session stores is what it integrated", () => {
  it("for updates in any order, repeated or merged, replaying the op log gives the session's document", async function () {
    this.timeout(60_000);
    let storedAsSent = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 1, maxLength: 40 }),
        fc.infiniteStream(fc.nat(1000)),
        fc.integer({ min: 1, max: 4 }),
        async (steps, random, concurrency) => {
          const sent = edit(steps);
          // Delivered shuffled (some arrive before what they depend on), a few twice,
          // and some merged into one update as a provider's offline edits are.
          const deliveries = [...sent, ...sent.filter((_, i) => i % 5 === 0)];
          const pick = random[Symbol.iterator]();
          for (let i = deliveries.length - 1; i > 0; i--) {
            const j = pick.next().value! % (i + 1);
            [deliveries[i], deliveries[j]] = [deliveries[j]!, deliveries[i]!];
          }
          if (deliveries.length > 3) deliveries.push(Y.mergeUpdates(deliveries.splice(0, 3)));
          const store = new MemoryDocumentStore();
          const session = await openSession("doc", { store });
          for (let i = 0; i < deliveries.length; i += concurrency) {
            const origin: Origin = { kind: "peer", peerId: `p${i % CLIENTS}` };
            // Several at once queue behind one append and are stored as one merged op.
            await Promise.all(
              deliveries.slice(i, i + concurrency).map((update) => session.apply(update, origin)),
            );
          }
          const everything = new Y.Doc();
          for (const update of sent) Y.applyUpdate(everything, update);
          const held = new Y.Doc();
          Y.applyUpdate(held, (await session.state()).bytes);
          assert.equal(contentOf(held), contentOf(everything), "the session holds every edit");

          const ops = await store.readOps("doc", 0);
          const replay = new Y.Doc();
          for (const op of ops) Y.applyUpdate(replay, op.update);
          assert.equal(replay.store.pendingStructs, null, "the log never depends on what it does not hold");
          assert.equal(replay.store.pendingDs, null, "nor deletes what it does not hold");
          assert.deepEqual(Y.encodeStateVector(replay), Y.encodeStateVector(held), "same structs");
          assert.equal(contentOf(replay), contentOf(everything), "same content");
          storedAsSent += ops.filter((op) => sent.some((u) => Buffer.compare(u, op.update) === 0)).length;
          await session.close();
        },
      ),
      { numRuns: 60 },
    );
    assert.ok(storedAsSent > 0, "updates that carried on from the document were stored as sent");
  });
});
