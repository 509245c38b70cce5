import { randomUUID } from "node:crypto";
import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import { ErrorCodes, OpStreamError } from "../errors.js";
import type { HookEmitter } from "../hooks.js";
import { redactUrl, type Logger } from "../logging/logger.js";
import type { OpStreamMetrics } from "../metrics.js";
import type { DocumentRouter } from "../router/document-router.js";
import { TENANT_ID, tenantScoped, type DocumentJoiner, type TenantResolver } from "./tenancy.js";
import { OriginCheck, documentPath, selectProtocol, upgradeToken } from "./admission.js";
import { toGrant, type Authorizer } from "./authorization.js";
import { ClientAddresses, originFields, type ClientOrigin } from "./client-address.js";
import { CloseCodes } from "./close-codes.js";
import { observedJoiner } from "./connection-hooks.js";
import { DocumentQuota, joinFailureCloseCode, joinRefusalReason } from "./document-quota.js";
import { HocuspocusConnection } from "./hocuspocus/connection.js";
import type { StatelessHandler } from "./hocuspocus/stateless.js";
import { ConnectionCounter } from "./limits.js";
import { RefusalLog } from "./refusal-log.js";
import { wireSocket, type Dialect, type DialectConnection, type WiringContext } from "./socket-wiring.js";
import {
  TRANSPORT_DEFAULTS,
  type ResolvedTransportOptions,
  type TransportOptions,
} from "./transport-options.js";
import { YWebsocketConnection, type ConnectionGrant } from "./y-websocket/connection.js";

export { TRANSPORT_DEFAULTS, type TransportOptions } from "./transport-options.js";

/** Why an upgrade is refused (`opstream_upgrades_refused_total{reason}`), with its HTTP answer. */
const REFUSALS = Object.freeze({
  draining: [503, "Service Unavailable"],
  origin: [403, "Forbidden: origin not allowed"],
  "node-limit": [503, "Service Unavailable: too many connections"],
  "ip-limit": [429, "Too Many Requests: too many connections from this address"],
  "principal-limit": [429, "Too Many Requests: too many documents open"],
  unauthenticated: [401, "Unauthorized"],
  forbidden: [403, "Forbidden"],
  "not-found": [404, "Not Found"],
  "no-document": [400, "Bad Request: missing document name"],
  "name-too-long": [400, "Bad Request: document name too long"],
} as const satisfies Record<string, readonly [number, string]>);
type Refusal = keyof typeof REFUSALS;

/**
 * Serves both dialects on an http server's `upgrade` event (ws in noServer mode),
 * by path: the Hocuspocus endpoint (`hocuspocusPath`, documents multiplexed and
 * authorized per Auth message), else y-websocket under `prefix` (authorized
 * before the upgrade completes, then attached to its document through the router).
 * Before either: the Origin check and the connection caps.
 */
