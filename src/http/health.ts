import { Router, type Request, type Response } from "express";
import { ErrorCodes } from "../errors.js";
import type { Logger } from "../logging/logger.js";
import type { OpStreamMetrics } from "../metrics.js";
import type { DocumentStore } from "../storage/document-store.js";
import type { ManagementAuthorizer } from "./management.js";

/** What the health endpoints read from the host. */
export interface HealthSource {
  readonly nodeId: string;
  readonly draining: boolean;
  readonly store: DocumentStore;
  /** Extra readiness checks (the backplane's ping); each rejects when not ready. */
  readonly checks: readonly { name: string; check: () => Promise<void> }[];
  readonly metrics: OpStreamMetrics;
  readonly logger: Logger;
  /** The management API's authorizer: `/healthz?doc` answers `owns` only when it allows the request. */
  readonly authorize: ManagementAuthorizer;
  sessionCount(): number;
  /**
   * The backplane's link: "recovering" while it is down or came back less than a
   * lease TTL ago (`IBackplane.isRecovering`), else "ok".
   * @default absent (no link to report: the local backplane)
   */
  backplaneLink?(): "ok" | "recovering";
  /** Whether this node owns (has loaded) `docId`. */
  owns(docId: string): boolean;
  connectionCount(): number;
}

/**
 * `/livez`, `/healthz`, `/readyz` and `/metrics`: answered before any auth or
 * session work, so probes stay cheap and honest under load.
 */
export function healthRouter(source: HealthSource): Router {
  const router = Router();
  router.get("/livez", (_req: Request, res: Response) => {
    res.type("text/plain").send("ok");
  });
  router.get("/healthz", (req: Request, res: Response) => {
    // Counts are for operators and say nothing about any one document: answered to anyone.
    const health = () => ({
      status: source.draining ? "draining" : "ok",
      nodeId: source.nodeId,
      storage: source.store.kind,
      ...(source.backplaneLink ? { backplane: source.backplaneLink() } : {}),
      sessions: source.sessionCount(),
      connections: source.connectionCount(),
    });
    const doc = typeof req.query.doc === "string" ? req.query.doc : undefined;
    if (doc === undefined) {
      res.json(health());
      return;
    }
    // `?doc=<id>`: whether this node owns that document (cluster checks). That tells
    // whether a document is in use, so only the management credential gets it; a
    // probe without it still gets its answer, just without `owns`.
    const withoutDoc = (): void => {
      source.metrics.httpErrors.inc({ status: "200", code: ErrorCodes.FORBIDDEN });
      res.json(health());
    };
    Promise.resolve()
      .then(() => source.authorize(req))
      .then(
        (allowed) => {
          if (allowed) res.json({ ...health(), owns: source.owns(doc) });
          else withoutDoc();
        },
        (error: unknown) => {
          source.logger.warn({ err: error }, "management authorizer failed; /healthz answered without owns");
          withoutDoc();
        },
      );
  });
  router.get("/readyz", (_req: Request, res: Response) => {
    if (source.draining) {
      res.status(503).json({ ready: false, reason: "draining" });
      return;
    }
    const checks = [{ name: "storage", check: () => source.store.ping() }, ...source.checks];
    Promise.all(
      checks.map(({ name, check }) =>
        check().then(
          () => null,
          (error: unknown) => ({ name, error }),
        ),
      ),
    )
      .then(async (results) => {
        const failed = results.find((result) => result !== null);
        if (!failed) {
          res.json({ ready: true });
          return;
        }
        const body = { ready: false, reason: failed.name, error: String(failed.error) };
        if (failed.name !== "backplane") {
          res.status(503).json(body);
          return;
        }
        // Redis is unreachable: new documents cannot be opened, but the documents
        // this node owns are served on (storage fences them), and relays keep their
        // clients. Not ready for new clients; alive and serving the ones it has.
        const suspended = (await source.metrics.leasesSuspended.get()).values[0]?.value ?? 0;
        res.status(503).json({
          ...body,
          state: "degraded",
          ownedSessions: source.sessionCount(),
          suspendedLeases: suspended,
          connections: source.connectionCount(),
        });
      })
      .catch((error: unknown) => res.status(500).json({ ready: false, error: String(error) }));
  });
  router.get("/metrics", (_req: Request, res: Response) => {
    source.metrics.registry.metrics().then(
      (text) => res.type(source.metrics.registry.contentType).send(text),
      (error: unknown) => res.status(500).type("text/plain").send(String(error)),
    );
  });
  return router;
}
