import fc from "fast-check";
import * as encoding from "lib0/encoding";
import * as Y from "yjs";

/**
 * What an attacker may send, before it is put in either dialect's frames. The
 * arbitraries below generate sequences of these; `encodeYWebsocket` and
 * `encodeHocuspocus` turn one into bytes.
 */
export type AttackFrame =
  | { kind: "auth"; key: string; token: string }
  | { kind: "sync-step-1"; key: string; stateVector: Uint8Array }
  | { kind: "update" | "sync-step-2"; key: string; update: Uint8Array }
  | { kind: "awareness"; key: string; update: Uint8Array }
  | { kind: "query-awareness"; key: string }
  | { kind: "stateless"; key: string; payload: string }
  | { kind: "close"; key: string }
  | { kind: "raw"; bytes: Uint8Array };

/** Text every attacker's insertion carries: it must never reach a document the attacker may not write. */
export const ATTACK_MARK = "EVIL";

/** Document names that earlier findings or the scope grammar make interesting, and random ones. */
export const documentName = (victims: readonly string[]): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 2, arbitrary: fc.constantFrom(...victims) },
    fc.constantFrom("fresh", "foo:read", "*:read", "*", "a b", "acme/shared", "%2A", "x".repeat(600)),
    fc.string({ minLength: 0, maxLength: 24 }),
  );

/** A routing key: a document name, `name\0session`, or an oversized key. */
const routingKey = (victims: readonly string[]): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 6, arbitrary: documentName(victims) },
    {
      weight: 1,
      arbitrary: fc.tuple(documentName(victims), fc.string({ maxLength: 200 })).map(([n, s]) => `${n}\0${s}`),
    },
    { weight: 1, arbitrary: fc.integer({ min: 1024, max: 512 * 1024 }).map((n) => "k".repeat(n)) },
  );

/** A valid insertion of the attack mark by a fresh client. */
function insertion(clientId: number, at: number): Uint8Array {
  const doc = new Y.Doc();
  doc.clientID = clientId;
  doc.getText("text").insert(0, `${ATTACK_MARK}${at}`);
  const update = Y.encodeStateAsUpdate(doc);
  doc.destroy();
  return update;
}

/** An update whose dependencies the server never saw (it stays pending): `size` bytes of content after a missing first change. */
function orphan(clientId: number, size: number): Uint8Array {
  const doc = new Y.Doc();
  doc.clientID = clientId;
  const text = doc.getText("text");
  text.insert(0, "missing first change");
  const before = Y.encodeStateVector(doc);
  text.insert(text.length, ATTACK_MARK.padEnd(size, "!"));
  const update = Y.encodeStateAsUpdate(doc, before);
  doc.destroy();
  return update;
}

/** A deletion of everything in text "text" of a document whose state the attacker read. */
function deletionOf(clientId: number, state: Uint8Array): Uint8Array {
  const doc = new Y.Doc();
  doc.clientID = clientId;
  Y.applyUpdate(doc, state);
  const before = Y.encodeStateVector(doc);
  const text = doc.getText("text");
  text.delete(0, text.length);
  text.insert(0, ATTACK_MARK);
  const update = Y.encodeStateAsUpdate(doc, before);
  doc.destroy();
  return update;
}

/** An awareness update for `clientId`: a plausible state, a huge one, or one that is not JSON. */
function awarenessUpdate(clientId: number, clock: number, state: string): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, 1);
  encoding.writeVarUint(encoder, clientId);
  encoding.writeVarUint(encoder, clock);
  encoding.writeVarString(encoder, state);
  return encoding.toUint8Array(encoder);
}

/**
 * What an attacker can learn about the document before it attacks: the honest
 * clients' awareness ids, and the victim's state (a reader may read it), so that
 * spoofing and deletions are aimed, not random.
 */
export interface Knowledge {
  readonly victims: readonly string[];
  readonly honestClientIds: readonly number[];
  readonly victimState: Uint8Array;
}

const bytes = (max: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: 0, maxLength: max });

const updateBytes = (known: Knowledge): fc.Arbitrary<Uint8Array> =>
  fc.oneof(
    fc.tuple(fc.integer({ min: 1, max: 2 ** 31 }), fc.nat(1000)).map(([id, at]) => insertion(id, at)),
    fc
      .tuple(fc.integer({ min: 1, max: 2 ** 31 }), fc.integer({ min: 16, max: 300_000 }))
      .map(([id, size]) => orphan(id, size)),
    fc.integer({ min: 1, max: 2 ** 31 }).map((id) => deletionOf(id, known.victimState)),
    bytes(64),
  );

