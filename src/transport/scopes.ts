import { ErrorCodes, OpStreamError } from "../errors.js";
import type { Access } from "./authorization.js";
import { TENANT_ID } from "./tenancy.js";

// The scope grammar of the built-in JWT authorizer:
//
//   scope    = ("opstream.read:" | "opstream.write:") resource
//   resource = [tenant "/"] ("*" | name)
//   tenant   = 1*64( A–Z a–z 0–9 _ . - )                      (TENANT_ID)
//   name     = 1*( A–Z a–z 0–9 _ . - | "%" HEXDIG HEXDIG )     (upper-case hex)
//
// `name` is the document name's UTF-8 bytes, each byte outside `A–Z a–z 0–9 _ . -`
// written %XX. So neither a tenant nor a name contains "/", "*", ":" or a space:
// the first "/" (if any) ends the tenant, "*" alone is the wildcard, and a scope
// list can be split on spaces. Every (right, tenant, document) has exactly one
// scope, and a scope is matched by string equality with the one built for the
// request: a scope that is not canonical (lower-case hex, an escaped "a", a stray
// character) grants nothing instead of being guessed at.
//
// The prefixes are new on purpose: no scope of the 0.x grammar (`opstream:<name>`,
// `opstream:<name>:read`) starts with them, so during an upgrade an old token never
// means something else to a new server, nor a new token to an old one.

/** The access a scope grants: `readonly` (`opstream.read:`) or `read-write` (`opstream.write:`, which implies read). */
export type ScopeAccess = Exclude<Access, "deny">;

const PREFIXES: Readonly<Record<ScopeAccess, string>> = Object.freeze({
  readonly: "opstream.read:",
  "read-write": "opstream.write:",
});

/** A UTF-16 surrogate without its pair: such a name has no UTF-8 encoding, so no scope. */
const LONE_SURROGATE = /\p{Cs}/u;

/** What {@link documentScope} builds a scope for: one document, or every document (of a tenant). */
export type DocumentScopeOptions = {
  /** `readonly` or `read-write`. */
  readonly access: ScopeAccess;
  /**
   * The tenant the document belongs to, for a server with `useTenantResolver`;
   * a scope without a tenant grants nothing on a tenant's document, and one with
   * a tenant nothing on a server without a resolver. @default none
   */
  readonly tenant?: string | undefined;
} & (
  | { readonly docId: string; readonly allDocuments?: undefined }
  | { readonly allDocuments: true; readonly docId?: undefined }
);

/**
 * The scope granting `access` on one document (`docId`, the tenant's own name),
 * or on every document with `allDocuments: true`, for a token's `scope` claim
 * (join several with spaces). Build scopes with it rather than by hand: the
 * document name is encoded so that no name can be read as another scope.
 * Throws INVALID_OPTION for an invalid tenant id, an empty or ill-formed name.
 *
 * @example documentScope({ access: "readonly", tenant: "acme", docId: "q3 plan" }) // "opstream.read:acme/q3%20plan"
 */
export function documentScope(options: DocumentScopeOptions): string {
  const prefix = Object.hasOwn(PREFIXES, options.access) ? PREFIXES[options.access] : undefined;
  if (prefix === undefined)
    throw invalid("access", options.access, 'access must be "readonly" or "read-write"');
  if (options.tenant !== undefined && !TENANT_ID.test(options.tenant)) {
    throw invalid("tenant", options.tenant, "a tenant id is 1-64 of A-Z a-z 0-9 _ . -");
  }
  if ((options.allDocuments === true) === (options.docId !== undefined)) {
    throw invalid("docId", options.docId, "give exactly one of docId and allDocuments: true");
  }
  const name = options.allDocuments === true ? "*" : encodeDocumentName(options.docId ?? "");
  if (name === undefined)
    throw invalid("docId", options.docId, "a document name is a non-empty well-formed string");
  return `${prefix}${options.tenant === undefined ? "" : `${options.tenant}/`}${name}`;
}

/**
 * The access `scopes` grant on document `docId` of `tenant` (none without a tenant
 * resolver): the stronger of a write and a read scope for the document or for
 * `*`, of that tenant only. Scopes of other grammars or not canonical grant nothing.
 */
export function accessFromScopes(scopes: Iterable<string>, docId: string, tenant?: string): Access {
  const name = encodeDocumentName(docId);
  if (name === undefined || (tenant !== undefined && !TENANT_ID.test(tenant))) return "deny";
  const base = tenant === undefined ? "" : `${tenant}/`;
  const resources = [`${base}*`, `${base}${name}`];
  const held = new Set(scopes);
  const grants = (access: ScopeAccess): boolean =>
    resources.some((resource) => held.has(`${PREFIXES[access]}${resource}`));
  if (grants("read-write")) return "read-write";
  return grants("readonly") ? "readonly" : "deny";
}

/** A document name as a scope writes it; undefined for a name no scope can name (empty, lone surrogates). */
function encodeDocumentName(docId: string): string | undefined {
  if (docId === "" || LONE_SURROGATE.test(docId)) return undefined;
  // encodeURIComponent writes every other UTF-8 byte as upper-case %XX but keeps
  // these five (and "*", the wildcard), which the grammar escapes too.
  return encodeURIComponent(docId).replace(
    /[!'()*~]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

function invalid(option: string, value: unknown, why: string): OpStreamError {
  return new OpStreamError(ErrorCodes.INVALID_OPTION, `documentScope: ${why}.`, { option, value });
}
