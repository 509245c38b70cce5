import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import { ErrorCodes, OpStreamError } from "../../errors.js";
import { SyncStep } from "../y-websocket/messages.js";

/**
 * Message types of the Hocuspocus protocol (PROTOCOL.md, "Hocuspocus dialect").
 * Every document frame starts with the document's routing key (a varString),
 * then one of these; Ping and Pong are one-byte frames of the whole socket.
 */
export enum HocuspocusMessageType {
  Sync = 0,
  Awareness = 1,
  Auth = 2,
  QueryAwareness = 3,
  /** Like Sync, but a SyncStep1 in it is not answered with the server's own SyncStep1. */
  SyncReply = 4,
  Stateless = 5,
  /** Server-internal in Hocuspocus; refused from clients. */
  BroadcastStateless = 6,
  Close = 7,
  SyncStatus = 8,
  Ping = 9,
  Pong = 10,
}

/** Sub-types of an Auth message. */
export enum AuthMessageType {
  Token = 0,
  PermissionDenied = 1,
  Authenticated = 2,
}

/** A decoded document message from a client. */
export type HocuspocusMessage =
  | { type: "sync-step-1"; stateVector: Uint8Array; reply: boolean }
  | { type: "sync-step-2" | "update"; update: Uint8Array }
  | { type: "awareness"; update: Uint8Array }
  | { type: "query-awareness" }
  /** `version` is sent by provider v4 and later (absent before). */
  | { type: "auth"; token: string; version: string | undefined }
  | { type: "stateless"; payload: string }
  | { type: "close" };

/** A decoded client frame: a document message with its raw routing key, or a socket-level ping/pong. */
export type HocuspocusFrame =
  { kind: "document"; key: string; message: HocuspocusMessage } | { kind: "ping" } | { kind: "pong" };

/** Why a frame could not be decoded; each maps to a close code. */
export type HocuspocusFrameErrorReason =
  "truncated" | "malformed" | "unknown-type" | "trailing-bytes" | "key-too-long";

/** Longest session id in a `name\0sessionId` routing key (the stock provider's are ~11 characters). */
export const MAX_SESSION_ID_LENGTH = 128;

/** The longest routing key, in characters: the longest document name, `\0`, the longest session id. */
export function maxRoutingKeyLength(maxDocumentNameLength: number): number {
  return maxDocumentNameLength + 1 + MAX_SESSION_ID_LENGTH;
}

function frameError(reason: HocuspocusFrameErrorReason, message: string): OpStreamError {
  return new OpStreamError(ErrorCodes.INVALID_FRAME, `Invalid Hocuspocus frame: ${message}`, { reason });
}

function readBytes(decoder: decoding.Decoder): Uint8Array {
  const length = decoding.readVarUint(decoder);
  if (length > decoder.arr.length - decoder.pos)
    throw frameError("truncated", "frame ends inside a byte array");
  return decoding.readUint8Array(decoder, length);
}

function readString(decoder: decoding.Decoder): string {
  return new TextDecoder("utf-8", { fatal: true }).decode(readBytes(decoder));
}

/**
 * The routing key, refused past `maxLength` characters before it is kept or
 * echoed: a key is attacker input as large as a frame, repeated in every answer.
 * UTF-8 spends at most 3 bytes per UTF-16 code unit, so a longer byte string is
 * refused without being decoded at all.
 */
function readKey(decoder: decoding.Decoder, maxLength: number): string {
  const bytes = readBytes(decoder);
  const key =
    bytes.byteLength > 3 * maxLength ? undefined : new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  if (key === undefined || key.length > maxLength) throw frameError("key-too-long", "routing key too long");
  return key;
}

function decodeSync(decoder: decoding.Decoder, reply: boolean): HocuspocusMessage {
  const step = decoding.readVarUint(decoder) as SyncStep;
  if (step === SyncStep.Step1) return { type: "sync-step-1", stateVector: readBytes(decoder), reply };
  if (step === SyncStep.Step2) return { type: "sync-step-2", update: readBytes(decoder) };
  if (step === SyncStep.Update) return { type: "update", update: readBytes(decoder) };
  throw frameError("unknown-type", `unknown sync step ${String(step)}`);
}

const readers: Partial<Record<HocuspocusMessageType, (decoder: decoding.Decoder) => HocuspocusMessage>> = {
  [HocuspocusMessageType.Sync]: (d) => decodeSync(d, false),
  [HocuspocusMessageType.SyncReply]: (d) => decodeSync(d, true),
  [HocuspocusMessageType.Awareness]: (d) => ({ type: "awareness", update: readBytes(d) }),
  [HocuspocusMessageType.QueryAwareness]: () => ({ type: "query-awareness" }),
  [HocuspocusMessageType.Auth]: (d) => {
    const authType = decoding.readVarUint(d) as AuthMessageType;
    if (authType !== AuthMessageType.Token)
      throw frameError("unknown-type", `a client sends only Auth/Token, got auth type ${authType}`);
    const token = readString(d);
    return { type: "auth", token, version: decoding.hasContent(d) ? readString(d) : undefined };
  },
  [HocuspocusMessageType.Stateless]: (d) => ({ type: "stateless", payload: readString(d) }),
  [HocuspocusMessageType.Close]: () => ({ type: "close" }),
};

