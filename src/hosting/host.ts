import express, { type Router } from "express";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { IBackplane } from "../backplane/backplane.js";
import { healthRouter } from "../http/health.js";
import { httpErrorHandler, routeNotFound } from "../http/http-errors.js";
import { clientHistoryRouter } from "../http/client-history.js";
import { managementRouter, type ManagementAuthorizer } from "../http/management.js";
import type { Logger } from "../logging/logger.js";
import type { OpStreamMetrics } from "../metrics.js";
import { DocumentRouter } from "../router/document-router.js";
import type { DocumentStore } from "../storage/document-store.js";
import { HookEmitter } from "../hooks.js";
import { WebSocketTransport } from "../transport/websocket-transport.js";
import type { Authorizer } from "../transport/authorization.js";
import type { TenantResolver } from "../transport/tenancy.js";
import { ServerDocuments } from "./documents.js";
import { DocumentHistory } from "./history.js";
import { historyStatelessHandler } from "./history-stateless.js";
import { warmUp } from "./warm-up.js";
import type { ResolvedOptions } from "./options.js";
import type { ServiceProvider } from "./service-collection.js";
import { Tokens } from "./tokens.js";

/** Options of {@link OpStreamHost.shutdown}. */
export interface ShutdownOptions {
  /** Longest wait for final snapshots before closing the store anyway. @default 10000 */
  drainTimeoutMs?: number;
}

/**
 * A built opstream node: serve it with `attach(server)` (plus `http()` on your
 * express app) or `listen(port)`, and stop it with `shutdown()`.
 */
export class OpStreamHost {
  readonly options: ResolvedOptions;
  readonly logger: Logger;
  readonly metrics: OpStreamMetrics;
  readonly store: DocumentStore;
  readonly backplane: IBackplane;
  /** @internal Peer -> local session or proxy to the owner. */
  readonly router: DocumentRouter;
  /** @internal The WebSocket endpoint of both dialects. */
  readonly transport: WebSocketTransport;
  /** Server-side access to documents: `documents.open(docId)` from any node. */
  readonly documents: ServerDocuments;
  /** Document history from any node: versions, diffs, named versions and restore. */
  readonly history: DocumentHistory;
  private readonly servers: Server[] = [];
  private readonly managementAuthorizer: ManagementAuthorizer;
  private readonly hooks: HookEmitter;
  private readonly authorizer: Authorizer;
  private readonly tenantResolver: TenantResolver | undefined;
  private draining = false;
  private shutdownPromise: Promise<void> | undefined;

  /** @internal Created by `services.build()`. */
  constructor(provider: ServiceProvider) {
    // The store first: the SQLite store's writer thread then starts while the rest
    // is built, and `listen()` waits less for it (see `DocumentStore.whenReady`).
    this.store = provider.get(Tokens.Store);
    this.options = provider.get(Tokens.Options);
    this.logger = provider.get(Tokens.Logger);
    this.metrics = provider.get(Tokens.Metrics);
    this.backplane = provider.get(Tokens.Backplane);
    // Every line the router, sessions and transport log names this node.
    this.logger = this.logger.child({ nodeId: this.backplane.nodeId });
    this.hooks = new HookEmitter(provider.getAll(Tokens.Hooks), this.nodeId, this.logger, this.metrics);
    this.router = new DocumentRouter({
      store: this.store,
      backplane: this.backplane,
      ownership: provider.get(Tokens.Ownership),
      snapshotPolicy: provider.get(Tokens.SnapshotPolicy),
      validators: provider.getAll(Tokens.Validators),
      consumers: provider.getAll(Tokens.Consumers),
      seeder: provider.get(Tokens.Seeder),
      logger: this.logger,
      metrics: this.metrics,
      awareness: this.options.awareness,
      idleTimeoutMs: this.options.sessions.idleTimeoutMs,
      maxBatch: this.options.sessions.maxBatch,
      heartbeatIntervalMs: this.options.sessions.heartbeatIntervalMs,
      remotePeerRenewalMs: this.options.sessions.remotePeerRenewalMs,
      maxPendingBytes: this.options.sessions.maxPendingBytes,
      maxDocuments: this.options.sessions.maxDocuments,
      history: this.options.history,
      hooks: this.hooks,
    });
    this.managementAuthorizer = provider.get(Tokens.ManagementAuthorizer);
    this.documents = new ServerDocuments(
      this.router,
      this.logger,
      this.options.transport.maxDocumentNameLength,
    );
    this.history = new DocumentHistory(
      this.store,
      this.router,
      this.options.history,
      this.options.transport.maxDocumentNameLength,
    );
    this.authorizer = provider.get(Tokens.Authorizer);
    this.tenantResolver = provider.get(Tokens.TenantResolver);
    const statelessHandlers = provider.getAll(Tokens.StatelessHandlers);
    this.transport = new WebSocketTransport(
      this.options.transport,
      this.router,
      this.authorizer,
      this.metrics,
      this.logger,
      this.history.enabled
        ? [historyStatelessHandler(this.history), ...statelessHandlers]
        : statelessHandlers,
      this.tenantResolver,
      this.hooks,
    );
  }