const awarenessBytes = (known: Knowledge): fc.Arbitrary<Uint8Array> =>
  fc.oneof(
    fc
      .tuple(
        fc.oneof(fc.constantFrom(...known.honestClientIds), fc.integer({ min: 0, max: 2 ** 31 })),
        fc.integer({ min: 0, max: 1_000_000 }),
        fc.oneof(
          fc.constant(JSON.stringify({ user: { name: ATTACK_MARK } })),
          fc.constant("null"),
          fc.constant("not json {"),
          fc.integer({ min: 16_000, max: 40_000 }).map((n) => JSON.stringify({ blob: "b".repeat(n) })),
        ),
      )
      .map(([id, clock, state]) => awarenessUpdate(id, clock, state)),
    bytes(32),
  );

/** One frame an attacker sends, aimed at `known`. */
export const attackFrame = (known: Knowledge, token: fc.Arbitrary<string>): fc.Arbitrary<AttackFrame> => {
  const key = routingKey(known.victims);
  return fc.oneof(
    { weight: 3, arbitrary: fc.record({ kind: fc.constant("auth" as const), key, token }) },
    {
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant("sync-step-1" as const), key, stateVector: bytes(16) }),
    },
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constantFrom("update" as const, "sync-step-2" as const),
        key,
        update: updateBytes(known),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({ kind: fc.constant("awareness" as const), key, update: awarenessBytes(known) }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("query-awareness" as const), key }) },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant("stateless" as const),
        key,
        payload: fc.string({ maxLength: 64 }),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("close" as const), key }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("raw" as const), bytes: bytes(48) }) },
  );
};

/**
 * The message of `frame` after its routing key: the two dialects share the Sync
 * (0), Awareness (1) and QueryAwareness (3) messages; Auth, Stateless and Close
 * are Hocuspocus's alone. False when the frame has no such message.
 */
function writeMessage(encoder: encoding.Encoder, frame: AttackFrame, hocuspocus: boolean): boolean {
  switch (frame.kind) {
    case "sync-step-1":
      encoding.writeVarUint(encoder, 0);
      encoding.writeVarUint(encoder, 0);
      encoding.writeVarUint8Array(encoder, frame.stateVector);
      return true;
    case "sync-step-2":
    case "update":
      encoding.writeVarUint(encoder, 0);
      encoding.writeVarUint(encoder, frame.kind === "sync-step-2" ? 1 : 2);
      encoding.writeVarUint8Array(encoder, frame.update);
      return true;
    case "awareness":
      encoding.writeVarUint(encoder, 1);
      encoding.writeVarUint8Array(encoder, frame.update);
      return true;
    case "query-awareness":
      encoding.writeVarUint(encoder, 3);
      return true;
    case "auth":
      if (!hocuspocus) return false;
      encoding.writeVarUint(encoder, 2);
      encoding.writeVarUint(encoder, 0);
      encoding.writeVarString(encoder, frame.token);
      return true;
    case "stateless":
      if (!hocuspocus) return false;
      encoding.writeVarUint(encoder, 5);
      encoding.writeVarString(encoder, frame.payload);
      return true;
    case "close":
      if (!hocuspocus) return false;
      encoding.writeVarUint(encoder, 7);
      return true;
    case "raw":
      return false;
  }
}

/** The frame in the y-websocket dialect (no routing key: the document is the URL's), or null when it has no such frame. */
export function encodeYWebsocket(frame: AttackFrame): Uint8Array | null {
  if (frame.kind === "raw") return frame.bytes;
  const encoder = encoding.createEncoder();
  return writeMessage(encoder, frame, false) ? encoding.toUint8Array(encoder) : null;
}

/** The frame in the Hocuspocus dialect: its routing key, then its message. */
export function encodeHocuspocus(frame: AttackFrame): Uint8Array {
  if (frame.kind === "raw") return frame.bytes;
  const encoder = encoding.createEncoder();
  encoding.writeVarString(encoder, frame.key);
  writeMessage(encoder, frame, true);
  return encoding.toUint8Array(encoder);
}
