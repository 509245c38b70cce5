import { createServer, connect, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";

/** The faults a {@link FaultProxy} can inject; `heal()` clears them all. */
export interface Faults {
  /** Delay added to every chunk in each direction, in ms. */
  latencyMs: number;
  /** New connections are reset at once (an unreachable server). */
  refuse: boolean;
  /** Connections are accepted and stay open but forward nothing (half-open). */
  stall: boolean;
  /** A connection is reset as soon as it sends a subscribe command (its server refuses subscribers). */
  refuseSubscribers: boolean;
  /** A connection goes half-open as soon as it sends a subscribe command. */
  stallSubscribers: boolean;
}

/** Which connections a fault hits. */
export interface FaultTarget {
  /**
   * Only connections that sent a Redis SUBSCRIBE, PSUBSCRIBE or SSUBSCRIBE (a
   * subscriber's link), not command connections. @default false (every connection)
   */
  subscribersOnly?: boolean;
}

interface Link {
  readonly client: Socket;
  readonly upstream: Socket;
  /**
   * Half-open: it forwards nothing, ever again (like a peer that vanished without a
   * FIN); when the client closes it, the server's end stays open until `close()`.
   */
  dead: boolean;
  /** The client ended a half-open link, whose server end stays open. */
  clientEnded?: boolean;
  /** It sent a subscribe command. */
  subscriber: boolean;
  /** The end of what it sent so far, so a command split across chunks is still seen. */
  tail: string;
}

/** A RESP command whose name is a subscribe (`*<n>\r\n$<len>\r\nSUBSCRIBE\r\n`), any case. */
const SUBSCRIBE_COMMAND = /\*\d+\r\n\$\d+\r\n[PS]?SUBSCRIBE\r\n/i;
/** Longer than any prefix of a subscribe command that a chunk may end with. */
const TAIL_CHARS = 32;

const HEALED: Readonly<Faults> = Object.freeze({
  latencyMs: 0,
  refuse: false,
  stall: false,
  refuseSubscribers: false,
  stallSubscribers: false,
});

/**
 * A TCP proxy between the code under test and a server (Redis, Postgres) that
 * injects faults on command: latency, reset connections, refuse new ones, stall
 * (half-open), heal. Every connection is its own pair of sockets, so a fault can
 * target one node's links by giving each node its own proxy.
 */
export class FaultProxy {
  private readonly links = new Set<Link>();
  private faults: Faults = { ...HEALED };
  private subscriberCount = 0;
  private subscriberEnds = 0;

  private constructor(
    private readonly server: Server,
    private readonly target: { host: string; port: number },
  ) {}

  /** Starts a proxy on a free loopback port in front of `target`. */
  static async start(target: { host?: string; port: number }): Promise<FaultProxy> {
    const server = createServer();
    const proxy = new FaultProxy(server, { host: target.host ?? "127.0.0.1", port: target.port });
    server.on("connection", (client: Socket) => proxy.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    return proxy;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Open proxied connections. */
  get connectionCount(): number {
    return this.links.size;
  }

  /** Connections that have sent a subscribe command so far (reconnects count again). */
  get subscribersSeen(): number {
    return this.subscriberCount;
  }

  /** Subscriber connections that have ended so far, whichever side ended them. */
  get subscribersEnded(): number {
    return this.subscriberEnds;
  }

  /** The local ports of the open subscriber links' Redis-side sockets (as `CLIENT LIST` shows them in `addr`). */
  subscriberUpstreamPorts(): number[] {
    return [...this.links]
      .filter((link) => link.subscriber && link.upstream.localPort !== undefined)
      .map((link) => link.upstream.localPort!);
  }

  /** Adds `ms` of latency to every chunk, both ways (0 removes it). */
  latency(ms: number): void {
    this.faults.latencyMs = ms;
  }

  /** Resets every open (targeted) connection (RST); new ones still connect unless refused. */
  reset(target: FaultTarget = {}): void {
    for (const link of this.targeted(target)) this.drop(link);
  }

  /**
   * Cuts the server off: resets open (targeted) connections and refuses new ones
   * until `heal()`. With `subscribersOnly`, other connections keep working and a
   * new one is reset when it sends a subscribe command.
   */
  cut(target: FaultTarget = {}): void {
    if (target.subscribersOnly) this.faults.refuseSubscribers = true;
    else this.faults.refuse = true;
    this.reset(target);
  }

  /**
   * Makes every open (targeted) connection half-open (it stays open and forwards
   * nothing, ever again), and new ones the same until `heal()` (with
   * `subscribersOnly`: once they send a subscribe command). The code under test
   * must notice and reconnect.
   */
  stall(target: FaultTarget = {}): void {
    if (target.subscribersOnly) this.faults.stallSubscribers = true;
    else this.faults.stall = true;
    for (const link of this.targeted(target)) link.dead = true;
  }

  /**
   * Stops reading from the server on the open (targeted) connections, so the
   * server's writes back up through TCP into its own output buffer (a slow
   * consumer); the proxy buffers nothing. `resume()` reads again.
   */
  pause(target: FaultTarget = {}): void {
    for (const link of this.targeted(target)) link.upstream.pause();
  }

  /** Reads from the server again on every open connection. */
  resume(): void {
    for (const link of this.links) link.upstream.resume();
  }

  /** Clears every fault for new connections (half-open ones stay dead, paused ones paused). */
  heal(): void {
    this.faults = { ...HEALED };
  }

  /** Resets every connection and stops listening. */
  async close(): Promise<void> {
    this.reset();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    if (this.faults.refuse) {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect(this.target.port, this.target.host);
    const link: Link = { client, upstream, dead: this.faults.stall, subscriber: false, tail: "" };
    this.links.add(link);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.on("data", (chunk: Buffer) => {
      if (!link.subscriber && this.watchForSubscribe(link, chunk)) return;
      this.forward(link, chunk, upstream);
    });
    upstream.on("data", (chunk: Buffer) => this.forward(link, chunk, client));
    const end = (): void => this.drop(link);
    // A half-open link is a partition: the client's FIN or RST never reaches the
    // server, which keeps its end (and, for a subscriber, its subscriptions) open.
    const clientEnd = (): void => {
      if (!link.dead) return this.drop(link);
      if (link.subscriber && !link.clientEnded) this.subscriberEnds += 1;
      link.clientEnded = true;
      resetOrDestroy(client);
    };
    client.on("error", clientEnd);
    client.on("close", clientEnd);
    upstream.on("error", end);
    upstream.on("close", end);
  }

  private targeted(target: FaultTarget): Link[] {
    return [...this.links].filter((link) => !target.subscribersOnly || link.subscriber);
  }

  /**
   * Marks `link` a subscriber when `chunk` (client to server) carries a subscribe
   * command, and applies the subscriber faults. True when the link was reset.
   */
  private watchForSubscribe(link: Link, chunk: Buffer): boolean {
    const seen = link.tail + chunk.toString("latin1");
    if (!SUBSCRIBE_COMMAND.test(seen)) {
      link.tail = seen.slice(-TAIL_CHARS);
      return false;
    }
    link.subscriber = true;
    link.tail = "";
    this.subscriberCount += 1;
    if (this.faults.refuseSubscribers) {
      this.drop(link);
      return true;
    }
    if (this.faults.stallSubscribers) link.dead = true;
    return false;
  }

  private forward(link: Link, chunk: Buffer, to: Socket): void {
    if (link.dead) return;
    if (this.faults.latencyMs > 0) {
      setTimeout(() => to.destroyed || to.write(chunk), this.faults.latencyMs);
      return;
    }
    to.write(chunk);
  }

  private drop(link: Link): void {
    if (!this.links.delete(link)) return;
    if (link.subscriber && !link.clientEnded) this.subscriberEnds += 1;
    resetOrDestroy(link.client);
    resetOrDestroy(link.upstream);
  }
}

/**
 * Resets `socket` (RST), or only destroys it once its write side has ended (the
 * peer's FIN makes Node end it too). A reset while that shutdown is pending fails
 * (EINVAL) yet leaves the handle marked closing, never closed: Node 20 then spins
 * at exit (100% CPU, after the `exit` event) and mocha never returns.
 */
function resetOrDestroy(socket: Socket): void {
  if (socket.writableEnded) socket.destroy();
  else socket.resetAndDestroy();
}
