import assert from "node:assert/strict";
import * as Y from "yjs";
import { ReceivedClocks } from "../../bench/failover/received-clocks.js";

/** Three successive edits of one Yjs client, each as its own update. */
function threeEdits(): { clientID: number; updates: Uint8Array[] } {
  const doc = new Y.Doc();
  const updates: Uint8Array[] = [];
  doc.on("update", (update: Uint8Array) => updates.push(update));
  const text = doc.getText("t");
  for (const token of ["c1-0;", "c1-1;", "c1-2;"]) text.insert(text.length, token);
  return { clientID: doc.clientID, updates };
}

function add(clocks: ReceivedClocks, update: Uint8Array): void {
  const { from, to } = Y.parseUpdateMeta(update);
  for (const [client, end] of to) clocks.add(client, from.get(client) ?? 0, end);
}

describe("failover bench: a lean client's state vector (ReceivedClocks)", () => {
  it("counts a range that arrived ahead of a gap only once the gap fills, as a Y.Doc does", () => {
    const { clientID, updates } = threeEdits();
    const clocks = new ReceivedClocks();
    const replica = new Y.Doc();
    for (const index of [0, 2]) {
      add(clocks, updates[index]!);
      Y.applyUpdate(replica, updates[index]!);
    }
    // The replica holds the third edit pending: its state vector asks for the second.
    assert.equal(
      clocks.vector().get(clientID),
      Y.decodeStateVector(Y.encodeStateVector(replica)).get(clientID),
    );
    assert.equal(clocks.vector().get(clientID), 5);
    add(clocks, updates[1]!);
    Y.applyUpdate(replica, updates[1]!);
    assert.equal(clocks.vector().get(clientID), 15);
    assert.equal(replica.getText("t").toString(), "c1-0;c1-1;c1-2;");
  });

  it("names no client it received nothing from, and takes overlapping ranges once", () => {
    const { clientID, updates } = threeEdits();
    const clocks = new ReceivedClocks();
    assert.equal(clocks.vector().size, 0);
    add(clocks, updates[1]!);
    assert.equal(clocks.vector().size, 0);
    add(clocks, Y.mergeUpdates(updates.slice(0, 2)));
    add(clocks, updates[0]!);
    assert.deepEqual([...clocks.vector()], [[clientID, 10]]);
  });
});
