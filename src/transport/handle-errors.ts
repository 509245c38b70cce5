import { ErrorCodes, isOpStreamError } from "../errors.js";
import { CloseCodes, type CloseCode } from "./close-codes.js";

/** How a dialect closes a socket after a failed handle call. */
export interface HandleErrorClose {
  readonly code: CloseCode;
  readonly reason: string;
  /** Set when the client's input was at fault (counted in `opstream_bad_frames_total`). */
  readonly badInput: string | undefined;
}

/**
 * The close for an error of a document handle call, the same in every dialect: a
 * validator's refusal is a policy violation (1008), an update that passed the
 * document's pending budget closes its sender (4009), input Yjs cannot take (or
 * an uncoded bug) is an invalid frame (1007), and anything else (session closed,
 * fenced, storage failing, owner gone) is retryable (1013).
 */
export function closeForHandleError(error: unknown, badInputReason = "invalid-update"): HandleErrorClose {
  if (isOpStreamError(error, ErrorCodes.UPDATE_REJECTED)) {
    return { code: CloseCodes.POLICY_VIOLATION, reason: "update rejected", badInput: "rejected" };
  }
  if (isOpStreamError(error, ErrorCodes.PENDING_BUDGET_EXCEEDED)) {
    return {
      code: CloseCodes.PENDING_BUDGET_EXCEEDED,
      reason: "pending budget exceeded",
      badInput: "pending-budget",
    };
  }
  if (isOpStreamError(error, ErrorCodes.INVALID_UPDATE) || !isOpStreamError(error)) {
    return { code: CloseCodes.INVALID_FRAME, reason: "invalid update", badInput: badInputReason };
  }
  // The session disconnects its peers itself; this covers a request that raced with that.
  return { code: CloseCodes.TRY_AGAIN_LATER, reason: "document unavailable, retry", badInput: undefined };
}
