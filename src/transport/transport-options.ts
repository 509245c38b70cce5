import type { IncomingMessage } from "node:http";
import { remoteAddress } from "./admission.js";

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
   * Frames a client may send before its document is authorized and loaded (code
   * 4002 beyond): y-websocket while the document loads; Hocuspocus, all documents
   * of the socket together, until each one's Auth is answered and it is loaded.
   * @default 1000
   */
  maxPendingFrames?: number;
  /** Bytes of those frames, all together (code 4002 beyond). @default 1048576 (1 MiB) */
  maxPendingBytes?: number;
  /** Longest silence towards a client before a keep-alive frame (must stay under the clients' 30 s). @default 15000 */
  keepAliveIntervalMs?: number;
  /** ws ping period; a client that missed the previous pong is terminated. @default 30000 */
  pingIntervalMs?: number;
  /** Longest document name, in characters. @default 512 */
  maxDocumentNameLength?: number;
  /** Most connections on this node (a Hocuspocus socket counts once); beyond, upgrades get HTTP 503. 0 = no limit. @default 10000 */
  maxConnections?: number;
  /**
   * Most connections from one client address (`clientAddress`); beyond, upgrades
   * get HTTP 429. Behind a proxy every client has the proxy's address: set
   * `clientAddress`, or raise this. 0 = no limit. @default 100
   */
  maxConnectionsPerIp?: number;
  /**
   * The client address that `maxConnectionsPerIp` counts. Behind a proxy you
   * trust, return the address it forwards (e.g. the last `X-Forwarded-For` entry
   * it appends). @default the socket's remote address
   */
  clientAddress?: (request: IncomingMessage) => string;
  /**
   * Origins whose pages may connect (the `Origin` header browsers send), like
   * `["https://app.example.com"]`; others get HTTP 403. Upgrades without an Origin
   * header (not from a browser) pass. `["*"]` allows every origin and logs a
   * startup warning. @default ["*"]
   */
  allowedOrigins?: readonly string[];
  /**
   * Frames per second one connection may send on average (a token bucket); faster
   * frames are delayed, not dropped. 0 = no limit. @default 100
   */
  messageRate?: number;
  /** Frames a connection may send at once before it is throttled (the bucket's size). @default 300 */
  messageBurst?: number;
  /**
   * Frames delayed in one throttled stretch (until the bucket is full again)
   * before the connection is closed as flooding (code 4008). @default 1000
   */
  maxThrottledMessages?: number;
  /** Largest awareness state a client may set, in bytes of its JSON; larger entries are dropped and counted. @default 16384 */
  maxAwarenessStateBytes?: number;
}

export const TRANSPORT_DEFAULTS = Object.freeze({
  prefix: "/",
  hocuspocusPath: "/hocuspocus",
  maxPayloadBytes: 16 * 1024 * 1024,
  maxBufferedBytes: 32 * 1024 * 1024,
  maxPendingFrames: 1000,
  maxPendingBytes: 1024 * 1024,
  keepAliveIntervalMs: 15_000,
  pingIntervalMs: 30_000,
  maxDocumentNameLength: 512,
  maxConnections: 10_000,
  maxConnectionsPerIp: 100,
  clientAddress: remoteAddress,
  allowedOrigins: Object.freeze<string[]>(["*"]),
  messageRate: 100,
  messageBurst: 300,
  maxThrottledMessages: 1000,
  maxAwarenessStateBytes: 16 * 1024,
} satisfies Required<TransportOptions>);
