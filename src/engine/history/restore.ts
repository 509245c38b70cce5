import * as Y from "yjs";

const REVERT = Symbol("opstream.history.revert");

/**
 * The update that brings a document whose full state is `current` back to the
 * content of `target` (a version's state), as ordinary new Yjs operations:
 * nothing is rewritten. It deletes what was inserted since the version and
 * inserts again what was deleted since (Yjs deletions are final, so content comes
 * back as new items written by a fresh client id). Concurrent edits made after
 * `current` merge with it like other concurrent edits.
 *
 * It is computed on a scratch copy of the version (Yjs's UndoManager undoes the
 * changes made since it), never on the live document. Returns null when there is
 * nothing to change.
 */
export function revertUpdate(current: Uint8Array, target: Uint8Array): Uint8Array | null {
  const scratch = new Y.Doc({ gc: false });
  try {
    Y.applyUpdate(scratch, target);
    // The whole document is the UndoManager's scope: a root created after the
    // version is emptied too, whatever its type (Yjs does not record root types).
    const undo = new Y.UndoManager(scratch, { trackedOrigins: new Set([REVERT]), captureTimeout: 0 });
    const changes: Uint8Array[] = [];
    try {
      Y.applyUpdate(scratch, Y.diffUpdate(current, Y.encodeStateVector(scratch)), REVERT);
      // Yjs emits "update" only for a transaction that changed something, with
      // exactly that change: the undo's deletions and re-insertions.
      scratch.on("update", (update: Uint8Array) => changes.push(update));
      undo.undo();
    } finally {
      undo.destroy();
    }
    return changes.length === 0 ? null : Y.mergeUpdates(changes);
  } finally {
    scratch.destroy();
  }
}