  /** This node's id. */
  get nodeId(): string {
    return this.backplane.nodeId;
  }

  /**
   * Sends a stateless message to every Hocuspocus client of `docId` (its full id:
   * `<tenant>/<name>` with a tenant resolver), on every node, from your own code.
   * Not stored; y-websocket clients never see it. A document nobody has open has
   * nobody to tell: nothing is loaded for it.
   */
  broadcastStateless(docId: string, payload: string): Promise<void> {
    return this.router.broadcastStateless(docId, payload);
  }

  /** True from the start of `shutdown()`: `/readyz` answers 503 and new connections are refused. */
  get isDraining(): boolean {
    return this.draining;
  }

  /**
   * An express router with `/livez`, `/healthz`, `/readyz`, `/metrics` and the
   * management API `/api/documents` (403 until `useManagementAuthorization()`).
   * Its errors answer JSON `{ "error": { code, message } }`, never a stack.
   */
  http(): Router {
    const isDraining = () => this.draining;
    const router = express.Router();
    router.use(
      managementRouter({
        store: this.store,
        router: this.router,
        history: this.history,
        authorize: this.managementAuthorizer,
        logger: this.logger,
        metrics: this.metrics,
        maxDocumentNameLength: this.options.transport.maxDocumentNameLength,
      }),
    );
    router.use(
      clientHistoryRouter({
        history: this.history,
        authorizer: this.authorizer,
        tenantResolver: this.tenantResolver,
        logger: this.logger,
        metrics: this.metrics,
        maxDocumentNameLength: this.options.transport.maxDocumentNameLength,
      }),
    );
    router.use(
      healthRouter({
        nodeId: this.nodeId,
        get draining() {
          return isDraining();
        },
        store: this.store,
        checks: this.backplane.ping ? [{ name: "backplane", check: () => this.backplane.ping!() }] : [],
        metrics: this.metrics,
        logger: this.logger,
        authorize: this.managementAuthorizer,
        sessionCount: () => this.router.sessionCount,
        ...(this.backplane.isRecovering
          ? { backplaneLink: () => (this.backplane.isRecovering?.() ? "recovering" : "ok") }
          : {}),
        owns: (docId) => this.router.localSession(docId) !== undefined,
        connectionCount: () => this.transport.connectionCount,
      }),
    );
    return router.use(httpErrorHandler(this));
  }

  /** Serves WebSocket upgrades on `server`. */
  attach(server: Server): this {
    this.transport.attach(server);
    this.servers.push(server);
    this.hooks.serving(server);
    // As soon as it serves, ahead of the first client in all likelihood (see warm-up.ts).
    if (server.listening) setImmediate(warmUp);
    else server.once("listening", () => setImmediate(warmUp));
    return this;
  }

  /**
   * Starts an http server on `port` (0 picks a free port) serving `http()` and the
   * WebSocket endpoint, plus `app` routes if given, once the store is ready (see
   * `DocumentStore.whenReady`). Resolves once listening. The app then ends with a
   * JSON 404 and a JSON error handler: add `app` routes before calling this.
   */
  async listen(port: number, options: { host?: string; app?: express.Express } = {}): Promise<Server> {
    const routes = this.http(); // built while the store gets ready
    await this.store.whenReady?.();
    const app = options.app ?? express();
    // express's own final handler answers HTML, with the stack unless NODE_ENV=production.
    app.use(routes, routeNotFound(this), httpErrorHandler(this));
    const server = createServer(app);
    this.attach(server);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, options.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const address = server.address() as AddressInfo;
    // No nodeId here: `this.logger` is a child that adds it to every line already.
    this.logger.info({ port: address.port, storage: this.store.kind }, "opstream listening");
    return server;
  }

  /**
   * Drains and stops: `/readyz` turns 503 at once, new connections are refused,
   * queued updates are made durable, final snapshots are written, leases released,
   * clients closed with 1001 (they reconnect elsewhere), then the store is closed.
   * Idempotent.
   */
  shutdown(options: ShutdownOptions = {}): Promise<void> {
    this.shutdownPromise ??= this.drain(options.drainTimeoutMs ?? 10_000);
    return this.shutdownPromise;
  }

  private async drain(drainTimeoutMs: number): Promise<void> {
    this.draining = true;
    this.transport.stopAccepting();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), drainTimeoutMs);
    });
    const outcome = await Promise.race([
      this.documents
        .closeAll()
        .then(() => this.router.shutdown())
        .then(() => "done" as const),
      timedOut,
    ]);
    clearTimeout(timer);
    if (outcome === "timeout")
      this.logger.warn({ drainTimeoutMs }, "drain timed out; unsnapshotted ops stay in the log");
    this.transport.close();
    for (const server of this.servers) {
      server.closeAllConnections();
      server.close();
    }
    await this.backplane.close();
    await this.store.close();
    this.logger.info("opstream stopped");
    this.hooks.emit("destroy", {});
  }
}
