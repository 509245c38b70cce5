import type { IncomingMessage } from "node:http";
import type { SessionPeer } from "../engine/peer.js";
import type { DocumentHandle } from "../router/document-handle.js";
import type { DocumentRouter } from "../router/document-router.js";

/**
 * Decides which tenant an upgrade request belongs to (from its host name, a
 * header, a verified token…). `undefined` (or a throw) refuses the connection
 * with 401. Tenant ids are 1–64 of `A–Z a–z 0–9 _ . -`.
 */
export type TenantResolver = (request: IncomingMessage) => string | undefined | Promise<string | undefined>;

/** Valid tenant ids: no "/", so `<tenant>/<name>` can never be read two ways. */
export const TENANT_ID = /^[A-Za-z0-9_.-]{1,64}$/;

/** How a connection joins a document. */
export interface ConnectionJoinOptions {
  /** Whether the grant lets the connection create the document: only writers do (`JoinOptions.create`). */
  readonly create: boolean;
  /** Whom the grant is for (`AccessGrant.principal`), counted by `maxDocumentsPerPrincipal`; the client address when absent. */
  readonly principal?: string | undefined;
}

/** What a connection uses of the router: joining documents (saying whether it may create them) and broadcasting to them. */
export interface DocumentJoiner {
  join(docId: string, peer: SessionPeer, options: ConnectionJoinOptions): Promise<DocumentHandle>;
  broadcastStateless: DocumentRouter["broadcastStateless"];
}

/** The id a tenant's document has in storage, channels and leases. */
export function tenantDocId(tenant: string, name: string): string {
  return `${tenant}/${name}`;
}

/**
 * The router as one tenant's connection sees it: every document name it uses is
 * namespaced under the tenant, so it can never reach another tenant's document.
 */
export function tenantScoped(router: DocumentRouter, tenant: string): DocumentJoiner {
  return {
    join: (docId, peer, options) => router.join(tenantDocId(tenant, docId), peer, options),
    broadcastStateless: (docId, payload) => router.broadcastStateless(tenantDocId(tenant, docId), payload),
  };
}
