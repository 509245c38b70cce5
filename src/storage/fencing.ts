import { ErrorCodes, OpStreamError } from "../errors.js";

/** The error every store throws when a write names an epoch older than the current one. */
export function fencedError(docId: string, epoch: number, currentEpoch: number): OpStreamError {
  return new OpStreamError(
    ErrorCodes.FENCED,
    `Write to document "${docId}" with epoch ${epoch} was fenced: the current epoch is ${currentEpoch}. ` +
      `The writer is not the document's owner (another node claimed it) and must drop its session.`,
    { docId, epoch, currentEpoch },
  );
}

/** Throws FENCED unless `epoch` is the document's current epoch. */
export function assertEpoch(docId: string, epoch: number, currentEpoch: number): void {
  if (epoch !== currentEpoch) throw fencedError(docId, epoch, currentEpoch);
}
