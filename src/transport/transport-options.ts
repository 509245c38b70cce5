import type { IncomingMessage } from "node:http";
import { DEFAULT_TRUSTED_PROXIES } from "./client-address.js";

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
  /**
   * Bytes (UTF-8) of the routing keys a Hocuspocus socket remembers as refused
   * (denied, or closed by a delete), whose frames it drops until a new Auth; past
   * this (or `maxPendingFrames` keys) the oldest are forgotten, and their frames
   * wait for an Auth like a new key's. @default 65536 (64 KiB)
   */
  maxRefusedKeyBytes?: number;
  /**
   * A Hocuspocus socket on which no document was authorized this long after it
   * opened is closed with 4010 (AUTH_TIMEOUT), so sockets that never authenticate
   * cannot hold the connection caps. Once one document was authorized the socket
   * has no such deadline. 0 = off. @default 10000
   */
  authTimeoutMs?: number;
  /** Longest silence towards a client before a keep-alive frame (must stay under the clients' 30 s). @default 15000 */
  keepAliveIntervalMs?: number;
  /**
   * Liveness check period: a connection that sent no frame during a period gets a
   * WebSocket ping, and is terminated at the next check if neither a frame nor
   * the pong arrived meanwhile. Connections that send frames are never pinged. @default 30000
   */
  pingIntervalMs?: number;
  /**
   * Longest document name, in characters (UTF-16 code units, after
   * percent-decoding), in both dialects: a longer y-websocket name gets HTTP 400; a
   * longer Hocuspocus name is denied, and a routing key longer than this plus 129
   * (`\0` and a session id) closes the socket with 1007. @default 512
   */
  maxDocumentNameLength?: number;
  /** Most connections on this node (a Hocuspocus socket counts once); beyond, upgrades get HTTP 503. 0 = no limit. @default 10000 */
  maxConnections?: number;
  /**
   * Most connections from one client address (the address `trustProxy` finds,
   * forwarded by a trusted proxy or else the socket's peer; or `clientAddress`);
   * beyond, upgrades get HTTP 429. A connection from a trusted proxy that forwards
   * no address (a local test rig, a server-side client on the private network) is
   * not counted: `maxConnections` and every other limit still hold it. 0 = no
   * limit. @default 100
   */
  maxConnectionsPerIp?: number;
  /**
   * How `maxConnectionsPerIp` counts IPv6 clients: every address of one prefix of
   * this many bits is one client (a host usually holds a whole /64). 1 to 128;
   * 128 counts each address. IPv4-mapped IPv6 addresses count as the IPv4 address.
   * @default 64
   */
  ipv6PrefixLength?: number;
  /**
   * Peers whose `X-Forwarded-For` is believed, in express's `trust proxy`
   * vocabulary: addresses, CIDRs (`10.0.0.0/8`, `fd00::/8`) and the names
   * `loopback` (127.0.0.0/8, ::1), `linklocal` (169.254.0.0/16, fe80::/10) and
   * `uniquelocal` (10/8, 172.16/12, 192.168/16, fc00::/7). Behind a trusted peer the
   * client address is read from `X-Forwarded-For` from the right, past every
   * trusted hop (as express does, with proxy-addr); the per-address cap counts it
   * and the logs show it (with the peer's). `false` (or `[]`) trusts no peer:
   * every connection is its socket's address. The default trusts the same host and
   * the private networks, where reverse proxies and load balancers connect from; a
   * peer there could forge the header, but only to move its own connections
   * between per-address buckets. Public peers' headers are never believed.
   * @default ["loopback", "linklocal", "uniquelocal"]
   */
  trustProxy?: readonly string[] | false;
  /**
   * The client address that `maxConnectionsPerIp` counts, replacing the one
   * `trustProxy` finds (every connection is then counted). Use it for a proxy
   * that forwards the address in another header. @default the address `trustProxy` finds
   */
  clientAddress?: (request: IncomingMessage) => string;
  /**
   * Most documents one Hocuspocus socket may have open (or opening) at once; the
   * Auth of one more gets PermissionDenied `too-many-documents` (the socket's
   * other documents carry on). 0 = no limit. @default 100
   */
  maxDocumentsPerSocket?: number;
  /**
   * Most distinct documents one principal may have open on this node at once,
   * over all its connections: the authorizer's `AccessGrant.principal` (the JWT
   * authorizer's `sub`), else the client address (see `trustProxy`). Beyond, a
   * y-websocket upgrade gets HTTP 429 and a Hocuspocus Auth PermissionDenied
   * `too-many-documents`. 0 = no limit. @default 1000
   */
  maxDocumentsPerPrincipal?: number;
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

/**
 * Every transport option's default. `clientAddress` has none: unset, the address
 * comes from `trustProxy`.
 */
export type TransportDefaults = Required<Omit<TransportOptions, "clientAddress">>;

/** Transport options with every default filled in. */
export type ResolvedTransportOptions = TransportDefaults & Pick<TransportOptions, "clientAddress">;

export const TRANSPORT_DEFAULTS = Object.freeze({
  prefix: "/",
  hocuspocusPath: "/hocuspocus",
  maxPayloadBytes: 16 * 1024 * 1024,
  maxBufferedBytes: 32 * 1024 * 1024,
  maxPendingFrames: 1000,
  maxPendingBytes: 1024 * 1024,
  maxRefusedKeyBytes: 64 * 1024,
  authTimeoutMs: 10_000,
  keepAliveIntervalMs: 15_000,
  pingIntervalMs: 30_000,
  maxDocumentNameLength: 512,
  maxConnections: 10_000,
  maxConnectionsPerIp: 100,
  ipv6PrefixLength: 64,
  trustProxy: DEFAULT_TRUSTED_PROXIES,
  maxDocumentsPerSocket: 100,
  maxDocumentsPerPrincipal: 1000,
  allowedOrigins: Object.freeze<string[]>(["*"]),
  messageRate: 100,
  messageBurst: 300,
  maxThrottledMessages: 1000,
  maxAwarenessStateBytes: 16 * 1024,
} satisfies TransportDefaults);