export class WebSocketTransport {
  private readonly options: ResolvedTransportOptions;
  private readonly wss: WebSocketServer;
  private readonly connections = new Set<DialectConnection>();
  private readonly origins: OriginCheck;
  private readonly counter: ConnectionCounter;
  private readonly addresses: ClientAddresses;
  private readonly refusals: RefusalLog;
  private readonly quota: DocumentQuota;
  private readonly servers = new Set<Server>();
  private readonly keepAliveTimer: NodeJS.Timeout;
  private readonly pingTimer: NodeJS.Timeout;
  private accepting = true;
  private readonly wiringContext: WiringContext;
  private readonly onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    this.upgrade(request, socket, head).catch((error: unknown) => {
      this.logger.error({ err: error, url: redactUrl(request.url) }, "upgrade failed");
      this.metrics.upgradesRefused.inc({ dialect: this.dialectOf(request.url), reason: "error" });
      rejectUpgrade(socket, 500, "Internal Server Error");
    });
  };

  constructor(
    options: TransportOptions,
    private readonly router: DocumentRouter,
    private readonly authorizer: Authorizer,
    private readonly metrics: OpStreamMetrics,
    private readonly logger: Logger,
    private readonly statelessHandlers: readonly StatelessHandler[] = [],
    private readonly tenantResolver: TenantResolver | undefined = undefined,
    /** The node's `connect` and `disconnect` hooks are told about every connection's documents. */
    private readonly hooks: HookEmitter | undefined = undefined,
  ) {
    this.options = { ...TRANSPORT_DEFAULTS, ...options };
    this.wiringContext = { options: this.options, metrics, logger, connections: this.connections };
    const prefix = this.options.prefix;
    this.options.prefix = prefix.endsWith("/") ? prefix : `${prefix}/`;
    this.options.hocuspocusPath = hocuspocusPathOf(this.options.hocuspocusPath);
    this.origins = new OriginCheck(this.options.allowedOrigins);
    this.counter = new ConnectionCounter(this.options.maxConnections, this.options.maxConnectionsPerIp);
    this.addresses = new ClientAddresses(
      this.options.trustProxy,
      this.options.ipv6PrefixLength,
      this.options.clientAddress,
    );
    this.refusals = new RefusalLog(logger);
    this.quota = new DocumentQuota(this.options, metrics);
    if (this.options.messageRate > 0 && this.options.messageBurst < 1) {
      throw new OpStreamError(
        ErrorCodes.INVALID_OPTION,
        "transport.messageBurst must be at least 1 when transport.messageRate is on.",
        { option: "transport.messageBurst", value: this.options.messageBurst },
      );
    }
    this.wss = new WebSocketServer({
      noServer: true,
      // `connections` tracks them; ws's own set would add a listener per socket.
      clientTracking: false,
      maxPayload: this.options.maxPayloadBytes,
      handleProtocols: selectProtocol,
    });
    const tick = this.options.keepAliveIntervalMs / 2;
    this.keepAliveTimer = setInterval(() => this.keepAlive(tick), tick);
    this.keepAliveTimer.unref();
    this.pingTimer = setInterval(() => this.ping(), this.options.pingIntervalMs);
    this.pingTimer.unref();
  }

  /** Open connections. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** Handles WebSocket upgrades on `server`. */
  attach(server: Server): void {
    if (this.servers.has(server)) return;
    this.servers.add(server);
    server.on("upgrade", this.onUpgrade);
  }

  /** Refuses new connections (HTTP 503) from now on. */
  stopAccepting(): void {
    this.accepting = false;
  }

  /** Closes every connection with GOING_AWAY and detaches from the servers. */
  close(): void {
    this.stopAccepting();
    clearInterval(this.keepAliveTimer);
    clearInterval(this.pingTimer);
    for (const server of this.servers) server.off("upgrade", this.onUpgrade);
    this.servers.clear();
    for (const connection of this.connections)
      connection.close(CloseCodes.GOING_AWAY, "server shutting down");
    this.wss.close();
    this.refusals.close();
  }

  // Made once: a listener created inside upgrade() would share that call's closure
  // context, and so keep the request (headers and all) for the connection's life.
  private readonly onUpgradeSocketError = (error: Error): void =>
    this.logger.debug({ err: error }, "socket error during upgrade");

  private async upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on("error", this.onUpgradeSocketError);
    const hocuspocus = this.isHocuspocusPath(request.url ?? "/");
    const dialect: Dialect = hocuspocus ? "hocuspocus" : "y-websocket";
    const origin = this.addresses.of(request);
    const refuse = (reason: Refusal): void => {
      this.metrics.upgradesRefused.inc({ dialect, reason });
      const fields = { dialect, url: redactUrl(request.url), ...originFields(origin) };
      this.refusals.refused("connection refused", reason, fields);
      const [status, message] = REFUSALS[reason];
      rejectUpgrade(socket, status, message);
    };
    const path = hocuspocus
      ? undefined
      : documentPath(request.url ?? "/", this.options.prefix, this.options.maxDocumentNameLength);
    if (path && "refusal" in path) return refuse(path.refusal);
    const docId = path?.name;
    if (!this.accepting) return refuse("draining");
    if (!this.origins.allows(request)) return refuse("origin");
    // Counted (and told to the document quota) by its key: an IPv6 client by its prefix.
    const address = origin.key;
    const capped = origin.capped ? address : undefined;
    const full = this.counter.acquire(capped);
    if (full) return refuse(full);
    // The slot is held from here until the socket closes, whatever happens to the upgrade.
    releaseOnClose(socket, this.counter, capped);
    const scope = await this.tenantScope(request);
    if (!scope) return refuse("unauthenticated");
    if (docId === undefined) {
      // Documents are named in the frames: each is authorized on its own Auth message.
      this.wss.handleUpgrade(request, socket, head, (ws) =>
        this.acceptHocuspocus(ws, request, scope, origin),
      );
      return;
    }
    // Decided once for the connection, before the upgrade completes and before any load.
    const grant = toGrant(
      await this.authorizer({ docId, request, token: upgradeToken(request), tenant: scope.tenant }),
    );
    if (grant.access === "deny") return refuse(grant.reason);
    // Counted before the upgrade completes, like the per-address cap, and held until the socket closes.
    const principal = DocumentQuota.principalOf(grant.principal, address, scope.tenant);
    if (!this.quota.holdUntilClose(socket, principal, docId)) return refuse("principal-limit");
    const { access, expiresAt } = grant;
    this.wss.handleUpgrade(request, socket, head, (ws) =>
      this.accept(ws, docId, { access, expiresAt }, scope.router, origin),
    );
  }

  /** The router a connection uses: this node's, or one tenant's view of it; undefined refuses the request. */
  private async tenantScope(
    request: IncomingMessage,
  ): Promise<{ router: DocumentJoiner; tenant: string | undefined } | undefined> {
    if (!this.tenantResolver) return { router: this.router, tenant: undefined };
    let tenant: string | undefined;
    try {
      tenant = await this.tenantResolver(request);
    } catch (error) {
      this.logger.warn({ err: error, url: redactUrl(request.url) }, "tenant resolver failed");
      return undefined;
    }
    if (tenant === undefined || !TENANT_ID.test(tenant)) return undefined;
    return { router: tenantScoped(this.router, tenant), tenant };
  }

  private dialectOf(url: string | undefined): Dialect {
    try {
      return this.isHocuspocusPath(url ?? "/") ? "hocuspocus" : "y-websocket";
    } catch {
      return "y-websocket"; // a URL that does not parse: counted under the default dialect
    }
  }

  private isHocuspocusPath(url: string): boolean {
    const pathname = new URL(url, "http://localhost").pathname;
    return pathname === this.options.hocuspocusPath || pathname === `${this.options.hocuspocusPath}/`;
  }

  private accept(
    ws: WebSocket,
    docId: string,
    grant: ConnectionGrant,
    router: DocumentJoiner,
    origin: ClientOrigin,
  ): void {
    const connection = new YWebsocketConnection(
      newConnectionId(),
      ws,
      docId,
      grant,
      this.options,
      this.metrics,
      this.logger,
    );
    this.wire(ws, connection, "y-websocket", docId, origin);
    // Only writers may create the document: a reader of a missing one is closed with 4005.
    observedJoiner(router, this.hooks, "y-websocket")
      .join(docId, connection, { create: grant.access === "read-write" })
      .then((handle) => connection.attach(handle))
      .catch((error: unknown) => {
        const code = joinFailureCloseCode(error);
        // Refusals (a reader of a missing document, the node's document cap) were counted by the router.
        const refused = joinRefusalReason(error);
        const fields = { dialect: "y-websocket", docId, peerId: connection.id, ...originFields(origin) };
        if (refused) this.refusals.refused("document refused", refused, fields);
        else this.logger.warn({ err: error, ...fields }, "could not open the document");
        const notFound = code === CloseCodes.DOCUMENT_NOT_FOUND;
        connection.close(code, notFound ? "document not found" : "document unavailable");
      });
  }

  private acceptHocuspocus(
    ws: WebSocket,
    request: IncomingMessage,
    scope: { router: DocumentJoiner; tenant: string | undefined },
    origin: ClientOrigin,
  ): void {
    const connection = new HocuspocusConnection(newConnectionId(), ws, request, {
      // Each socket counts its documents (and its principals') through its own joiner.
      router: this.quota.forSocket(
        observedJoiner(scope.router, this.hooks, "hocuspocus"),
        origin.key,
        scope.tenant,
      ),
      origin,
      refusals: this.refusals,
      ...(scope.tenant === undefined ? {} : { tenant: scope.tenant }),
      authorizer: this.authorizer,
      statelessHandlers: this.statelessHandlers,
      metrics: this.metrics,
      logger: this.logger,
      maxBufferedBytes: this.options.maxBufferedBytes,
      maxPendingFrames: this.options.maxPendingFrames,
      maxPendingBytes: this.options.maxPendingBytes,
      maxDocumentNameLength: this.options.maxDocumentNameLength,
      maxAwarenessStateBytes: this.options.maxAwarenessStateBytes,
      maxRefusedKeyBytes: this.options.maxRefusedKeyBytes,
      maxDocumentsPerSocket: this.options.maxDocumentsPerSocket,
      authTimeoutMs: this.options.authTimeoutMs,
    });
    this.wire(ws, connection, "hocuspocus", undefined, origin);
  }

  /** Socket events of either dialect: binary frames in (rate-limited), pongs, errors counted, close. */
  private wire(
    ws: WebSocket,
    connection: DialectConnection,
    dialect: Dialect,
    docId: string | undefined,
    origin: ClientOrigin,
  ): void {
    this.connections.add(connection);
    this.metrics.connections.inc({ dialect });
    wireSocket(this.wiringContext, ws, connection, dialect, docId, origin);
  }

  private keepAlive(idleMs: number): void {
    const now = performance.now();
    for (const connection of this.connections) connection.keepAlive(idleMs, now);
  }

  private ping(): void {
    for (const connection of this.connections) connection.ping();
  }
}

