import type { IncomingMessage } from "node:http";
import { ErrorCodes, OpStreamError } from "../errors.js";

/**
 * The WebSocket subprotocol marking a token: a y-websocket client sends
 * `protocols: ["opstream", token]` and the server answers `opstream` (never the
 * token, which must be an RFC 7230 token: JWTs and base64url are).
 */
export const TOKEN_SUBPROTOCOL = "opstream";

/** The token of a y-websocket upgrade: from the subprotocol pair, else the `token` query parameter. */
export function upgradeToken(request: IncomingMessage): string | undefined {
  const offered = (request.headers["sec-websocket-protocol"] ?? "")
    .split(",")
    .map((protocol) => protocol.trim())
    .filter(Boolean);
  if (offered.includes(TOKEN_SUBPROTOCOL)) {
    const token = offered.find((protocol) => protocol !== TOKEN_SUBPROTOCOL);
    if (token) return token;
  }
  const query = new URL(request.url ?? "/", "http://localhost").searchParams.get("token");
  return query || undefined;
}

/**
 * The subprotocol the server answers (ws `handleProtocols`): the marker, or none.
 * Never another offered one, which could be a token echoed back into logs.
 */
export function selectProtocol(offered: Set<string>): string | false {
  return offered.has(TOKEN_SUBPROTOCOL) ? TOKEN_SUBPROTOCOL : false;
}

/** Why a y-websocket upgrade URL names no document (`opstream_upgrades_refused_total{reason}`). */
export type PathRefusal = "not-found" | "no-document" | "name-too-long";

/**
 * The document named by a y-websocket upgrade URL: the path after `prefix`,
 * percent-decoded, at most `maxDocumentNameLength` characters (as the Hocuspocus
 * dialect counts them); else why not: outside the prefix or malformed
 * percent-encoding (`not-found`), nothing after the prefix, or too long.
 */
export function documentPath(
  url: string,
  prefix: string,
  maxDocumentNameLength: number,
): { name: string } | { refusal: PathRefusal } {
  const pathname = new URL(url, "http://localhost").pathname;
  if (!pathname.startsWith(prefix)) return { refusal: "not-found" };
  let name: string;
  try {
    name = decodeURIComponent(pathname.slice(prefix.length));
  } catch {
    return { refusal: "not-found" }; // malformed percent-encoding: like any unknown path
  }
  if (name === "") return { refusal: "no-document" };
  if (name.length > maxDocumentNameLength) return { refusal: "name-too-long" };
  return { name };
}

/**
 * Checks the Origin header of upgrades against `allowedOrigins` (`"*"` allows
 * all). Browsers always send it, so this stops other sites' pages from opening
 * sockets with a user's cookies (cross-site WebSocket hijacking); a request
 * without Origin is not from a browser and passes (its sender could forge any).
 */
export class OriginCheck {
  private readonly allowed: ReadonlySet<string> | undefined;

  constructor(allowedOrigins: readonly string[]) {
    this.allowed = allowedOrigins.includes("*")
      ? undefined
      : new Set(allowedOrigins.map((origin) => normalizeOrigin(origin, true)));
  }

  /** Whether every origin is allowed (logged as unsafe at startup). */
  get allowsAll(): boolean {
    return this.allowed === undefined;
  }

  allows(request: IncomingMessage): boolean {
    const origin = request.headers.origin;
    if (this.allowed === undefined || origin === undefined) return true;
    return this.allowed.has(normalizeOrigin(origin, false));
  }
}

/** `scheme://host[:port]` lowercased, default port dropped; `"null"` (opaque origins) stays as it is. */
function normalizeOrigin(origin: string, configured: boolean): string {
  if (origin === "null") return origin;
  try {
    return new URL(origin).origin.toLowerCase();
  } catch {
    if (!configured) return origin;
    throw new OpStreamError(
      ErrorCodes.INVALID_OPTION,
      `transport.allowedOrigins: "${origin}" is not an origin like "https://app.example.com" (or "*").`,
      { option: "transport.allowedOrigins", value: origin },
    );
  }
}
