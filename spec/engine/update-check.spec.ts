import { strict as assert } from "node:assert";
import * as Y from "yjs";
import { ErrorCodes, isOpStreamError } from "../../src/index.js";
import { peerOrigin } from "../../src/engine/origin.js";
import { UpdateCheckError, checkUpdate } from "../../src/engine/update-check.js";
import { insertUpdate, openSession } from "../support/engine.js";
import { sessionText } from "../support/session.js";

/** Updates of every kind of content Yjs writes: text, formats, embeds, maps, arrays, XML, subdocs, deletions. */
function realUpdates(): Uint8Array[] {
  const doc = new Y.Doc();
  const updates: Uint8Array[] = [];
  doc.on("update", (update: Uint8Array) => updates.push(update));
  const text = doc.getText("text");
  text.insert(0, "hello world");
  text.format(0, 5, { bold: true });
  text.insertEmbed(5, { image: "cat.png" });
  doc
    .getMap("map")
    .set("json", { list: [1, 2.5, "three", null, true, false], bytes: new Uint8Array([0, 255]) });
  doc.getMap("map").set("big", (2n ** 40n) as unknown as number);
  doc.getArray("array").push([1, "two", { three: 3 }, new Y.Map()]);
  const paragraph = new Y.XmlElement("p");
  paragraph.setAttribute("class", "lead");
  paragraph.insert(0, [new Y.XmlText("xml text")]);
  doc.getXmlFragment("xml").insert(0, [paragraph, new Y.XmlHook("hook") as unknown as Y.XmlElement]);
  doc.getMap("map").set("subdoc", new Y.Doc());
  text.delete(2, 4);
  doc.getArray("array").delete(0, 2);
  const noGc = new Y.Doc({ gc: false });
  Y.applyUpdate(noGc, Y.encodeStateAsUpdate(doc));
  noGc.getText("text").delete(0, 3);
  return [...updates, Y.encodeStateAsUpdate(doc), Y.encodeStateAsUpdate(noGc), Y.mergeUpdates(updates)];
}

/** Inputs from yjs #479, #498 and #687-style reports: empty, garbage, tiny buffers declaring huge counts. */
const CRAFTED: Record<string, Uint8Array> = {
  "zero-length buffer (#498)": new Uint8Array(),
  "one byte": new Uint8Array([0]),
  "base64 garbage (#479)": Buffer.from("garbagedoc", "base64"),
  "2^32 - 1 structs in 8 bytes": new Uint8Array([1, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 0]),
  "2^28 clients in 5 bytes": new Uint8Array([0xff, 0xff, 0xff, 0x7f, 0]),
  "2^25 delete-set clients": new Uint8Array([0, 0xff, 0xff, 0xff, 0x0f]),
  "string claiming 2^31 bytes": new Uint8Array([
    1, 1, 5, 0, 4, 1, 4, 116, 101, 120, 116, 0xff, 0xff, 0xff, 0xff, 0x07,
  ]),
  "Any array claiming 2^28 items": new Uint8Array([
    1, 1, 5, 0, 8, 1, 4, 116, 101, 120, 116, 1, 117, 0xff, 0xff, 0xff, 0x7f,
  ]),
  "unknown content ref": new Uint8Array([1, 1, 5, 0, 17, 1, 1, 120, 0, 0]),
  "trailing bytes": new Uint8Array([0, 0, 42]),
};

describe("update check (before Y.applyUpdate)", () => {
  it("accepts every kind of update Yjs produces", () => {
    for (const update of realUpdates()) checkUpdate(update);
  });

  for (const [name, bytes] of Object.entries(CRAFTED)) {
    it(`rejects ${name} at once`, () => {
      const started = performance.now();
      assert.throws(() => checkUpdate(bytes), UpdateCheckError);
      assert.ok(performance.now() - started < 50);
    });
  }

  it("rejects deep Any nesting", () => {
    const depth = 100;
    const nested = [
      ...Array<number>(depth)
        .fill(117)
        .flatMap((type) => [type, 1]),
      126,
    ];
    const update = new Uint8Array([1, 1, 5, 0, 8, 1, 4, 116, 101, 120, 116, 1, ...nested, 0]);
    assert.throws(() => checkUpdate(update), /nested deeper/);
  });

  it("never throws anything but UpdateCheckError on a truncated or bit-flipped real update", () => {
    for (const update of realUpdates()) {
      for (let end = 0; end < update.byteLength; end++) {
        try {
          checkUpdate(update.subarray(0, end));
        } catch (error) {
          assert.ok(error instanceof UpdateCheckError, String(error));
        }
      }
      for (let i = 0; i < update.byteLength; i++) {
        const flipped = Uint8Array.from(update);
        flipped[i] = flipped[i]! ^ 0xff;
        try {
          checkUpdate(flipped);
        } catch (error) {
          assert.ok(error instanceof UpdateCheckError, String(error));
        }
      }
    }
  });

  it("a session refuses crafted input with INVALID_UPDATE, stores nothing, and goes on with honest updates", async () => {
    const session = await openSession("hostile");
    try {
      for (const bytes of Object.values(CRAFTED)) {
        await assert.rejects(session.apply(bytes, peerOrigin("mallory")), (error: unknown) =>
          isOpStreamError(error, ErrorCodes.INVALID_UPDATE),
        );
      }
      assert.equal(session.lastSeq, 0, "nothing was stored");
      const source = new Y.Doc();
      assert.equal(await session.apply(insertUpdate(source, 0, "honest"), peerOrigin("alice")), 1);
      assert.equal(await sessionText(session), "honest");
    } finally {
      await session.close("shutdown");
    }
  });
});
