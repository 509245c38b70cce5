import * as decoding from "lib0/decoding";
import * as Y from "yjs";

/**
 * A cheap structural check of a Yjs update (v1 encoding) before `Y.applyUpdate`
 * sees it: it walks the structs and the delete set without building anything and
 * rejects what Yjs's decoder could spend unbounded time or memory on (yjs #479,
 * #498, #687: an empty buffer, garbage, tiny payloads that declare huge counts).
 *
 * Rules: every declared count (clients, structs, deletions, JSON/Any items, object
 * keys, string and byte lengths) must fit in the bytes that are left, since each
 * element takes at least one byte; clocks and lengths stay below 2^32; Any values
 * nest at most {@link MAX_DEPTH} deep; nothing may follow the delete set. The work
 * is linear in the update's size.
 */
export function checkUpdate(update: Uint8Array): void {
  if (update.byteLength < 2) throw new UpdateCheckError("an update has at least 2 bytes");
  const decoder = decoding.createDecoder(update);
  try {
    const clients = count(decoder, "clients");
    for (let c = 0; c < clients; c++) {
      const structs = count(decoder, "structs");
      bounded(decoding.readVarUint(decoder), "client id");
      bounded(decoding.readVarUint(decoder), "clock");
      for (let s = 0; s < structs; s++) readStruct(decoder);
    }
    const deleteClients = count(decoder, "delete-set clients");
    for (let c = 0; c < deleteClients; c++) {
      bounded(decoding.readVarUint(decoder), "client id");
      const ranges = count(decoder, "delete ranges", 2);
      for (let r = 0; r < ranges; r++) {
        bounded(decoding.readVarUint(decoder), "delete clock");
        bounded(decoding.readVarUint(decoder), "delete length");
      }
    }
  } catch (error) {
    if (error instanceof UpdateCheckError) throw error;
    // lib0 throws on reading past the end and on oversized varints.
    throw new UpdateCheckError(error instanceof Error ? error.message : String(error));
  }
  if (decoding.hasContent(decoder)) throw new UpdateCheckError("bytes follow the delete set");
}

/** Why an update failed {@link checkUpdate}. */
export class UpdateCheckError extends Error {
  override readonly name = "UpdateCheckError";
  constructor(reason: string) {
    super(`malformed update: ${reason}`);
  }
}

/** Deepest nesting of Any values (arrays and objects) accepted. */
export const MAX_DEPTH = 64;
const MAX_NUMBER = 2 ** 32;
const BIT8 = 0b1000_0000;
const BIT7 = 0b0100_0000;
const BIT6 = 0b0010_0000;
const BITS5 = 0b0001_1111;

function left(decoder: decoding.Decoder): number {
  return decoder.arr.length - decoder.pos;
}

/** A declared number of elements of at least `minBytes` each, checked against what is left. */
function count(decoder: decoding.Decoder, what: string, minBytes = 1): number {
  const n = decoding.readVarUint(decoder);
  if (n * minBytes > left(decoder)) {
    throw new UpdateCheckError(`${n} ${what} declared with ${left(decoder)} bytes left`);
  }
  return n;
}

function bounded(n: number, what: string): number {
  if (n >= MAX_NUMBER) throw new UpdateCheckError(`${what} ${n} is out of range`);
  return n;
}

/** Skips a varString or varUint8Array, checking its declared length first. */
function skipBytes(decoder: decoding.Decoder, what: string): void {
  const length = decoding.readVarUint(decoder);
  if (length > left(decoder))
    throw new UpdateCheckError(`${what} of ${length} bytes with ${left(decoder)} left`);
  decoder.pos += length;
}

function skipId(decoder: decoding.Decoder): void {
  bounded(decoding.readVarUint(decoder), "client id");
  bounded(decoding.readVarUint(decoder), "clock");
}

function readStruct(decoder: decoding.Decoder): void {
  const info = decoding.readUint8(decoder);
  const ref = info & BITS5;
  if (ref === 0 || ref === 10) {
    // GC or Skip: a length only.
    bounded(decoding.readVarUint(decoder), "length");
    return;
  }
  if (info & BIT8) skipId(decoder); // origin
  if (info & BIT7) skipId(decoder); // right origin
  if ((info & (BIT8 | BIT7)) === 0) {
    const parentIsKey = decoding.readVarUint(decoder) === 1;
    if (parentIsKey) skipBytes(decoder, "parent key");
    else skipId(decoder);
    if (info & BIT6) skipBytes(decoder, "parent sub");
  }
  readContent(decoder, ref);
}

function readContent(decoder: decoding.Decoder, ref: number): void {
  switch (ref) {
    case 1: // Deleted
      bounded(decoding.readVarUint(decoder), "length");
      return;
    case 2: {
      // JSON
      const n = count(decoder, "JSON items");
      for (let i = 0; i < n; i++) skipBytes(decoder, "JSON item");
      return;
    }
    case 3: // Binary
    case 4: // String
    case 5: // Embed (JSON string)
      skipBytes(decoder, "content");
      return;
    case 6: // Format: key, JSON value
      skipBytes(decoder, "format key");
      skipBytes(decoder, "format value");
      return;
    case 7: {
      // Type: a type ref, plus a name for XmlElement (3) and XmlHook (5)
      const typeRef = decoding.readVarUint(decoder);
      if (typeRef > 6) throw new UpdateCheckError(`unknown type ref ${typeRef}`);
      if (typeRef === 3 || typeRef === 5) skipBytes(decoder, "type name");
      return;
    }
    case 8: {
      // Any
      const n = count(decoder, "Any items");
      for (let i = 0; i < n; i++) skipAny(decoder, 0);
      return;
    }
    case 9: // Doc: guid, options
      skipBytes(decoder, "doc guid");
      skipAny(decoder, 0);
      return;
    default:
      throw new UpdateCheckError(`unknown content ref ${ref}`);
  }
}

/** Skips one lib0 `writeAny` value. */
function skipAny(decoder: decoding.Decoder, depth: number): void {
  if (depth > MAX_DEPTH) throw new UpdateCheckError(`Any values nested deeper than ${MAX_DEPTH}`);
  const type = decoding.readUint8(decoder);
  switch (type) {
    case 127: // undefined
    case 126: // null
    case 121: // false
    case 120: // true
      return;
    case 125: // integer
      decoding.readVarInt(decoder);
      return;
    case 124: // float32
      decoding.readFloat32(decoder);
      return;
    case 123: // float64
      decoding.readFloat64(decoder);
      return;
    case 122: // bigint64
      decoding.readBigInt64(decoder);
      return;
    case 119: // string
    case 116: // Uint8Array
      skipBytes(decoder, "Any value");
      return;
    case 118: {
      // object: key, value pairs (2 bytes at least each)
      const n = count(decoder, "object entries", 2);
      for (let i = 0; i < n; i++) {
        skipBytes(decoder, "object key");
        skipAny(decoder, depth + 1);
      }
      return;
    }
    case 117: {
      const n = count(decoder, "array items");
      for (let i = 0; i < n; i++) skipAny(decoder, depth + 1);
      return;
    }
    default:
      throw new UpdateCheckError(`unknown Any type ${type}`);
  }
}

/**
 * True when `doc` already holds everything in `update` (applying it would change
 * nothing). Checks the update first; throws on malformed input.
 */
export function containsUpdate(doc: Y.Doc, update: Uint8Array): boolean {
  checkUpdate(update);
  return Y.snapshotContainsUpdate(Y.snapshot(doc), update);
}
