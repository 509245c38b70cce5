import type * as Y from "yjs";
import { ErrorCodes, OpStreamError } from "../errors.js";

/** The default of `sessions.maxPendingBytes`: 4 MiB per document. */
export const DEFAULT_MAX_PENDING_BYTES = 4 * 1024 * 1024;

/**
 * Bytes Yjs holds back in `doc` for missing dependencies: structs whose earlier
 * clocks never arrived (`pendingStructs`) and deletions of items it does not have
 * yet (`pendingDs`), both kept as encoded updates.
 */
export function pendingBytes(doc: Y.Doc): number {
  const { pendingStructs, pendingDs } = doc.store;
  return (pendingStructs?.update.byteLength ?? 0) + (pendingDs?.byteLength ?? 0);
}

/**
 * Applies `sessions.maxPendingBytes` to one document: called after each
 * `Y.applyUpdate`, so the update that passes the budget is the one refused.
 */
export class PendingBudget {
  constructor(
    private readonly doc: Y.Doc,
    private readonly maxBytes: number,
  ) {}

  /**
   * Past the budget, drops every pending update of the document and returns the
   * error for the update that passed it; undefined within the budget.
   *
   * Dropping is safe: pending content was never integrated, so it is in no op
   * (nothing durable refers to it) and was never fanned out as one; and the
   * clients that sent it still hold it, so each one's next sync (a reconnect, or
   * a sync step 1) sends it again with whatever it depends on. The sender of the
   * update that passed the budget is closed, so it does that at once.
   */
  enforce(docId: string): OpStreamError | undefined {
    const bytes = pendingBytes(this.doc);
    if (bytes <= this.maxBytes) return undefined;
    this.doc.store.pendingStructs = null;
    this.doc.store.pendingDs = null;
    return new OpStreamError(
      ErrorCodes.PENDING_BUDGET_EXCEEDED,
      `Updates to "${docId}" waiting for missing dependencies reached ${bytes} bytes, past sessions.maxPendingBytes (${this.maxBytes}): the sender's updates depend on changes this server never received. They were dropped; the sender is closed and resends them with their dependencies when it syncs again.`,
      { docId, pendingBytes: bytes, maxPendingBytes: this.maxBytes },
    );
  }
}
