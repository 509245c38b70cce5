import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import type { ManagementAction } from "../engine/session-state.js";
import { ErrorCodes, OpStreamError } from "../errors.js";

/**
 * Requests a relay (a non-owner node with clients on a document) sends to the
 * document's owner over `IBackplane.sendRequest`. Each is answered with a
 * {@link OwnerReply} or a coded error (NOT_OWNER: re-resolve the owner and retry).
 */
export const OwnerRequests = Object.freeze({
  /** A relay node attaches a client: `bytes` empty. Reply: state vector, epoch, seq; `extra` = awareness states. */
  JOIN: "opstream.doc.join",
  /** A client's sync step 1: `bytes` = its state vector. Reply: the durable update it lacks. */
  SYNC: "opstream.doc.sync",
  /** A client's update: `bytes` = the update. Reply: seq (0 when it changed nothing), once durable. */
  APPLY: "opstream.doc.apply",
  /** A client's awareness update: `bytes` = the update. Reply: empty. */
  AWARENESS: "opstream.doc.awareness",
  /** A client left: `bytes` empty. Reply: empty. */
  LEAVE: "opstream.doc.leave",
  /**
   * A relay's periodic renewal of its clients (`peerId` = the relay's, unused):
   * `bytes` = {@link encodePeerIds} of the clients still attached. Reply: empty.
   * The owner forgets a client of another node that no renewal named for 3 periods.
   */
  PEERS: "opstream.doc.peers",
  /** A relay noticed a gap: reply with the full durable state and its (epoch, seq). */
  RESYNC: "opstream.doc.resync",
  /** A read-only client's update: `bytes` = the update. Reply: `bytes` = `01` when the durable document holds all of it, else `00`. */
  CONTAINS: "opstream.doc.contains",
  /** A stateless broadcast: `bytes` = the UTF-8 payload. Reply: empty, once sent to the owner's clients and published. */
  STATELESS: "opstream.doc.stateless",
  /**
   * Sent the other way, by an owner draining on SIGTERM to the successor it will
   * name in its Closed message: load the document now, ahead of the takeover,
   * while the owner still serves it (`peerId` empty, `bytes` = the owner's epoch
   * as a lib0 var-uint: only ops of that epoch are caught up). Reply:
   * empty, once loaded. See {@link Handoffs}.
   */
  PREPARE: "opstream.doc.prepare",
  /** Management API, get: reply with the full durable state (as RESYNC), no peer attached. */
  STATE: "opstream.doc.state",
  /** Management API, compact now: snapshot + trim under the apply lock. Reply: seq = the snapshot's seq. */
  COMPACT: "opstream.doc.compact",
  /** Management API, delete: close the session (peers get 4004), remove its storage. Reply: empty. */
  DELETE: "opstream.doc.delete",
  /** History, save a named version: `bytes` = UTF-8 JSON `{ name }`. Reply: seq = its seq, `bytes` = the VersionInfo as JSON. */
  VERSION: "opstream.doc.version",
  /**
   * History, restore: `bytes` = UTF-8 JSON `{ versionId }`. Reply once the restoring
   * op is durable and fanned out: seq = the `restore` version's seq, `bytes` = the
   * RestoreResult as JSON (`before`, `restored`, `after`, `seq`).
   */
  RESTORE: "opstream.doc.restore",
});

/** The request types of the management API (a subset of {@link OwnerRequests}). */
export type ManagementRequest =
  | typeof OwnerRequests.STATE
  | typeof OwnerRequests.COMPACT
  | typeof OwnerRequests.DELETE
  | typeof OwnerRequests.VERSION
  | typeof OwnerRequests.RESTORE;

/** The session's management action each management request runs. */
export const MANAGEMENT_ACTIONS: Readonly<Record<ManagementRequest, ManagementAction>> = Object.freeze({
  [OwnerRequests.STATE]: "state",
  [OwnerRequests.COMPACT]: "compact",
  [OwnerRequests.DELETE]: "delete",
  [OwnerRequests.VERSION]: "version",
  [OwnerRequests.RESTORE]: "restore",
});

/** A request to the owner about one client (`peerId`, unique cluster-wide) of one document. */
export interface OwnerRequest {
  readonly docId: string;
  readonly peerId: string;
  readonly bytes: Uint8Array;
}

/** The owner's answer: its epoch, its latest (or the op's) seq, and a payload. */
export interface OwnerReply {
  readonly epoch: number;
  readonly seq: number;
  readonly bytes: Uint8Array;
  /** A second payload (JOIN: the awareness states; empty when none). */
  readonly extra: Uint8Array;
}

const EMPTY = new Uint8Array(0);

export function encodeOwnerRequest({ docId, peerId, bytes }: OwnerRequest): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarString(encoder, docId);
  encoding.writeVarString(encoder, peerId);
  encoding.writeVarUint8Array(encoder, bytes);
  return encoding.toUint8Array(encoder);
}

export function decodeOwnerRequest(payload: Uint8Array): OwnerRequest {
  return decodeOrThrow("request", payload, (decoder) => ({
    docId: decoding.readVarString(decoder),
    peerId: decoding.readVarString(decoder),
    bytes: decoding.readVarUint8Array(decoder),
  }));
}

export function encodeOwnerReply({
  epoch,
  seq,
  bytes,
  extra,
}: Partial<OwnerReply> & { epoch: number; seq: number }): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, epoch);
  encoding.writeVarUint(encoder, seq);
  encoding.writeVarUint8Array(encoder, bytes ?? EMPTY);
  encoding.writeVarUint8Array(encoder, extra ?? EMPTY);
  return encoding.toUint8Array(encoder);
}

export function decodeOwnerReply(payload: Uint8Array): OwnerReply {
  return decodeOrThrow("reply", payload, (decoder) => ({
    epoch: decoding.readVarUint(decoder),
    seq: decoding.readVarUint(decoder),
    bytes: decoding.readVarUint8Array(decoder),
    extra: decoding.readVarUint8Array(decoder),
  }));
}

function decodeOrThrow<T>(what: string, payload: Uint8Array, read: (decoder: decoding.Decoder) => T): T {
  try {
    return read(decoding.createDecoder(payload));
  } catch (error) {
    throw new OpStreamError(ErrorCodes.INVALID_FRAME, `Malformed owner ${what}: ${String(error)}`, {}, error);
  }
}

/** The payload of {@link OwnerRequests.PEERS}: a count, then each id as a var-string. */
export function encodePeerIds(ids: readonly string[]): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, ids.length);
  for (const id of ids) encoding.writeVarString(encoder, id);
  return encoding.toUint8Array(encoder);
}

/** Reads {@link encodePeerIds}; throws on a malformed payload. */
export function decodePeerIds(bytes: Uint8Array): string[] {
  const decoder = decoding.createDecoder(bytes);
  const count = decoding.readVarUint(decoder);
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push(decoding.readVarString(decoder));
  return ids;
}