/**
 * A connection's id: a random UUID as one flat string. Node builds `randomUUID()`
 * by concatenation, and V8 keeps such a string as a chain of about 14 pieces
 * (some 800 bytes) for as long as it lives; the copy through a Buffer is 36 bytes.
 */
function newConnectionId(): string {
  return Buffer.from(randomUUID(), "latin1").toString("latin1");
}

/** Frees the slot taken for `key` when `socket` closes; a function of its own so the listener holds only these. */
function releaseOnClose(socket: Duplex, counter: ConnectionCounter, key: string | undefined): void {
  socket.once("close", () => counter.release(key));
}

function rejectUpgrade(socket: Duplex, status: number, message: string): void {
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${message}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  }
  socket.destroy();
}

/** `path` with a leading and without a trailing slash; "/" alone would shadow every y-websocket document. */
function hocuspocusPathOf(path: string): string {
  const normalized = `/${path.replace(/^\/+|\/+$/g, "")}`;
  if (normalized === "/" || /[?#]/.test(normalized)) {
    throw new OpStreamError(
      ErrorCodes.INVALID_OPTION,
      `transport.hocuspocusPath must be a path like "/hocuspocus" (not "/", no query); got "${path}".`,
      { option: "transport.hocuspocusPath", value: path },
    );
  }
  return normalized;
}
