import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import { ErrorCodes, OpStreamError } from "../errors.js";
import { ChannelMessageType, type ChannelMessage } from "./backplane.js";

/**
 * The bytes nodes exchange on the backplane (PROTOCOL.md, "Backplane"). Every
 * frame starts with {@link ENVELOPE_VERSION}, so a node can refuse a frame from a
 * newer release instead of misreading it. Pure functions: no I/O, no state.
 */
export const ENVELOPE_VERSION = 1;

/** Kinds of frame on a node's RPC channel. */
export enum RpcFrameKind {
  Request = 1,
  Response = 2,
}

/** A request to the node whose channel carries it. */
export interface RpcRequest {
  readonly kind: RpcFrameKind.Request;
  /** Chosen by the caller; unique among its pending requests. */
  readonly id: number;
  /** The request type a handler was registered for. */
  readonly type: string;
  /** The caller's node id: where the response goes. */
  readonly from: string;
  readonly payload: Uint8Array;
}

/**
 * The answer to request `id`, on the caller's channel. `code` is an
 * {@link ErrorCodes} value; it stays a string on the wire so that a code a newer
 * node knows still decodes.
 */
export type RpcResponse =
  | {
      readonly kind: RpcFrameKind.Response;
      readonly id: number;
      readonly ok: true;
      readonly payload: Uint8Array;
    }
  | {
      readonly kind: RpcFrameKind.Response;
      readonly id: number;
      readonly ok: false;
      readonly code: string;
      readonly message: string;
    };

export type RpcFrame = RpcRequest | RpcResponse;

/** Why a backplane frame could not be decoded (`details.reason` of the INVALID_FRAME error). */
export type EnvelopeErrorReason =
  "truncated" | "malformed" | "unknown-version" | "unknown-type" | "trailing-bytes";

function envelopeError(reason: EnvelopeErrorReason, message: string, cause?: unknown): OpStreamError {
  return new OpStreamError(
    ErrorCodes.INVALID_FRAME,
    `Invalid backplane frame: ${message}`,
    { reason },
    cause,
  );
}

function writeUint(encoder: encoding.Encoder, value: number, field: string): void {
  // lib0 would silently write garbage for a negative or fractional number.
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new OpStreamError(
      ErrorCodes.INVALID_FRAME,
      `Cannot encode backplane frame: ${field} must be a non-negative safe integer, got ${String(value)}.`,
      { field, value },
    );
  }
  encoding.writeVarUint(encoder, value);
}

function frame(write: (encoder: encoding.Encoder) => void): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeUint8(encoder, ENVELOPE_VERSION);
  write(encoder);
  return encoding.toUint8Array(encoder);
}

/** Reads one byte; lib0's `readUint8` returns undefined past the end instead of throwing. */
function readByte(decoder: decoding.Decoder): number {
  if (decoder.pos >= decoder.arr.length) throw envelopeError("truncated", "frame ends early");
  return decoding.readUint8(decoder);
}

/**
 * Reads a byte array as a copy: the input may be a view on a pooled buffer of the
 * Redis client, and decoded messages outlive it.
 */
function readBytes(decoder: decoding.Decoder): Uint8Array {
  return decoding.readVarUint8Array(decoder).slice();
}

function decodeFrame<T>(bytes: Uint8Array, read: (decoder: decoding.Decoder) => T): T {
  const decoder = decoding.createDecoder(bytes);
  let value: T;
  try {
    const version = readByte(decoder);
    if (version !== ENVELOPE_VERSION) {
      throw envelopeError("unknown-version", `version ${version}, this node speaks ${ENVELOPE_VERSION}`);
    }
    value = read(decoder);
  } catch (error) {
    if (error instanceof OpStreamError) throw error;
    // TextDecoder (fatal) throws a TypeError for a string that is not UTF-8; lib0
    // throws a plain Error when a read runs past the end of the frame.
    if (error instanceof TypeError)
      throw envelopeError("malformed", `a string is not UTF-8: ${error.message}`, error);
    throw envelopeError("truncated", `frame ends early: ${String(error)}`, error);
  }
  if (decoding.hasContent(decoder)) throw envelopeError("trailing-bytes", "bytes after the end of the frame");
  return value;
}

const channelWriters: {
  [T in ChannelMessageType]: (
    encoder: encoding.Encoder,
    message: Extract<ChannelMessage, { type: T }>,
  ) => void;
} = {
  [ChannelMessageType.Update]: (encoder, m) => {
    writeUint(encoder, m.epoch, "epoch");
    writeUint(encoder, m.seq, "seq");
    encoding.writeVarUint8Array(encoder, m.payload);
  },
  [ChannelMessageType.Awareness]: (encoder, m) => encoding.writeVarUint8Array(encoder, m.payload),
  [ChannelMessageType.Heartbeat]: (encoder, m) => {
    writeUint(encoder, m.epoch, "epoch");
    writeUint(encoder, m.seq, "seq");
  },
  [ChannelMessageType.Closed]: (encoder, m) => {
    writeUint(encoder, m.epoch, "epoch");
    encoding.writeVarString(encoder, m.successor);
  },
  [ChannelMessageType.Stateless]: (encoder, m) => encoding.writeVarString(encoder, m.payload),
  [ChannelMessageType.Owner]: (encoder, m) => {
    writeUint(encoder, m.epoch, "epoch");
    writeUint(encoder, m.seq, "seq");
  },
};

