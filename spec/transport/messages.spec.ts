import { strict as assert } from "node:assert";
import * as Y from "yjs";
import { ErrorCodes, isOpStreamError } from "../../src/index.js";
import {
  KEEP_ALIVE_FRAME,
  SyncStep,
  YMessageType,
  decodeMessage,
  encodeAwareness,
  encodeSyncStep1,
  encodeSyncStep2,
  encodeUpdate,
} from "../../src/transport/y-websocket/messages.js";

const invalid = (reason: string) => (error: unknown) =>
  isOpStreamError(error, ErrorCodes.INVALID_FRAME) && error.details.reason === reason;

describe("y-websocket frame codec", () => {
  it("round-trips every frame the server sends", () => {
    const doc = new Y.Doc();
    doc.getText("t").insert(0, "x");
    const sv = Y.encodeStateVector(doc);
    const update = Y.encodeStateAsUpdate(doc);
    assert.deepEqual(decodeMessage(encodeSyncStep1(sv)), {
      type: YMessageType.Sync,
      step: SyncStep.Step1,
      stateVector: sv,
    });
    assert.deepEqual(decodeMessage(encodeSyncStep2(update)), {
      type: YMessageType.Sync,
      step: SyncStep.Step2,
      update,
    });
    assert.deepEqual(decodeMessage(encodeUpdate(update)), {
      type: YMessageType.Sync,
      step: SyncStep.Update,
      update,
    });
    assert.deepEqual(decodeMessage(encodeAwareness(update)), { type: YMessageType.Awareness, update });
    assert.deepEqual(decodeMessage(new Uint8Array([3])), { type: YMessageType.QueryAwareness });
  });

  it("encodes the keep-alive as an awareness update with no entries", () => {
    assert.deepEqual([...KEEP_ALIVE_FRAME], [1, 1, 0]);
  });

  it("refuses truncated frames, unknown types and trailing bytes with INVALID_FRAME and a reason", () => {
    assert.throws(() => decodeMessage(new Uint8Array([])), invalid("truncated"));
    assert.throws(() => decodeMessage(new Uint8Array([0, 2, 9, 1])), invalid("truncated"));
    assert.throws(() => decodeMessage(new Uint8Array([0, 0xff])), invalid("truncated"));
    assert.throws(() => decodeMessage(new Uint8Array([7])), invalid("unknown-type"));
    assert.throws(() => decodeMessage(new Uint8Array([0, 5, 0])), invalid("unknown-type"));
    assert.throws(() => decodeMessage(new Uint8Array([3, 0])), invalid("trailing-bytes"));
  });
});
