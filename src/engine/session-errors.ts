import { ErrorCodes, OpStreamError, isOpStreamError } from "../errors.js";

/** The code of an error for metrics labels (`unknown` when it has none). */
export function codeOf(error: unknown): string {
  return isOpStreamError(error) ? error.code : "unknown";
}

export function rejection(error: unknown, docId: string): OpStreamError {
  if (isOpStreamError(error)) return error;
  return new OpStreamError(
    ErrorCodes.UPDATE_REJECTED,
    `A validator rejected an update to "${docId}": ${String(error)}`,
    { docId },
    error,
  );
}

export function invalidUpdate(error: unknown, docId: string): OpStreamError {
  return new OpStreamError(
    ErrorCodes.INVALID_UPDATE,
    `Yjs could not apply an update to "${docId}": ${String(error)}`,
    { docId },
    error,
  );
}
