import * as Y from "yjs";
import { rootKind, type RootKind } from "../shared-json.js";

/** One changed range of a {@link VersionDiff}. */
export interface DiffChange {
  /** Whether the range is in `to` but not `from` (`added`), or the other way (`removed`). */
  readonly type: "added" | "removed";
  /** The Yjs client id that wrote it. */
  readonly client: number;
  /** For text: where the range sits in the `to` text (a removed range: where it was). */
  readonly index: number;
  /** Its text (text ranges); for an XML element, its tag as `<name>`; for an embed, its JSON. */
  readonly text: string;
  /**
   * For ranges inside an XmlFragment: the child indexes, in the `to` document with
   * removed nodes counted too, of the XmlText or XmlElement that holds it; `[]` at the root.
   */
  readonly path: readonly number[];
}

/** A text delta op with its change mark, as Yjs renders a text between two snapshots. */
export interface DiffDeltaOp {
  readonly insert: string | Record<string, unknown>;
  readonly attributes?: Record<string, unknown>;
}

/** How one root type changed between two versions. */
export interface TypeDiff {
  readonly kind: RootKind;
  /** Every changed range, in document order. Empty when the type did not change (or is a map/array). */
  readonly changes: readonly DiffChange[];
  /**
   * Text roots: the `to` text with removed ranges kept, each op marked
   * `attributes.ychange = { type: "added" | "removed", client }` (Yjs's own
   * snapshot rendering; what y-prosemirror and the sample panel highlight).
   */
  readonly delta?: readonly DiffDeltaOp[];
  /** Maps and arrays: the JSON in each version (they are compared whole). */
  readonly before?: unknown;
  readonly after?: unknown;
}

/** What changed from one version (`from`) to another (`to`), per root type. */
export type VersionDiff = Record<string, TypeDiff>;

/**
 * Compares two states of one document (two versions, or a version and now).
 * Both are loaded into one `gc: false` document — the older state first, so the
 * content the newer one deleted is still there — and each root is read between
 * the two Yjs snapshots. The temporary document holds the two states and nothing
 * else, and is destroyed before this returns: the memory cost is bounded by the
 * sizes of the two versions, not by the document's history.
 */
export function diffStates(from: Uint8Array, to: Uint8Array): VersionDiff {
  const merged = new Y.Doc({ gc: false });
  const { fromSnapshot, toSnapshot } = loadBoth(merged, from, to);
  const inFrom = (item: Y.Item) => visible(item, fromSnapshot);
  const inTo = (item: Y.Item) => visible(item, toSnapshot);
  const diff: VersionDiff = {};
  try {
    for (const name of [...merged.share.keys()].sort()) {
      const kind = rootKind(merged, name, (item) => inFrom(item) || inTo(item));
      if (kind === "text") {
        const delta = sameText(
          merged.getText(name).toDelta(toSnapshot, fromSnapshot, markChange) as DiffDeltaOp[],
        );
        diff[name] = { kind, delta, changes: textChanges(delta, []) };
      } else if (kind === "xml") {
        const changes: DiffChange[] = [];
        xmlChanges(merged.getXmlFragment(name), [], { from: fromSnapshot, to: toSnapshot }, changes);
        diff[name] = { kind, changes };
      } else if (kind === "map" || kind === "array") {
        diff[name] = {
          kind,
          changes: [],
          before: jsonAt(from, name, kind),
          after: jsonAt(to, name, kind),
        };
      }
    }
  } finally {
    merged.destroy();
  }
  return diff;
}

function markChange(type: "added" | "removed", id: Y.ID): { type: string; client: number; user: number } {
  // `user` is what Yjs compares to split ranges of different writers.
  return { type, client: id.client, user: id.client };
}

/**
 * Loads both states into `merged` and returns each one's snapshot. Yjs deletions
 * are final, so when one state holds every op of the other (versions of one
 * document do), applying the older first keeps every visible item's content, and
 * the document's snapshot after each step is that state's: no state is decoded
 * twice. Otherwise (states of unrelated histories) each snapshot is read apart.
 */
function loadBoth(
  merged: Y.Doc,
  from: Uint8Array,
  to: Uint8Array,
): { fromSnapshot: Y.Snapshot; toSnapshot: Y.Snapshot } {
  const fromVector = Y.decodeStateVector(Y.encodeStateVectorFromUpdate(from));
  const toVector = Y.decodeStateVector(Y.encodeStateVectorFromUpdate(to));
  const forward = dominates(toVector, fromVector);
  if (forward || dominates(fromVector, toVector)) {
    Y.applyUpdate(merged, forward ? from : to);
    const older = Y.snapshot(merged);
    Y.applyUpdate(merged, forward ? to : from);
    const newer = Y.snapshot(merged);
    return forward ? { fromSnapshot: older, toSnapshot: newer } : { fromSnapshot: newer, toSnapshot: older };
  }
  const snapshots = { fromSnapshot: snapshotOf(from), toSnapshot: snapshotOf(to) };
  Y.applyUpdate(merged, from);
  Y.applyUpdate(merged, to);
  return snapshots;
}

