import * as Y from "yjs";
import type { StoredDocument } from "../storage/document-store.js";
import { STORAGE_ORIGIN } from "./origin.js";

/** The durable document as one update, and the seq of the last op it holds. */
export interface DocumentState {
  readonly seq: number;
  readonly bytes: Uint8Array;
}

/** What a peer of another node needs to attach: the durable (epoch, seq, state vector) and who is present. */
export interface JoinInfo {
  readonly epoch: number;
  readonly seq: number;
  readonly stateVector: Uint8Array;
  /** Every current awareness state as one update, or null. */
  readonly awareness: Uint8Array | null;
}

/**
 * What the management API does to a document: read its state, compact it now,
 * delete it, save a named version, or restore a version.
 */
export type ManagementAction = "state" | "compact" | "delete" | "version" | "restore";

/**
 * The document as storage holds it (latest snapshot + the ops after it), applied
 * with the storage origin: what is durable already is never stored again.
 */
export function restoreDocument(docId: string, stored: StoredDocument): Y.Doc {
  const doc = newDocument(docId);
  Y.transact(
    doc,
    () => {
      if (stored.snapshot) Y.applyUpdate(doc, stored.snapshot.state, STORAGE_ORIGIN);
      for (const op of stored.ops) Y.applyUpdate(doc, op.update, STORAGE_ORIGIN);
    },
    STORAGE_ORIGIN,
  );
  return doc;
}

/**
 * A server-side `Y.Doc` of `docId`. Its guid is the document's name: Yjs would
 * otherwise draw a random UUID, 31 calls to `crypto.getRandomValues` (~0.3 ms,
 * for every document a node opens or takes over). A root document's guid is never
 * sent or stored; its clientID stays random, as the seeder's and server-side edits need.
 */
export function newDocument(docId: string): Y.Doc {
  return new Y.Doc({ guid: docId });
}
