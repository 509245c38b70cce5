import { timingSafeEqual } from "node:crypto";
import { Router, type NextFunction, type Request, type Response } from "express";
import { ErrorCodes, OpStreamError } from "../errors.js";
import { assertDocumentName } from "../hosting/document-name.js";
import type { Logger } from "../logging/logger.js";
import type { OpStreamMetrics } from "../metrics.js";
import type { DocumentRouter } from "../router/document-router.js";
import { OwnerRequests } from "../router/rpc.js";
import { sharedTypesAsJson } from "../engine/shared-json.js";
import type { DocumentStore } from "../storage/document-store.js";
import type { DocumentHistory } from "../hosting/history.js";
import { addHistoryRoutes } from "./history-routes.js";
import { httpErrorHandler, routeNotFound, sendHttpError } from "./http-errors.js";

/**
 * Decides whether an HTTP request may use the management API (`/api/documents`).
 * The default denies everything: configure one with `useManagementAuthorization()`.
 */
export type ManagementAuthorizer = (request: Request) => boolean | Promise<boolean>;

/** The default management authorizer: nobody. */
export const denyAll: ManagementAuthorizer = () => false;

/**
 * A management authorizer accepting `Authorization: Bearer <token>` with this
 * exact token (compared in constant time).
 */
export function bearerToken(token: string): ManagementAuthorizer {
  if (token.length < 16) throw new TypeError("A management token needs at least 16 characters.");
  const expected = Buffer.from(token);
  return (request) => {
    const header = request.headers.authorization ?? "";
    const given = Buffer.from(header.startsWith("Bearer ") ? header.slice(7) : "");
    return given.length === expected.length && timingSafeEqual(given, expected);
  };
}

/** What the management API uses from the host. */
export interface ManagementSource {
  readonly store: DocumentStore;
  readonly router: DocumentRouter;
  readonly history: DocumentHistory;
  readonly authorize: ManagementAuthorizer;
  readonly logger: Logger;
  readonly metrics: OpStreamMetrics;
  /** `transport.maxDocumentNameLength`: longer names answer 400 before any storage work. */
  readonly maxDocumentNameLength: number;
}

/**
 * `/api/documents`: list, get (JSON of the shared types, or the Yjs binary state),
 * delete, compact now, and the document's history (`/api/documents/:id/versions…`,
 * see addHistoryRoutes). Works on any node: requests run on the document's owner.
 * Every route first asks the management authorizer (403 when it says no); every
 * error, an unknown route under `/api/documents` included, answers
 * `{ "error": { code, message } }` (see http-errors.ts).
 */
export function managementRouter(source: ManagementSource): Router {
  const router = Router();
  router.use("/api/documents", (req: Request, res: Response, next: NextFunction) => {
    // A synchronous throw of the authorizer is a rejection here, answered like one.
    Promise.resolve()
      .then(() => source.authorize(req))
      .then(
        (allowed) => {
          if (allowed) next();
          else
            sendHttpError(
              source,
              req,
              res,
              new OpStreamError(ErrorCodes.FORBIDDEN, "The management API needs authorization."),
            );
        },
        (error: unknown) => next(error),
      );
  });

  const route =
    (work: (req: Request, res: Response) => Promise<void>) =>
    (req: Request, res: Response, next: NextFunction): void => {
      work(req, res).catch(next);
    };

  const existing = async (req: Request): Promise<string> => {
    const docId = String(req.params.id);
    assertDocumentName(docId, source.maxDocumentNameLength);
    // Opening a document creates it: check first, so a GET never creates anything.
    if (!(await source.store.list()).includes(docId)) {
      throw new OpStreamError(ErrorCodes.DOCUMENT_NOT_FOUND, `No document "${docId}".`, { docId });
    }
    return docId;
  };

  router.get(
    "/api/documents",
    route(async (_req, res) => {
      res.json({ documents: await source.store.list() });
    }),
  );

  router.get(
    "/api/documents/:id",
    route(async (req, res) => {
      const docId = await existing(req);
      const { seq, bytes } = await source.router.manage(docId, OwnerRequests.STATE);
      if (
        req.query.format === "yjs" ||
        req.accepts(["application/json", "application/octet-stream"]) === "application/octet-stream"
      ) {
        res.type("application/octet-stream").set("x-opstream-seq", String(seq)).send(Buffer.from(bytes));
        return;
      }
      res.json({ id: docId, seq, content: sharedTypesAsJson(bytes) });
    }),
  );

  router.delete(
    "/api/documents/:id",
    route(async (req, res) => {
      const docId = await existing(req);
      await source.router.manage(docId, OwnerRequests.DELETE);
      res.status(204).end();
    }),
  );

  router.post(
    "/api/documents/:id/compact",
    route(async (req, res) => {
      const docId = await existing(req);
      const { seq } = await source.router.manage(docId, OwnerRequests.COMPACT);
      res.json({ id: docId, snapshotSeq: seq });
    }),
  );
  addHistoryRoutes(router, "/api/documents/:id", source.history, (req) => {
    const docId = String(req.params.id);
    assertDocumentName(docId, source.maxDocumentNameLength);
    return Promise.resolve(docId);
  });
  router.use("/api/documents", routeNotFound(source));
  // Errors of these routes (a path parameter express cannot decode, a failed
  // request to the owner) are answered here, so an embedder's app needs no handler.
  router.use(httpErrorHandler(source));
  return router;
}
