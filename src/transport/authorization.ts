import type { IncomingMessage } from "node:http";

/** What a connection may do with a document. */
export type Access = "deny" | "readonly" | "read-write";

/** Why a connection was denied: no or bad credentials (HTTP 401), or credentials without the right (403). */
export type DenialReason = "unauthenticated" | "forbidden";

/** An access decision with an optional end, as the built-in {@link jwtAuthorizer} returns it. */
export interface AccessGrant {
  readonly access: Access;
  /**
   * When the grant ends, in ms since the epoch (a token's `exp`). A live connection
   * is closed then (y-websocket: the socket, close 4003; Hocuspocus: the socket,
   * unless the document was re-authorized meanwhile). @default never
   */
  readonly expiresAt?: number | undefined;
  /**
   * Why a `deny`: `unauthenticated` answers a y-websocket upgrade with 401 and a
   * Hocuspocus Auth with PermissionDenied `unauthenticated`; `forbidden` with 403 /
   * `permission-denied`. @default "forbidden"
   */
  readonly reason?: DenialReason | undefined;
  /**
   * Who the grant is for (a JWT's `sub`, a user id), so per-principal limits can
   * count one user's documents across sockets. @default the client address
   */
  readonly principal?: string | undefined;
}

/** What an authorizer is told: before the upgrade completes (y-websocket), or on a document's Auth message (Hocuspocus). */
export interface AuthorizationRequest {
  /** The requested document. */
  readonly docId: string;
  /** The upgrade request (headers, cookies, remote address). */
  readonly request: IncomingMessage;
  /**
   * y-websocket: the token of the WebSocket subprotocol (`["opstream", token]`),
   * else the `token` query parameter; Hocuspocus: the Auth message's token. An empty one is undefined.
   */
  readonly token: string | undefined;
  /** The connection's tenant, when a tenant resolver is configured (`docId` is then the tenant's own name). */
  readonly tenant?: string | undefined;
}

/**
 * Decides per connection and document, always before the document loads, and
 * only then: the decision holds for the connection (never re-run per message).
 * y-websocket: once, before the upgrade; a denial answers it with HTTP 401 or 403.
 * Hocuspocus: on each document's Auth message, and again on every new token;
 * a denial answers PermissionDenied for that document only.
 * Return an {@link Access}, or an {@link AccessGrant} to add an expiry or a denial reason.
 */
export type Authorizer = (
  request: AuthorizationRequest,
) => Access | AccessGrant | Promise<Access | AccessGrant>;

/** The default: everyone may read and write every document (logged as unsafe at startup). */
export const allowAll: Authorizer = () => "read-write";

/** A grant as the transport keeps it: every field set but the principal. */
export type NormalizedGrant = Required<Omit<AccessGrant, "principal">> & Pick<AccessGrant, "principal">;

/** A grant normalized from either answer of an authorizer; a grant already expired is an unauthenticated denial. */
export function toGrant(answer: Access | AccessGrant, now = Date.now()): NormalizedGrant {
  const grant = typeof answer === "string" ? { access: answer } : answer;
  const expiresAt = grant.expiresAt ?? Number.POSITIVE_INFINITY;
  if (grant.access !== "deny" && expiresAt <= now) {
    return { access: "deny", expiresAt, reason: "unauthenticated", principal: grant.principal };
  }
  return { access: grant.access, expiresAt, reason: grant.reason ?? "forbidden", principal: grant.principal };
}

/** The longest delay `setTimeout` takes (about 24.8 days); longer ones fire at once. */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** The cancel function of an expiry that never comes: one for every such connection. */
const NEVER_EXPIRES = (): void => undefined;

/**
 * Calls `onExpiry` at `expiresAt` (ms since the epoch; never for Infinity), in
 * steps when it is further away than a timer can wait. Returns the cancel function.
 * For Infinity nothing is kept: not `onExpired`, no timer.
 */
export function onExpiry(expiresAt: number, onExpired: () => void): () => void {
  if (!Number.isFinite(expiresAt)) return NEVER_EXPIRES;
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    const delay = expiresAt - Date.now();
    if (delay <= 0) return onExpired();
    timer = setTimeout(arm, Math.min(delay, MAX_TIMEOUT_MS));
    timer.unref();
  };
  arm();
  return () => clearTimeout(timer);
}
