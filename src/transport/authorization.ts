import type { IncomingMessage } from "node:http";

/** What a connection may do with a document. */
export type Access = "deny" | "readonly" | "read-write";

/** What an authorizer is told, before the WebSocket upgrade completes. */
export interface AuthorizationRequest {
  /** The requested document. */
  readonly docId: string;
  /** The upgrade request (headers, cookies, remote address). */
  readonly request: IncomingMessage;
  /** The `token` query parameter, if any. */
  readonly token: string | undefined;
}

/**
 * Decides per connection and document. Runs once, before the upgrade and before
 * the document loads; `"deny"` answers the upgrade with HTTP 403.
 */
export type Authorizer = (request: AuthorizationRequest) => Access | Promise<Access>;

/** The default: everyone may read and write every document (logged as unsafe at startup). */
export const allowAll: Authorizer = () => "read-write";
