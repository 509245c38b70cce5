import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import { ErrorCodes, OpStreamError } from "../../errors.js";

/** Top-level message types of the y-websocket protocol (PROTOCOL.md). */
export enum YMessageType {
  Sync = 0,
  Awareness = 1,
  Auth = 2,
  QueryAwareness = 3,
}

/** Sub-types of a sync message (y-protocols `sync.js`). */
export enum SyncStep {
  Step1 = 0,
  Step2 = 1,
  Update = 2,
}

/** A decoded client frame. */
export type YMessage =
  | { type: YMessageType.Sync; step: SyncStep.Step1; stateVector: Uint8Array }
  | { type: YMessageType.Sync; step: SyncStep.Step2 | SyncStep.Update; update: Uint8Array }
  | { type: YMessageType.Awareness; update: Uint8Array }
  | { type: YMessageType.QueryAwareness };

/** Why a frame could not be decoded; each maps to a close code. */
export type FrameErrorReason = "truncated" | "unknown-type" | "trailing-bytes";

function frameError(reason: FrameErrorReason, message: string): OpStreamError {
  return new OpStreamError(ErrorCodes.INVALID_FRAME, `Invalid y-websocket frame: ${message}`, { reason });
}

/** The reason of an INVALID_FRAME error thrown by {@link decodeMessage}. */
export function frameErrorReason(error: OpStreamError): FrameErrorReason {
  return (error.details.reason as FrameErrorReason | undefined) ?? "truncated";
}

function readBytes(decoder: decoding.Decoder): Uint8Array {
  const length = decoding.readVarUint(decoder);
  if (length > decoder.arr.length - decoder.pos)
    throw frameError("truncated", "frame ends inside a byte array");
  return decoding.readUint8Array(decoder, length);
}

function decodeBody(decoder: decoding.Decoder): YMessage {
  const type = decoding.readVarUint(decoder) as YMessageType;
  switch (type) {
    case YMessageType.Sync: {
      const step = decoding.readVarUint(decoder) as SyncStep;
      if (step === SyncStep.Step1) return { type, step, stateVector: readBytes(decoder) };
      if (step === SyncStep.Step2 || step === SyncStep.Update)
        return { type, step, update: readBytes(decoder) };
      throw frameError("unknown-type", `unknown sync step ${String(step)}`);
    }
    case YMessageType.Awareness:
      return { type, update: readBytes(decoder) };
    case YMessageType.QueryAwareness:
      return { type };
    default:
      throw frameError("unknown-type", `unknown message type ${String(type)}`);
  }
}

/** Decodes one client frame; throws OpStreamError(INVALID_FRAME) when it is truncated, unknown or has trailing bytes. */
export function decodeMessage(frame: Uint8Array): YMessage {
  const decoder = decoding.createDecoder(frame);
  let message: YMessage;
  try {
    message = decodeBody(decoder);
  } catch (error) {
    if (error instanceof OpStreamError) throw error;
    // lib0 throws a plain Error when a varint runs past the end.
    throw frameError("truncated", `frame ends early: ${String(error)}`);
  }
  if (decoding.hasContent(decoder)) throw frameError("trailing-bytes", "bytes after the end of the message");
  return message;
}

function frame(write: (encoder: encoding.Encoder) => void): Uint8Array {
  const encoder = encoding.createEncoder();
  write(encoder);
  return encoding.toUint8Array(encoder);
}

function syncFrame(step: SyncStep, bytes: Uint8Array): Uint8Array {
  return frame((e) => {
    encoding.writeVarUint(e, YMessageType.Sync);
    encoding.writeVarUint(e, step);
    encoding.writeVarUint8Array(e, bytes);
  });
}

export const encodeSyncStep1 = (stateVector: Uint8Array): Uint8Array =>
  syncFrame(SyncStep.Step1, stateVector);
export const encodeSyncStep2 = (update: Uint8Array): Uint8Array => syncFrame(SyncStep.Step2, update);
export const encodeUpdate = (update: Uint8Array): Uint8Array => syncFrame(SyncStep.Update, update);

export const encodeAwareness = (update: Uint8Array): Uint8Array =>
  frame((e) => {
    encoding.writeVarUint(e, YMessageType.Awareness);
    encoding.writeVarUint8Array(e, update);
  });

/**
 * The keep-alive frame: an awareness update with no entries. Stock clients drop a
 * socket after 30 s without a message (ws pings are invisible to them); this is
 * the cheapest message they accept and ignore.
 */
export const KEEP_ALIVE_FRAME: Uint8Array = encodeAwareness(new Uint8Array([0]));
