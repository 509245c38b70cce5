import type { IncomingMessage } from "node:http";

/** What a connection may do with a document. */
export type Access = "deny" | "readonly" | "read-write";

/** What an authorizer is told: before the upgrade completes (y-websocket), or on a document's Auth message (Hocuspocus). */
export interface AuthorizationRequest {
  /** The requested document. */
  readonly docId: string;
  /** The upgrade request (headers, cookies, remote address). */
  readonly request: IncomingMessage;
  /** y-websocket: the `token` query parameter; Hocuspocus: the Auth message's token (an empty one is undefined). */
  readonly token: string | undefined;
}

/**
 * Decides per connection and document, always before the document loads.
 * y-websocket: once, before the upgrade; `"deny"` answers it with HTTP 403.
 * Hocuspocus: on each document's Auth message, and again on every new token;
 * `"deny"` answers PermissionDenied for that document only.
 */
export type Authorizer = (request: AuthorizationRequest) => Access | Promise<Access>;

/** The default: everyone may read and write every document (logged as unsafe at startup). */
export const allowAll: Authorizer = () => "read-write";
