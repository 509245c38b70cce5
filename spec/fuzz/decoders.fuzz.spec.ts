import { strict as assert } from "node:assert";
import fc from "fast-check";
import WebSocket from "ws";
import * as Y from "yjs";
import { AwarenessRegistry } from "../../src/engine/awareness.js";
import { UpdateCheckError, checkUpdate } from "../../src/engine/update-check.js";
import { isOpStreamError, ErrorCodes } from "../../src/index.js";
import { decodeMessage } from "../../src/transport/y-websocket/messages.js";
import { connectClient, synced, type Client } from "../support/clients.js";
import { eventually } from "../support/eventually.js";
import { startServer, type TestServer } from "../support/server.js";

const RUNS = 10_000;
/** Each input must be accepted or rejected within this long. */
const BUDGET_MS = 50;

/** Inputs from yjs #479/#498 and crafted huge-count headers, seeded into every property. */
const SEEDS: Uint8Array[] = [
  new Uint8Array(),
  new Uint8Array([0]),
  new Uint8Array(Buffer.from("garbagedoc", "base64")),
  new Uint8Array([1, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 0]),
  new Uint8Array([0xff, 0xff, 0xff, 0x7f, 0]),
  new Uint8Array([0, 0xff, 0xff, 0xff, 0x0f]),
  new Uint8Array([1, 1, 5, 0, 4, 1, 4, 116, 101, 120, 116, 0xff, 0xff, 0xff, 0xff, 0x07]),
  new Uint8Array([1, 1, 5, 0, 8, 1, 4, 116, 101, 120, 116, 1, 117, 0xff, 0xff, 0xff, 0x7f]),
];

/** Real updates to mutate: the fuzzer then reaches deep into valid structure. */
function realUpdate(): Uint8Array {
  const doc = new Y.Doc();
  doc.getText("text").insert(0, "fuzz me");
  doc.getText("text").format(0, 4, { bold: true });
  doc.getMap("map").set("k", { a: [1, "b", null] });
  doc.getArray("array").push([1, new Uint8Array([1, 2])]);
  doc.getText("text").delete(1, 2);
  return Y.encodeStateAsUpdate(doc);
}

/** Arbitrary bytes, or a real update with bytes flipped, cut or inserted. */
const inputs = fc.oneof(
  fc.uint8Array({ maxLength: 256 }),
  fc
    .tuple(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.nat())
    .map(([edits, cut]) => {
      const bytes = realUpdate();
      for (const [at, value] of edits) bytes[at % bytes.length] = value;
      return bytes.subarray(0, bytes.length - (cut % 4));
    }),
);

/**
 * How long `run` takes. An input over budget is timed twice more and the fastest
 * run counts: a GC pause or a busy CPU (the whole suite runs on 2 cores) is not
 * the input's cost, while a decoder that hangs or allocates on it is slow every time.
 */
function timed(run: () => void): number {
  let fastest = Infinity;
  for (let attempt = 0; attempt < 3 && fastest >= BUDGET_MS; attempt++) {
    const started = performance.now();
    run();
    fastest = Math.min(fastest, performance.now() - started);
  }
  return fastest;
}

describe("fuzzing the decoders (fast-check)", function () {
  this.timeout(120_000);

  it(`the update check accepts or rejects every input within ${BUDGET_MS} ms, and what it accepts Yjs decodes in time (${RUNS} cases)`, () => {
    fc.assert(
      fc.property(inputs, (bytes) => {
        let accepted = false;
        const checkMs = timed(() => {
          try {
            checkUpdate(bytes);
            accepted = true;
          } catch (error) {
            if (!(error instanceof UpdateCheckError)) throw error;
          }
        });
        assert.ok(checkMs < BUDGET_MS, `check took ${checkMs} ms`);
        if (!accepted) return;
        const applyMs = timed(() => {
          try {
            Y.applyUpdate(new Y.Doc(), bytes);
          } catch {
            // Semantically wrong input may still throw; it must not hang or allocate without bound.
          }
        });
        assert.ok(applyMs < BUDGET_MS, `applyUpdate took ${applyMs} ms`);
      }),
      { numRuns: RUNS, examples: SEEDS.map((seed) => [seed]) },
    );
  });

  it(`the y-websocket frame decoder returns or throws INVALID_FRAME within ${BUDGET_MS} ms (${RUNS} cases)`, () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }), inputs), (frame) => {
        const ms = timed(() => {
          try {
            decodeMessage(frame);
          } catch (error) {
            assert.ok(isOpStreamError(error, ErrorCodes.INVALID_FRAME), String(error));
          }
        });
        assert.ok(ms < BUDGET_MS, `decode took ${ms} ms`);
      }),
      { numRuns: RUNS, examples: SEEDS.map((seed) => [seed]) },
    );
  });

  it(`the awareness registry applies or refuses every input within ${BUDGET_MS} ms (${RUNS} cases)`, () => {
    const registry = new AwarenessRegistry();
    fc.assert(
      fc.property(inputs, (update) => {
        const ms = timed(() => {
          try {
            registry.apply("fuzzer", update, Date.now());
          } catch {
            // refused: the transport closes that socket with 1007
          }
        });
        assert.ok(ms < BUDGET_MS, `awareness took ${ms} ms`);
      }),
      { numRuns: RUNS, examples: SEEDS.map((seed) => [seed]) },
    );
  });

  describe("against a live server", () => {
    let server: TestServer;
    const clients: Client[] = [];
    before(async () => (server = await startServer()));
    after(async () => {
      clients.splice(0).forEach((client) => client.destroy());
      await server.stop();
    });

    it("hostile frames never stop an honest client on the same document from syncing", async () => {
      const [alice, bob] = [connectClient(server.url, "fuzzed"), connectClient(server.url, "fuzzed")];
      clients.push(alice, bob);
      await Promise.all([synced(alice), synced(bob)]);
      const samples = fc.sample(inputs, { numRuns: 200, seed: 42 });
      const frames = [...SEEDS, ...samples].map((update) => {
        // As a sync update (0, 2, update) so it reaches the document, not just the frame decoder.
        const frame = new Uint8Array(update.length + 4);
        frame.set([0, 2]);
        const length = update.length;
        frame.set(length < 128 ? [length] : [(length & 0x7f) | 0x80, length >> 7], 2);
        frame.set(update, length < 128 ? 3 : 4);
        return frame.subarray(0, (length < 128 ? 3 : 4) + length);
      });
      for (const [i, frame] of frames.entries()) {
        const socket = new WebSocket(`${server.url}/fuzzed`);
        await new Promise<void>((resolve) => {
          socket.on("open", () => socket.send(frame));
          socket.on("close", () => resolve());
          socket.on("error", () => resolve());
          setTimeout(() => socket.close(), 200).unref(); // accepted frames leave the socket open
        });
        if (i % 50 === 0) {
          alice.text.insert(alice.text.length, `a${i};`);
          await eventually(() => assert.equal(bob.text.toString(), alice.text.toString()));
        }
      }
      bob.text.insert(0, "still alive;");
      await eventually(() => assert.equal(alice.text.toString(), bob.text.toString()));
      assert.ok(alice.text.toString().startsWith("still alive;"));
    });
  });
});
