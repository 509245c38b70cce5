import * as Y from "yjs";
import type { DocumentStore, StoredDocument } from "../storage/document-store.js";
import { STORAGE_ORIGIN } from "./origin.js";
import { restoreDocument } from "./session-state.js";

/** The seq of the last op `stored` holds (its snapshot's when no op follows it; 0 when empty). */
function latestSeq(stored: StoredDocument): number {
  return stored.ops.at(-1)?.seq ?? stored.snapshot?.seq ?? 0;
}

/**
 * A document read from storage and restored ahead of a takeover, while its owner
 * still serves it (the graceful handoff: PROTOCOL.md, "The successor"). No lease is held
 * and nothing is claimed: the successor only moves the loading and the Yjs restore
 * out of the gap between the old owner's last op and its own first. When it takes
 * the document over, it loads storage again under its new epoch and brings this
 * copy up to it ({@link catchUp}): usually a few ops.
 */
export class PreparedDocument {
  private constructor(
    readonly docId: string,
    private doc: Y.Doc | undefined,
    /** The seq of the last op the copy holds. */
    readonly seq: number,
    /** The epoch of the owner that serves the document while the copy is loaded. */
    readonly epoch: number,
  ) {}

  /** Reads and restores `docId` as storage holds it now, while the owner of `epoch` serves it. */
  static async load(docId: string, store: DocumentStore, epoch: number): Promise<PreparedDocument> {
    const stored = await store.load(docId);
    return new PreparedDocument(docId, restoreDocument(docId, stored), latestSeq(stored), epoch);
  }

  /**
   * Hands the copy over, with what `stored` (loaded under the new epoch) holds
   * beyond it applied, or undefined when it cannot be brought up to it: taken
   * already, or storage holds something the owner of {@link epoch} did not write
   * after the copy (the document was deleted, re-created or restored meanwhile),
   * in which case the caller restores from `stored` itself. Yjs updates are
   * idempotent, so a snapshot newer than the copy (a compaction ran meanwhile and
   * trimmed the ops it covers) is applied whole.
   */
  catchUp(stored: StoredDocument): Y.Doc | undefined {
    const doc = this.doc;
    this.doc = undefined;
    if (!doc) return undefined;
    const newer = stored.ops.filter((op) => op.seq > this.seq);
    const snapshot = stored.snapshot && stored.snapshot.seq > this.seq ? stored.snapshot : null;
    const sameOwner =
      latestSeq(stored) >= this.seq &&
      (snapshot === null || snapshot.epoch === this.epoch) &&
      newer.every((op) => op.epoch === this.epoch);
    if (!sameOwner) {
      doc.destroy();
      return undefined;
    }
    Y.transact(
      doc,
      () => {
        if (snapshot) Y.applyUpdate(doc, snapshot.state, STORAGE_ORIGIN);
        for (const op of newer) Y.applyUpdate(doc, op.update, STORAGE_ORIGIN);
      },
      STORAGE_ORIGIN,
    );
    return doc;
  }

  /** Frees the copy when it was not used. */
  discard(): void {
    this.doc?.destroy();
    this.doc = undefined;
  }
}