/**
 * Decodes one client frame; throws OpStreamError(INVALID_FRAME) when it is
 * truncated, unknown, has trailing bytes, or its routing key is longer than
 * `maxKeyLength` characters ({@link maxRoutingKeyLength}).
 */
export function decodeFrame(frame: Uint8Array, maxKeyLength: number): HocuspocusFrame {
  // Socket-level Ping/Pong are a lone type byte: no routing key (a key of 9 or 10
  // bytes cannot fit in a one-byte frame, so there is no ambiguity).
  if (frame.byteLength === 1 && frame[0] === HocuspocusMessageType.Pong) return { kind: "pong" };
  if (frame.byteLength === 1 && frame[0] === HocuspocusMessageType.Ping) return { kind: "ping" };
  const decoder = decoding.createDecoder(frame);
  let result: HocuspocusFrame;
  try {
    const key = readKey(decoder, maxKeyLength);
    const type = decoding.readVarUint(decoder) as HocuspocusMessageType;
    const read = readers[type];
    if (!read) throw frameError("unknown-type", `a client may not send message type ${String(type)}`);
    result = { kind: "document", key, message: read(decoder) };
  } catch (error) {
    if (error instanceof OpStreamError) throw error;
    // TextDecoder (fatal) throws a TypeError on bad UTF-8; lib0 a plain Error past the end.
    if (error instanceof TypeError) throw frameError("malformed", `a string is not UTF-8: ${error.message}`);
    throw frameError("truncated", `frame ends early: ${String(error)}`);
  }
  if (decoding.hasContent(decoder)) throw frameError("trailing-bytes", "bytes after the end of the message");
  return result;
}

/** The reason of an INVALID_FRAME error thrown by {@link decodeFrame}. */
export function hocuspocusFrameErrorReason(error: OpStreamError): HocuspocusFrameErrorReason {
  return (error.details.reason as HocuspocusFrameErrorReason | undefined) ?? "truncated";
}

function documentFrame(
  key: string,
  type: HocuspocusMessageType,
  write: (encoder: encoding.Encoder) => void,
): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarString(encoder, key);
  encoding.writeVarUint(encoder, type);
  write(encoder);
  return encoding.toUint8Array(encoder);
}

const syncFrame = (key: string, step: SyncStep, bytes: Uint8Array): Uint8Array =>
  documentFrame(key, HocuspocusMessageType.Sync, (e) => {
    encoding.writeVarUint(e, step);
    encoding.writeVarUint8Array(e, bytes);
  });

/** Server frames, each addressed with the exact routing key the client used. */
export const encode = Object.freeze({
  syncStep1: (key: string, stateVector: Uint8Array) => syncFrame(key, SyncStep.Step1, stateVector),
  syncStep2: (key: string, update: Uint8Array) => syncFrame(key, SyncStep.Step2, update),
  update: (key: string, update: Uint8Array) => syncFrame(key, SyncStep.Update, update),
  awareness: (key: string, update: Uint8Array) =>
    documentFrame(key, HocuspocusMessageType.Awareness, (e) => encoding.writeVarUint8Array(e, update)),
  authenticated: (key: string, scope: "readonly" | "read-write") =>
    documentFrame(key, HocuspocusMessageType.Auth, (e) => {
      encoding.writeVarUint(e, AuthMessageType.Authenticated);
      encoding.writeVarString(e, scope);
    }),
  permissionDenied: (key: string, reason: string) =>
    documentFrame(key, HocuspocusMessageType.Auth, (e) => {
      encoding.writeVarUint(e, AuthMessageType.PermissionDenied);
      encoding.writeVarString(e, reason);
    }),
  stateless: (key: string, payload: string) =>
    documentFrame(key, HocuspocusMessageType.Stateless, (e) => encoding.writeVarString(e, payload)),
  /** `applied`: the update is durable on the server (or it already had it). */
  syncStatus: (key: string, applied: boolean) =>
    documentFrame(key, HocuspocusMessageType.SyncStatus, (e) => encoding.writeVarUint(e, applied ? 1 : 0)),
  close: (key: string, reason: string) =>
    documentFrame(key, HocuspocusMessageType.Close, (e) => encoding.writeVarString(e, reason)),
});

/** An awareness update with no entries: the answer to QueryAwareness when nobody is present. */
export const EMPTY_AWARENESS_UPDATE = new Uint8Array([0]);
export const PING_FRAME = new Uint8Array([HocuspocusMessageType.Ping]);
export const PONG_FRAME = new Uint8Array([HocuspocusMessageType.Pong]);

/** The routing key's document name: a v4 provider with `sessionAwareness` sends `name\0sessionId`. */
export function documentNameOf(key: string): string {
  const separator = key.indexOf("\0");
  return separator === -1 ? key : key.slice(0, separator);
}
