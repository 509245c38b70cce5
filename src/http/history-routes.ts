import express, { type NextFunction, type Request, type Response, type Router } from "express";
import { ErrorCodes, OpStreamError } from "../errors.js";
import type { DocumentHistory, VersionRef } from "../hosting/history.js";

/** How a history route finds its document: the full id, checked for the access the route needs. */
export type HistoryDocumentOf = (req: Request, access: "read" | "write") => Promise<string>;

/**
 * Adds the document history routes under `base` (a path ending in a document
 * parameter), shared by the management API (`/api/documents/:id`) and the
 * clients' endpoint (`/api/history/:name`):
 *
 * - `GET  {base}/versions` — every retained version, oldest first;
 * - `POST {base}/versions` `{ "name": "…" }` — save a named version now (201);
 * - `GET  {base}/versions/:version` — its content as JSON, or its Yjs state with
 *   `?format=yjs` / `Accept: application/octet-stream`;
 * - `GET  {base}/versions/:version/diff/:to` — what changed from the version to
 *   `:to` (another version, or `now`);
 * - `POST {base}/versions/:version/restore` — restore it, as new ops.
 */
export function addHistoryRoutes(
  router: Router,
  base: string,
  history: DocumentHistory,
  documentOf: HistoryDocumentOf,
): void {
  const route =
    (work: (req: Request, res: Response) => Promise<void>) =>
    (req: Request, res: Response, next: NextFunction): void => {
      work(req, res).catch(next);
    };
  const body = express.json({ limit: "16kb" });

  router.get(
    `${base}/versions`,
    route(async (req, res) => {
      const docId = await documentOf(req, "read");
      res.json({ id: docId, versions: await history.list(docId) });
    }),
  );

  router.post(
    `${base}/versions`,
    body,
    route(async (req, res) => {
      const docId = await documentOf(req, "write");
      const name: unknown = (req.body as { name?: unknown } | undefined)?.name ?? "";
      if (typeof name !== "string") {
        throw new OpStreamError(ErrorCodes.BAD_REQUEST, 'The body is `{ "name": "<version name>" }`.');
      }
      res.status(201).json(await history.create(docId, name));
    }),
  );

  router.get(
    `${base}/versions/:version`,
    route(async (req, res) => {
      const docId = await documentOf(req, "read");
      const versionId = versionParam(req.params.version);
      if (
        req.query.format === "yjs" ||
        req.accepts(["application/json", "application/octet-stream"]) === "application/octet-stream"
      ) {
        const version = await history.get(docId, versionId);
        res
          .type("application/octet-stream")
          .set("x-opstream-seq", String(version.seq))
          .send(Buffer.from(version.state));
        return;
      }
      res.json(await history.content(docId, versionId));
    }),
  );

  router.get(
    `${base}/versions/:version/diff/:to`,
    route(async (req, res) => {
      const docId = await documentOf(req, "read");
      const from = versionParam(req.params.version);
      const to: VersionRef = req.params.to === "now" ? "now" : versionParam(req.params.to);
      res.json(await history.diff(docId, from, to));
    }),
  );

  router.post(
    `${base}/versions/:version/restore`,
    route(async (req, res) => {
      const docId = await documentOf(req, "write");
      res.json(await history.restore(docId, versionParam(req.params.version)));
    }),
  );
}

function versionParam(value: unknown): number {
  const id = Number(value);
  if (typeof value !== "string" || !/^[1-9][0-9]{0,15}$/.test(value) || !Number.isSafeInteger(id)) {
    throw new OpStreamError(ErrorCodes.BAD_REQUEST, "A version id is a positive integer.", {
      version: String(value),
    });
  }
  return id;
}
