import { ErrorCodes, OpStreamError, isOpStreamError } from "../errors.js";

/**
 * The node's cap on the documents it holds at once (`sessions.maxDocuments`):
 * owned sessions, relays and documents opening, as the router counts them.
 */
export class DocumentCap {
  private readonly max: number;

  /** `max`: 0 = no limit. */
  constructor(max = 0) {
    if (!Number.isSafeInteger(max) || max < 0) {
      throw new OpStreamError(
        ErrorCodes.INVALID_OPTION,
        `sessions.maxDocuments must be a whole number of documents (0 = no limit), got ${String(max)}.`,
        { option: "sessions.maxDocuments", value: max },
      );
    }
    this.max = max;
  }

  /** Whether a node holding `held` documents may open no other. */
  reached(held: number): boolean {
    return this.max > 0 && held >= this.max;
  }

  /** The error of a join refused because the cap is reached and no document can be given up. */
  refusal(docId: string): OpStreamError {
    return new OpStreamError(
      ErrorCodes.LIMIT_REACHED,
      `This node holds ${this.max} documents (sessions.maxDocuments), all in use; "${docId}" cannot be opened now. Retry later or on another node.`,
      { docId, limit: "node", maxDocuments: this.max },
    );
  }
}

/** The `opstream_joins_refused_total` reason of a join the router refused, if it was refused rather than failed. */
export function joinRefusal(error: unknown): "document-not-found" | "node-limit" | undefined {
  if (isOpStreamError(error, ErrorCodes.DOCUMENT_NOT_FOUND)) return "document-not-found";
  if (isOpStreamError(error, ErrorCodes.LIMIT_REACHED)) return "node-limit";
  return undefined;
}