const channelReaders: {
  [T in ChannelMessageType]: (decoder: decoding.Decoder, origin: string) => ChannelMessage;
} = {
  [ChannelMessageType.Update]: (decoder, origin) => ({
    type: ChannelMessageType.Update,
    origin,
    epoch: decoding.readVarUint(decoder),
    seq: decoding.readVarUint(decoder),
    payload: readBytes(decoder),
  }),
  [ChannelMessageType.Awareness]: (decoder, origin) => ({
    type: ChannelMessageType.Awareness,
    origin,
    payload: readBytes(decoder),
  }),
  [ChannelMessageType.Heartbeat]: (decoder, origin) => ({
    type: ChannelMessageType.Heartbeat,
    origin,
    epoch: decoding.readVarUint(decoder),
    seq: decoding.readVarUint(decoder),
  }),
  [ChannelMessageType.Closed]: (decoder, origin) => ({
    type: ChannelMessageType.Closed,
    origin,
    epoch: decoding.readVarUint(decoder),
    successor: decoding.readVarString(decoder),
  }),
  [ChannelMessageType.Stateless]: (decoder, origin) => ({
    type: ChannelMessageType.Stateless,
    origin,
    payload: decoding.readVarString(decoder),
  }),
  [ChannelMessageType.Owner]: (decoder, origin) => ({
    type: ChannelMessageType.Owner,
    origin,
    epoch: decoding.readVarUint(decoder),
    seq: decoding.readVarUint(decoder),
  }),
};

/** Encodes a document-channel message: version, type, origin, then the type's fields. */
export function encodeChannelMessage(message: ChannelMessage): Uint8Array {
  return frame((encoder) => {
    encoding.writeVarUint(encoder, message.type);
    encoding.writeVarString(encoder, message.origin);
    const write = channelWriters[message.type] as (e: encoding.Encoder, m: ChannelMessage) => void;
    write(encoder, message);
  });
}

/** Decodes a document-channel message; throws OpStreamError(INVALID_FRAME) on anything malformed. */
export function decodeChannelMessage(bytes: Uint8Array): ChannelMessage {
  return decodeFrame(bytes, (decoder) => {
    const type = decoding.readVarUint(decoder);
    const read = channelReaders[type as ChannelMessageType] as
      (typeof channelReaders)[ChannelMessageType] | undefined;
    if (!read) throw envelopeError("unknown-type", `unknown channel message type ${type}`);
    return read(decoder, decoding.readVarString(decoder));
  });
}

/** Encodes a frame of a node's RPC channel. */
export function encodeRpcFrame(frameValue: RpcFrame): Uint8Array {
  return frame((encoder) => {
    encoding.writeVarUint(encoder, frameValue.kind);
    writeUint(encoder, frameValue.id, "id");
    if (frameValue.kind === RpcFrameKind.Request) {
      encoding.writeVarString(encoder, frameValue.type);
      encoding.writeVarString(encoder, frameValue.from);
      encoding.writeVarUint8Array(encoder, frameValue.payload);
    } else if (frameValue.ok) {
      encoding.writeUint8(encoder, 1);
      encoding.writeVarUint8Array(encoder, frameValue.payload);
    } else {
      encoding.writeUint8(encoder, 0);
      encoding.writeVarString(encoder, frameValue.code);
      encoding.writeVarString(encoder, frameValue.message);
    }
  });
}

/** Decodes a frame of a node's RPC channel; throws OpStreamError(INVALID_FRAME) on anything malformed. */
export function decodeRpcFrame(bytes: Uint8Array): RpcFrame {
  return decodeFrame(bytes, (decoder): RpcFrame => {
    const kind = decoding.readVarUint(decoder) as RpcFrameKind;
    const id = decoding.readVarUint(decoder);
    if (kind === RpcFrameKind.Request) {
      return {
        kind,
        id,
        type: decoding.readVarString(decoder),
        from: decoding.readVarString(decoder),
        payload: readBytes(decoder),
      };
    }
    if (kind !== RpcFrameKind.Response)
      throw envelopeError("unknown-type", `unknown RPC frame kind ${String(kind)}`);
    const ok = readByte(decoder);
    if (ok === 1) return { kind, id, ok: true, payload: readBytes(decoder) };
    if (ok !== 0) throw envelopeError("unknown-type", `unknown RPC response status ${ok}`);
    return {
      kind,
      id,
      ok: false,
      code: decoding.readVarString(decoder),
      message: decoding.readVarString(decoder),
    };
  });
}