function snapshotOf(state: Uint8Array): Y.Snapshot {
  const doc = new Y.Doc();
  Y.applyUpdate(doc, state);
  const snapshot = Y.snapshot(doc);
  doc.destroy();
  return snapshot;
}

/** True when `a` holds every clock `b` holds. */
function dominates(a: Map<number, number>, b: Map<number, number>): boolean {
  for (const [client, clock] of b) if ((a.get(client) ?? 0) < clock) return false;
  return true;
}

function visible(item: Y.Item, snapshot: Y.Snapshot): boolean {
  return (snapshot.sv.get(item.id.client) ?? 0) > item.id.clock && !Y.isDeleted(snapshot.ds, item.id);
}

function markOf(op: DiffDeltaOp): { type: "added" | "removed"; client: number } | undefined {
  return op.attributes?.ychange as { type: "added" | "removed"; client: number } | undefined;
}

/**
 * The delta with every run of changes that leaves the text as it was turned back
 * into unchanged text. Yjs compares items, not characters: a restore puts removed
 * text back as new items, so without this, text a restore brought back would show
 * as removed and added again at the same place.
 */
function sameText(delta: readonly DiffDeltaOp[]): DiffDeltaOp[] {
  const result: DiffDeltaOp[] = [];
  let run: DiffDeltaOp[] = [];
  const textOf = (type: "added" | "removed"): string =>
    run.map((op) => (markOf(op)?.type === type && typeof op.insert === "string" ? op.insert : "")).join("");
  const flush = (): void => {
    const unchanged =
      run.length > 1 &&
      run.every((op) => typeof op.insert === "string") &&
      textOf("added") === textOf("removed");
    if (!unchanged) result.push(...run);
    else {
      const text = textOf("added");
      const last = result.at(-1);
      // Joined to the unchanged text before it, as Yjs would have rendered it.
      if (last && !last.attributes && typeof last.insert === "string")
        result[result.length - 1] = { insert: last.insert + text };
      else result.push({ insert: text });
    }
    run = [];
  };
  for (const op of delta) {
    if (markOf(op)) {
      run.push(op);
      continue;
    }
    flush();
    const last = result.at(-1);
    if (
      last &&
      !last.attributes &&
      !op.attributes &&
      typeof last.insert === "string" &&
      typeof op.insert === "string"
    ) {
      result[result.length - 1] = { insert: last.insert + op.insert };
    } else result.push(op);
  }
  flush();
  return result;
}

function textChanges(delta: readonly DiffDeltaOp[], path: readonly number[]): DiffChange[] {
  const changes: DiffChange[] = [];
  let index = 0;
  for (const op of delta) {
    const text = typeof op.insert === "string" ? op.insert : JSON.stringify(op.insert);
    const mark = markOf(op);
    if (mark) changes.push({ type: mark.type, client: mark.client, index, text, path });
    if (mark?.type !== "removed") index += typeof op.insert === "string" ? op.insert.length : 1;
  }
  return changes;
}

interface Snapshots {
  readonly from: Y.Snapshot;
  readonly to: Y.Snapshot;
}

function xmlChanges(
  node: Y.XmlFragment | Y.XmlElement,
  path: readonly number[],
  snapshots: Snapshots,
  into: DiffChange[],
): void {
  let child = 0;
  for (let item = node._start; item; item = item.right) {
    const inFrom = visible(item, snapshots.from);
    const inTo = visible(item, snapshots.to);
    if (!inFrom && !inTo) continue;
    const content = item.content;
    if (!(content instanceof Y.ContentType)) continue;
    const childPath = [...path, child++];
    const type = content.type;
    if (inFrom !== inTo) {
      const text =
        type instanceof Y.XmlElement
          ? `<${type.nodeName}>`
          : xmlTextAt(type, inTo ? snapshots.to : snapshots.from);
      into.push({
        type: inTo ? "added" : "removed",
        client: item.id.client,
        index: 0,
        text,
        path: childPath,
      });
      continue;
    }
    if (type instanceof Y.XmlText) {
      const delta = sameText(type.toDelta(snapshots.to, snapshots.from, markChange) as DiffDeltaOp[]);
      into.push(...textChanges(delta, childPath));
    } else if (type instanceof Y.XmlElement) {
      xmlChanges(type, childPath, snapshots, into);
    }
  }
}

function xmlTextAt(type: Y.AbstractType<unknown>, snapshot: Y.Snapshot): string {
  if (!(type instanceof Y.XmlText)) return "";
  const delta = type.toDelta(snapshot) as DiffDeltaOp[];
  return delta.map((op) => (typeof op.insert === "string" ? op.insert : "")).join("");
}

function jsonAt(state: Uint8Array, name: string, kind: "map" | "array"): unknown {
  const doc = new Y.Doc();
  Y.applyUpdate(doc, state);
  const json = doc.share.has(name)
    ? kind === "map"
      ? doc.getMap(name).toJSON()
      : doc.getArray(name).toJSON()
    : null;
  doc.destroy();
  return json;
}
