import { ErrorCodes, OpStreamError } from "../errors.js";

/** A request to a node gone from the backplane: nothing listens on its channel. */
export function nodeGone(nodeId: string, type: string): OpStreamError {
  return new OpStreamError(
    ErrorCodes.NODE_GONE,
    `Node "${nodeId}" is not on the backplane (nothing listens on its channel): request "${type}" cannot be answered.`,
    { nodeId, type },
  );
}

/** A request the medium would not take (Redis unreachable): the target may be fine. */
export function unsent(nodeId: string, type: string, error: unknown): OpStreamError {
  return new OpStreamError(
    ErrorCodes.BACKPLANE_UNAVAILABLE,
    `Request "${type}" to node "${nodeId}" could not be sent: the backplane is unreachable.`,
    { nodeId, type, cause: error instanceof Error ? error.message : String(error) },
  );
}
