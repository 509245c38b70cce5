/**
 * One catalogue of error codes. Codes are stable: match on `error.code`, never on
 * the message text. Every code is documented in docs/errors.md, and a
 * spec checks that the two lists agree.
 */
export const ErrorCodes = {
  /** A `use*()`/`add*()` call was made after `build()`. */
  BUILDER_SEALED: "OPS_ERR_BUILDER_SEALED",
  /** `build()` found no registration for a required service. */
  MISSING_DEPENDENCY: "OPS_ERR_MISSING_DEPENDENCY",
  /** An option had a value outside its documented range. */
  INVALID_OPTION: "OPS_ERR_INVALID_OPTION",
  /** A write carried an epoch older than the document's current epoch. */
  FENCED: "OPS_ERR_FENCED",
  /** The document store failed or could not be reached. */
  STORAGE_UNAVAILABLE: "OPS_ERR_STORAGE_UNAVAILABLE",
  /** A validator rejected an update. */
  UPDATE_REJECTED: "OPS_ERR_UPDATE_REJECTED",
  /** An update could not be decoded or applied by Yjs. */
  INVALID_UPDATE: "OPS_ERR_INVALID_UPDATE",
  /** A frame could not be decoded by the dialect. */
  INVALID_FRAME: "OPS_ERR_INVALID_FRAME",
  /** The document session was closed (unloaded, stepped down or shut down). */
  SESSION_CLOSED: "OPS_ERR_SESSION_CLOSED",
  /** This node does not own the document (retry after re-resolving the owner). */
  NOT_OWNER: "OPS_ERR_NOT_OWNER",
  /** A backplane request was not answered within its timeout. */
  REQUEST_TIMEOUT: "OPS_ERR_REQUEST_TIMEOUT",
  /** No handler is registered for a backplane request type. */
  NO_HANDLER: "OPS_ERR_NO_HANDLER",
  /**
   * A backplane request's target node has left the backplane: nobody listens on its
   * channel (its process ended, or its connection to Redis closed). Relays take it
   * as the owner being gone and take over or follow its successor.
   */
  NODE_GONE: "OPS_ERR_NODE_GONE",
  /**
   * A backplane request could not be sent: the medium (Redis) is unreachable. The
   * target may be fine; relays wait for the medium and try the same owner again.
   */
  BACKPLANE_UNAVAILABLE: "OPS_ERR_BACKPLANE_UNAVAILABLE",
  /** The management API refused the request (no or wrong authorization). */
  FORBIDDEN: "OPS_ERR_FORBIDDEN",
  /** The management API was asked about a document that does not exist. */
  DOCUMENT_NOT_FOUND: "OPS_ERR_DOCUMENT_NOT_FOUND",
  /** A document history request named a version the document does not have (HTTP 404). */
  VERSION_NOT_FOUND: "OPS_ERR_VERSION_NOT_FOUND",
  /** A document history request reached a node configured with `history: false` (HTTP 404). */
  HISTORY_DISABLED: "OPS_ERR_HISTORY_DISABLED",
  /** The host is shutting down and accepts no new work. */
  SHUTTING_DOWN: "OPS_ERR_SHUTTING_DOWN",
  /** A document name is longer than `transport.maxDocumentNameLength`. */
  INVALID_DOCUMENT_NAME: "OPS_ERR_INVALID_DOCUMENT_NAME",
  /** An HTTP request could not be read: a malformed URL escape, an unparsable or oversized body (HTTP 4xx). */
  BAD_REQUEST: "OPS_ERR_BAD_REQUEST",
  /** No HTTP route answers this method and path (HTTP 404). */
  ROUTE_NOT_FOUND: "OPS_ERR_ROUTE_NOT_FOUND",
  /** An unexpected failure while answering an HTTP request (HTTP 500; the log has the cause). */
  INTERNAL: "OPS_ERR_INTERNAL",
  /** A per-socket, per-principal or per-node limit on open documents was reached. */
  LIMIT_REACHED: "OPS_ERR_LIMIT_REACHED",
  /** Updates waiting for missing dependencies passed the session's pending budget. */
  PENDING_BUDGET_EXCEEDED: "OPS_ERR_PENDING_BUDGET_EXCEEDED",
  /** `opstream import` could not read its source: no such file or folder, not a database, no such table or columns. */
  INVALID_IMPORT_SOURCE: "OPS_ERR_INVALID_IMPORT_SOURCE",
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** The one error class opstream throws. `code` is stable; `details` says what to fix. */
export class OpStreamError extends Error {
  override readonly name = "OpStreamError";
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
    this.details = Object.freeze({ ...details });
  }
}

/** True when `error` is an OpStreamError with the given code. */
export function isOpStreamError(error: unknown, code?: ErrorCode): error is OpStreamError {
  return error instanceof OpStreamError && (code === undefined || error.code === code);
}
