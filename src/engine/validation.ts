import type * as Y from "yjs";
import type { Origin } from "./origin.js";

/** What a validator is told about an incoming update. */
export interface UpdateContext {
  readonly docId: string;
  readonly origin: Origin;
}

/**
 * Inspects an incoming update before it is applied; throw (or reject) to refuse
 * it. The session turns a throw into `OpStreamError(UPDATE_REJECTED)` and the
 * transport closes the sender; the document and other clients carry on.
 */
export type Validator = (update: Uint8Array, context: UpdateContext) => void | Promise<void>;

/** Fills a brand-new document (no snapshot, no ops) before anyone sees it. */
export type Seeder = (context: { readonly docId: string; readonly doc: Y.Doc }) => void | Promise<void>;
