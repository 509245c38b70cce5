import { randomUUID } from "node:crypto";
import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import { ErrorCodes, OpStreamError, isOpStreamError } from "../errors.js";
import { redactUrl, type Logger } from "../logging/logger.js";
import type { OpStreamMetrics } from "../metrics.js";
import type { DocumentRouter } from "../router/document-router.js";
import type { Access, Authorizer } from "./authorization.js";
import { CloseCodes, type CloseCode } from "./close-codes.js";
import { HocuspocusConnection } from "./hocuspocus/connection.js";
import type { StatelessHandler } from "./hocuspocus/stateless.js";
import { YWebsocketConnection } from "./y-websocket/connection.js";

/** Options of the WebSocket transport (the `transport` section of `addOpStream()` options). */
export interface TransportOptions {
  /** URL path under which y-websocket documents are served: `<prefix><docName>`. @default "/" */
  prefix?: string;
  /**
   * URL path of the Hocuspocus endpoint (`@hocuspocus/provider`'s `url`), one socket
   * for many documents. Matched before `prefix`: this exact path (a trailing slash
   * is ignored) is reserved for the Hocuspocus dialect, so with the default prefix
   * `/` a y-websocket document named like it cannot be opened. @default "/hocuspocus"
   */
  hocuspocusPath?: string;
  /** Largest accepted frame in bytes; larger ones close the socket with 1009. @default 16777216 (16 MiB) */
  maxPayloadBytes?: number;
  /** Close a client whose unsent bytes pass this (code 4001). @default 33554432 (32 MiB) */
  maxBufferedBytes?: number;
  /**
   * Frames a client may send while its document loads (code 4002 beyond); on a
   * Hocuspocus socket, all its documents together until each is authorized and loaded.
   * @default 1000
   */
  maxPendingFrames?: number;
  /** Longest silence towards a client before a keep-alive frame (must stay under the clients' 30 s). @default 15000 */
  keepAliveIntervalMs?: number;
  /** ws ping period; a client that missed the previous pong is terminated. @default 30000 */
  pingIntervalMs?: number;
  /** Longest document name, in characters. @default 512 */
  maxDocumentNameLength?: number;
}

export const TRANSPORT_DEFAULTS = Object.freeze({
  prefix: "/",
  hocuspocusPath: "/hocuspocus",
  maxPayloadBytes: 16 * 1024 * 1024,
  maxBufferedBytes: 32 * 1024 * 1024,
  maxPendingFrames: 1000,
  keepAliveIntervalMs: 15_000,
  pingIntervalMs: 30_000,
  maxDocumentNameLength: 512,
} satisfies Required<TransportOptions>);

/** What the transport needs of a connection of either dialect. */
interface DialectConnection {
  readonly id: string;
  alive: boolean;
  receive(frame: Uint8Array): void;
  keepAlive(idleMs: number, now: number): void;
  ping(): void;
  close(code: CloseCode, reason: string, badInput?: string): void;
  detach(): void;
}

type Dialect = "y-websocket" | "hocuspocus";

/**
 * Serves both dialects on an http server's `upgrade` event (ws in noServer mode),
 * by path: the Hocuspocus endpoint (`hocuspocusPath`, documents multiplexed and
 * authorized per Auth message), else y-websocket under `prefix` (authorized
 * before the upgrade completes, then attached to its document through the router).
 */
export class WebSocketTransport {
  private readonly options: Required<TransportOptions>;
  private readonly wss: WebSocketServer;
  private readonly connections = new Set<DialectConnection>();
  private readonly servers = new Set<Server>();
  private readonly keepAliveTimer: NodeJS.Timeout;
  private readonly pingTimer: NodeJS.Timeout;
  private accepting = true;
  private readonly onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    this.upgrade(request, socket, head).catch((error: unknown) => {
      this.logger.error({ err: error, url: redactUrl(request.url) }, "upgrade failed");
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
  ) {
    this.options = { ...TRANSPORT_DEFAULTS, ...options };
    const prefix = this.options.prefix;
    this.options.prefix = prefix.endsWith("/") ? prefix : `${prefix}/`;
    this.options.hocuspocusPath = hocuspocusPathOf(this.options.hocuspocusPath);
    this.wss = new WebSocketServer({ noServer: true, maxPayload: this.options.maxPayloadBytes });
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
  }

  private async upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on("error", (error) => this.logger.debug({ err: error }, "socket error during upgrade"));
    if (this.isHocuspocusPath(request.url ?? "/")) {
      // Documents are named in the frames: each is authorized on its own Auth message.
      if (!this.accepting) return rejectUpgrade(socket, 503, "Service Unavailable");
      this.wss.handleUpgrade(request, socket, head, (ws) => this.acceptHocuspocus(ws, request));
      return;
    }
    const docId = this.documentName(request.url ?? "/");
    if (docId === undefined) return rejectUpgrade(socket, 404, "Not Found");
    if (docId === "") return rejectUpgrade(socket, 400, "Bad Request: missing document name");
    if (!this.accepting) return rejectUpgrade(socket, 503, "Service Unavailable");
    const token = new URL(request.url ?? "/", "http://localhost").searchParams.get("token") ?? undefined;
    const access = await this.authorizer({ docId, request, token });
    if (access === "deny") return rejectUpgrade(socket, 403, "Forbidden");
    this.wss.handleUpgrade(request, socket, head, (ws) => this.accept(ws, docId, access));
  }

