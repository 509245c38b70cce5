import { ErrorCodes, OpStreamError } from "../errors.js";

/**
 * Throws INVALID_DOCUMENT_NAME when `docId` is longer than `maxLength`
 * (`transport.maxDocumentNameLength`), counted in UTF-16 code units like the
 * transport counts it. The name itself is not repeated in the error: it is
 * caller input of any size.
 */
export function assertDocumentName(docId: string, maxLength: number): void {
  if (docId.length <= maxLength) return;
  throw new OpStreamError(
    ErrorCodes.INVALID_DOCUMENT_NAME,
    `A document name may have at most ${maxLength} characters (transport.maxDocumentNameLength); got ${docId.length}.`,
    { maxDocumentNameLength: maxLength, length: docId.length },
  );
}
