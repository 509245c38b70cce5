import type { IncomingMessage } from "node:http";
import type { Logger } from "../../logging/logger.js";

/**
 * A stateless message from a Hocuspocus client (`provider.sendStateless(payload)`),
 * as a handler registered with `addStatelessHandler()` sees it. It runs on the node
 * the client is connected to.
 */
export interface StatelessRequest {
  /** The document the message was sent on. */
  readonly docId: string;
  /** The client's string, as sent. */
  readonly payload: string;
  /**
   * The sender's tenant, when a tenant resolver is configured: the document's
   * full id is then `<tenant>/<docId>`. @default undefined
   */
  readonly tenant?: string | undefined;
  /** The sender's access to the document (`readonly` senders get here too). */
  readonly access: "readonly" | "read-write";
  /** The token of the sender's latest Auth message for this document (none: undefined). */
  readonly token: string | undefined;
  /** The sender's WebSocket upgrade request (headers, cookies, remote address). */
  readonly request: IncomingMessage;
  /** Sends a stateless message to the sender only (ignored once it left the document). */
  reply(payload: string): void;
  /**
   * Sends a stateless message to every Hocuspocus client of the document, on every
   * node, the sender included. Resolves once the document's owner has sent it.
   * y-websocket clients never receive stateless messages.
   */
  broadcast(payload: string): Promise<void>;
}

/** Handles stateless messages; registered with `addStatelessHandler()`. */
export type StatelessHandler = (request: StatelessRequest) => void | Promise<void>;

/**
 * Runs the handlers in registration order. A handler that throws is logged with
 * the document and peer, and the handlers after it are skipped (as a hook chain).
 */
export async function runStatelessHandlers(
  handlers: readonly StatelessHandler[],
  request: StatelessRequest,
  logger: Logger,
  peerId: string,
): Promise<void> {
  for (const handler of handlers) {
    try {
      await handler(request);
    } catch (error) {
      logger.warn({ err: error, docId: request.docId, peerId }, "stateless handler failed");
      return;
    }
  }
}