  private isHocuspocusPath(url: string): boolean {
    const pathname = new URL(url, "http://localhost").pathname;
    return pathname === this.options.hocuspocusPath || pathname === `${this.options.hocuspocusPath}/`;
  }

  /** The document name of an upgrade URL, "" when missing, undefined when outside the prefix or malformed. */
  private documentName(url: string): string | undefined {
    const pathname = new URL(url, "http://localhost").pathname;
    if (!pathname.startsWith(this.options.prefix)) return undefined;
    try {
      const name = decodeURIComponent(pathname.slice(this.options.prefix.length));
      return name.length <= this.options.maxDocumentNameLength ? name : undefined;
    } catch {
      return undefined; // malformed percent-encoding: answered 404 like any unknown path
    }
  }

  private accept(ws: WebSocket, docId: string, access: Access): void {
    const connection = new YWebsocketConnection(
      randomUUID(),
      ws,
      docId,
      access,
      this.options,
      this.metrics,
      this.logger,
    );
    this.wire(ws, connection, "y-websocket", { docId });
    this.router
      .join(docId, connection)
      .then((handle) => connection.attach(handle))
      .catch((error: unknown) => {
        // Coded errors (not owner, shutting down, storage) are worth a retry; anything else is a bug.
        const retryable = isOpStreamError(error);
        this.logger.warn({ err: error, docId }, "could not open the document");
        connection.close(
          retryable ? CloseCodes.TRY_AGAIN_LATER : CloseCodes.INTERNAL_ERROR,
          "document unavailable",
        );
      });
  }

  private acceptHocuspocus(ws: WebSocket, request: IncomingMessage): void {
    const connection = new HocuspocusConnection(randomUUID(), ws, request, {
      router: this.router,
      authorizer: this.authorizer,
      statelessHandlers: this.statelessHandlers,
      metrics: this.metrics,
      logger: this.logger,
      maxBufferedBytes: this.options.maxBufferedBytes,
      maxPendingFrames: this.options.maxPendingFrames,
      maxDocumentNameLength: this.options.maxDocumentNameLength,
    });
    this.wire(ws, connection, "hocuspocus", {});
  }

  /** Socket events of either dialect: binary frames in, pongs, errors counted, close. */
  private wire(ws: WebSocket, connection: DialectConnection, dialect: Dialect, log: object): void {
    this.connections.add(connection);
    this.metrics.connections.inc({ dialect });
    ws.on("message", (data: RawData, isBinary: boolean) => {
      if (!isBinary) {
        connection.close(CloseCodes.UNSUPPORTED_DATA, "text frames are not supported", "text-frame");
        return;
      }
      connection.receive(toUint8Array(data));
    });
    ws.on("pong", () => (connection.alive = true));
    ws.on("error", (error: Error & { code?: string }) => {
      // ws closes the socket itself (e.g. 1009 for an oversized frame); count why.
      this.metrics.badFrames.inc({ dialect, reason: error.code ?? "socket-error" });
      this.logger.warn({ err: error, ...log, peerId: connection.id }, "websocket error");
    });
    ws.on("close", () => {
      this.connections.delete(connection);
      this.metrics.connections.dec({ dialect });
      connection.detach();
    });
  }

  private keepAlive(idleMs: number): void {
    const now = performance.now();
    for (const connection of this.connections) connection.keepAlive(idleMs, now);
  }

  private ping(): void {
    for (const connection of this.connections) connection.ping();
  }
}

function toUint8Array(data: RawData): Uint8Array {
  if (Array.isArray(data)) return new Uint8Array(Buffer.concat(data));
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
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
