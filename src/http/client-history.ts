import { Router, type Request } from "express";
import { ErrorCodes, OpStreamError } from "../errors.js";
import { assertDocumentName } from "../hosting/document-name.js";
import type { DocumentHistory } from "../hosting/history.js";
import type { Logger } from "../logging/logger.js";
import type { OpStreamMetrics } from "../metrics.js";
import { toGrant, type Authorizer } from "../transport/authorization.js";
import { TENANT_ID, tenantDocId, type TenantResolver } from "../transport/tenancy.js";
import { addHistoryRoutes } from "./history-routes.js";
import { httpErrorHandler, routeNotFound } from "./http-errors.js";

/** What the clients' history endpoint uses from the host. */
export interface ClientHistorySource {
  readonly history: DocumentHistory;
  /** The same authorizer WebSocket connections get. */
  readonly authorizer: Authorizer;
  readonly tenantResolver: TenantResolver | undefined;
  readonly logger: Logger;
  readonly metrics: OpStreamMetrics;
  readonly maxDocumentNameLength: number;
}

/**
 * `/api/history/:name`: the history routes (see addHistoryRoutes) for editors,
 * decided by the WebSocket authorizer instead of the management one. A request
 * names the document as its clients do (a tenant's own name when a tenant
 * resolver is set) and carries the token as `Authorization: Bearer <token>` or
 * `?token=`. Reading versions and diffs needs read access; saving a named
 * version and restoring need read-write. A denial answers 403 FORBIDDEN.
 */
export function clientHistoryRouter(source: ClientHistorySource): Router {
  const router = Router();
  addHistoryRoutes(router, "/api/history/:name", source.history, async (req, need) => {
    const name = String(req.params.name);
    assertDocumentName(name, source.maxDocumentNameLength);
    let tenant: string | undefined;
    if (source.tenantResolver) {
      tenant = await Promise.resolve()
        .then(() => source.tenantResolver!(req))
        .catch(() => undefined);
      if (tenant === undefined || !TENANT_ID.test(tenant)) throw forbidden("No tenant for this request.");
    }
    const grant = toGrant(
      await source.authorizer({ docId: name, request: req, token: tokenOf(req), tenant }),
    );
    if (grant.access === "deny" || (need === "write" && grant.access !== "read-write")) {
      throw forbidden(need === "write" ? "Saving and restoring versions need write access." : "No access.");
    }
    return tenant === undefined ? name : tenantDocId(tenant, name);
  });
  router.use("/api/history", routeNotFound(source));
  router.use(httpErrorHandler(source));
  return router;
}

function tokenOf(req: Request): string | undefined {
  const header = req.headers.authorization;
  if (header?.startsWith("Bearer ")) return header.slice(7) || undefined;
  const query = req.query.token;
  return typeof query === "string" && query !== "" ? query : undefined;
}

function forbidden(message: string): OpStreamError {
  return new OpStreamError(ErrorCodes.FORBIDDEN, message);
}
