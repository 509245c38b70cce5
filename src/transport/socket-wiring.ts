/**
 * The per-connection side of the transport: how a connection's socket events reach
 * it, with as little held per socket as possible (idle connections are most of a
 * server's memory).
 */
import type { RawData, WebSocket } from "ws";
import type { Logger } from "../logging/logger.js";
import type { OpStreamMetrics } from "../metrics.js";
import { originFields, type ClientOrigin } from "./client-address.js";
import { CloseCodes, type CloseCode } from "./close-codes.js";
import { MessageRateLimiter, type RateLimitEvents, type RateLimitOptions } from "./limits.js";

/** What the transport needs of a connection of either dialect. */
export interface DialectConnection {
  readonly id: string;
  /** Whether a pong arrived since the last ping. */
  alive: boolean;
  /** Whether a frame arrived since the last liveness check (see {@link missedPing}). */
  heard: boolean;
  receive(frame: Uint8Array): void;
  keepAlive(idleMs: number, now: number): void;
  ping(): void;
  close(code: CloseCode, reason: string, badInput?: string): void;
  detach(): void;
  /** Set by the transport: stopped as the server starts closing the socket. */
  rateLimiter: { stop(): void } | undefined;
}

export type Dialect = "y-websocket" | "hocuspocus";

/** What the socket events of every connection share: the transport's parts. */
export interface WiringContext {
  readonly options: RateLimitOptions;
  readonly metrics: OpStreamMetrics;
  readonly logger: Logger;
  readonly connections: Set<DialectConnection>;
}

/**
 * One connection's socket events: binary frames in through its rate limiter,
 * pongs, errors counted, close. The socket's listeners are shared functions that
 * find the wiring by socket, so a connection costs this one object rather than a
 * closure (and its scope) per event: idle connections are most of a server's
 * memory.
 */
class SocketWiring implements RateLimitEvents {
  readonly limiter: MessageRateLimiter;

  constructor(
    private readonly ctx: WiringContext,
    ws: WebSocket,
    private readonly connection: DialectConnection,
    private readonly dialect: Dialect,
    private readonly docId: string | undefined,
    private readonly origin: ClientOrigin,
  ) {
    this.limiter = new MessageRateLimiter(ctx.options, ws, this);
  }

  deliver(frame: Uint8Array): void {
    this.connection.receive(frame);
  }

  throttled(): void {
    this.ctx.metrics.messagesThrottled.inc({ dialect: this.dialect });
  }

  flooded(): void {
    this.ctx.logger.warn(
      { docId: this.docId, peerId: this.connection.id, ...originFields(this.origin) },
      "message flood; closing the connection",
    );
    this.connection.close(CloseCodes.RATE_LIMITED, "message rate exceeded", "rate-limit");
  }

  message(data: RawData, isBinary: boolean): void {
    this.connection.heard = true;
    if (!isBinary) {
      this.connection.close(CloseCodes.UNSUPPORTED_DATA, "text frames are not supported", "text-frame");
      return;
    }
    this.limiter.push(toUint8Array(data));
  }

  pong(): void {
    this.connection.alive = true;
  }

  error(error: Error & { code?: string }): void {
    // ws closes the socket itself (e.g. 1009 for an oversized frame); count why.
    this.ctx.metrics.badFrames.inc({ dialect: this.dialect, reason: error.code ?? "socket-error" });
    this.ctx.logger.warn({ err: error, docId: this.docId, peerId: this.connection.id }, "websocket error");
  }

  closed(): void {
    this.limiter.stop();
    this.ctx.connections.delete(this.connection);
    this.ctx.metrics.connections.dec({ dialect: this.dialect });
    this.connection.detach();
  }
}

/**
 * One ping period's liveness check of `connection`: a socket that sent a frame
 * since the last check is alive without a ping (stock providers renew their
 * awareness every 15 s, so busy and merely present clients are never pinged);
 * a silent one is pinged, and is dead (true) at the next check if neither a frame
 * nor the pong came meanwhile.
 */
export function missedPing(connection: Pick<DialectConnection, "heard" | "alive">, ws: WebSocket): boolean {
  if (connection.heard) {
    connection.heard = false;
    connection.alive = true;
    return false;
  }
  if (!connection.alive) return true;
  connection.alive = false;
  ws.ping();
  return false;
}

/** Each open socket's wiring, for the shared listeners below (`this` is the socket). */
const wirings = new WeakMap<WebSocket, SocketWiring>();

function onSocketMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  wirings.get(this)?.message(data, isBinary);
}

function onSocketPong(this: WebSocket): void {
  wirings.get(this)?.pong();
}

function onSocketError(this: WebSocket, error: Error & { code?: string }): void {
  wirings.get(this)?.error(error);
}

function onSocketClose(this: WebSocket): void {
  const wiring = wirings.get(this);
  wirings.delete(this);
  wiring?.closed();
}

/**
 * Wires `ws`'s events to `connection`: frames through a rate limiter (also set as
 * the connection's, so closing reads the socket again), pongs, errors, close.
 */
export function wireSocket(
  ctx: WiringContext,
  ws: WebSocket,
  connection: DialectConnection,
  dialect: Dialect,
  docId: string | undefined,
  origin: ClientOrigin,
): void {
  const wiring = new SocketWiring(ctx, ws, connection, dialect, docId, origin);
  // A socket the limiter paused must be read again, or its close handshake would wait for ws's timeout.
  connection.rateLimiter = wiring.limiter;
  wirings.set(ws, wiring);
  ws.on("message", onSocketMessage);
  ws.on("pong", onSocketPong);
  ws.on("error", onSocketError);
  ws.on("close", onSocketClose);
}

function toUint8Array(data: RawData): Uint8Array {
  if (Array.isArray(data)) return new Uint8Array(Buffer.concat(data));
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
