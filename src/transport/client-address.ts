import type { IncomingMessage } from "node:http";
import proxyaddr from "proxy-addr";
import { ErrorCodes, OpStreamError } from "../errors.js";
import { addressKey } from "./address-key.js";

/**
 * Peers trusted to forward the client's address by default (`transport.trustProxy`):
 * the same host and the private networks, where reverse proxies and cloud load
 * balancers reach a node from. Such a peer that forges `X-Forwarded-For` can only
 * move its own connections between per-address buckets; a public peer's header is
 * never believed.
 */
export const DEFAULT_TRUSTED_PROXIES: readonly string[] = Object.freeze([
  "loopback",
  "linklocal",
  "uniquelocal",
]);

/** Where a connection comes from, as the connection caps and the logs see it. */
export interface ClientOrigin {
  /**
   * The client's address: the one a trusted proxy forwarded in `X-Forwarded-For`,
   * else the socket's peer (or what a custom `transport.clientAddress` returned).
   */
  readonly address: string;
  /** The socket's peer address (the proxy's, behind one). */
  readonly peer: string;
  /** The key `address` is counted under ({@link addressKey}: an IPv6 address by its prefix). */
  readonly key: string;
  /**
   * Whether `maxConnectionsPerIp` counts the connection. Not when a trusted peer
   * forwarded no address: a proxy's or the node's own neighbour (a test rig, a
   * server-side client), bounded by `maxConnections` and every other limit only.
   */
  readonly capped: boolean;
}

/** The log fields naming a connection's origin: `clientAddress`, and `peerAddress` when it differs. */
export function originFields(origin: ClientOrigin): { clientAddress: string; peerAddress?: string } {
  return origin.peer === origin.address
    ? { clientAddress: origin.address }
    : { clientAddress: origin.address, peerAddress: origin.peer };
}

/**
 * Finds each upgrade's {@link ClientOrigin}. By default the address is read the
 * way express's `trust proxy` reads it (the proxy-addr package): walking
 * `X-Forwarded-For` from the right, starting at the socket's peer, past every
 * trusted hop, to the first untrusted address (or the leftmost one when all are
 * trusted). A custom `clientAddress` replaces that and is always counted.
 */
export class ClientAddresses {
  private readonly trust: (address: string, hop: number) => boolean;

  constructor(
    trustProxy: readonly string[] | false,
    private readonly ipv6PrefixLength: number,
    private readonly custom: ((request: IncomingMessage) => string) | undefined,
  ) {
    this.trust = compileTrust(trustProxy);
  }

  of(request: IncomingMessage): ClientOrigin {
    const peer = request.socket.remoteAddress ?? "unknown";
    if (this.custom) {
      const address = this.custom(request);
      return { address, peer, key: addressKey(address, this.ipv6PrefixLength), capped: true };
    }
    // [peer, ...the trusted hops, client]: proxy-addr stops at the first untrusted one.
    const hops = proxyaddr.all(request, this.trust);
    const address = hops[hops.length - 1] ?? peer;
    const capped = hops.length > 1 || !this.trust(peer, 0);
    return { address, peer, key: addressKey(address, this.ipv6PrefixLength), capped };
  }
}

/**
 * The trust test of `transport.trustProxy` (addresses, CIDRs, `loopback`,
 * `linklocal`, `uniquelocal`; false or [] trusts no peer); throws
 * OpStreamError(INVALID_OPTION) on an entry proxy-addr cannot parse.
 */
export function compileTrust(
  trustProxy: readonly string[] | false,
): (address: string, hop: number) => boolean {
  // Checked again at run time: JavaScript callers (and environment-built options) may pass a string.
  const list = trustProxy === false ? [] : stringList(trustProxy);
  if (list === undefined) throw invalidTrust(trustProxy, "a list of addresses, CIDRs and names, or false");
  try {
    // [] compiles to "trust nobody" (a falsy argument would make proxy-addr trust everyone).
    return proxyaddr.compile(list);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw invalidTrust(
      trustProxy,
      `addresses or CIDRs like "10.0.0.0/8", or loopback, linklocal, uniquelocal (${reason})`,
    );
  }
}

function stringList(value: unknown): string[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const entries: unknown[] = value;
  return entries.every((entry): entry is string => typeof entry === "string") ? entries : undefined;
}

function invalidTrust(value: unknown, want: string): OpStreamError {
  return new OpStreamError(
    ErrorCodes.INVALID_OPTION,
    `transport.trustProxy must be ${want}; got ${JSON.stringify(value)}.`,
    { option: "transport.trustProxy", value },
  );
}
