import { isOpStreamError } from "../errors.js";
import type { StatelessHandler } from "../transport/hocuspocus/stateless.js";
import { tenantDocId } from "../transport/tenancy.js";
import type { DocumentHistory } from "./history.js";

/** The `type` of the stateless message that asks for a named version. */
export const VERSION_MESSAGE = "opstream.version";

/**
 * Saves a named version when a Hocuspocus client with read-write access sends
 * `provider.sendStateless(JSON.stringify({ type: "opstream.version", name }))`.
 * The sender alone gets the answer: `{ type: "opstream.version.saved", version }`,
 * or `{ type: "opstream.version.failed", code, message }` (a read-only sender
 * gets OPS_ERR_FORBIDDEN). Other messages pass on to the next handler untouched.
 */
export function historyStatelessHandler(history: DocumentHistory): StatelessHandler {
  return async (request) => {
    let message: unknown;
    try {
      message = JSON.parse(request.payload);
    } catch {
      return; // not ours
    }
    if (
      typeof message !== "object" ||
      message === null ||
      (message as { type?: unknown }).type !== VERSION_MESSAGE
    ) {
      return;
    }
    const failed = (code: string, text: string) =>
      request.reply(JSON.stringify({ type: `${VERSION_MESSAGE}.failed`, code, message: text }));
    if (request.access !== "read-write") {
      failed("OPS_ERR_FORBIDDEN", "Saving a version needs write access.");
      return;
    }
    const name = (message as { name?: unknown }).name;
    const docId = request.tenant === undefined ? request.docId : tenantDocId(request.tenant, request.docId);
    try {
      const version = await history.create(docId, typeof name === "string" ? name : "");
      request.reply(JSON.stringify({ type: `${VERSION_MESSAGE}.saved`, version }));
    } catch (error) {
      if (isOpStreamError(error) && error.code !== "OPS_ERR_INTERNAL") failed(error.code, error.message);
      else failed("OPS_ERR_INTERNAL", "The version could not be saved.");
      if (!isOpStreamError(error)) throw error;
    }
  };
}
