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
}

interface Link {
  readonly client: Socket;
  readonly upstream: Socket;
  /** Half-open: it forwards nothing, ever again (like a peer that vanished without a FIN). */
  dead: boolean;
}

/**
 * A TCP proxy between the code under test and a server (Redis, Postgres) that
 * injects faults on command: latency, reset connections, refuse new ones, stall
 * (half-open), heal. Every connection is its own pair of sockets, so a fault can
 * target one node's links by giving each node its own proxy.
 */
export class FaultProxy {
  private readonly links = new Set<Link>();
  private faults: Faults = { latencyMs: 0, refuse: false, stall: false };

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

  /** Adds `ms` of latency to every chunk, both ways (0 removes it). */
  latency(ms: number): void {
    this.faults.latencyMs = ms;
  }

  /** Resets every open connection (RST); new ones still connect unless `refuse()` is on. */
  reset(): void {
    for (const link of this.links) this.drop(link);
  }

  /** Cuts the server off: resets open connections and refuses new ones until `heal()`. */
  cut(): void {
    this.faults.refuse = true;
    this.reset();
  }

  /**
   * Makes every open connection half-open (it stays open and forwards nothing,
   * ever again), and accepts new ones in the same state until `heal()`. The code
   * under test must notice and reconnect.
   */
  stall(): void {
    this.faults.stall = true;
    for (const link of this.links) link.dead = true;
  }

  /** Clears every fault for new connections (half-open ones stay dead). */
  heal(): void {
    this.faults = { latencyMs: 0, refuse: false, stall: false };
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
    const link: Link = { client, upstream, dead: this.faults.stall };
    this.links.add(link);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.on("data", (chunk: Buffer) => this.forward(link, chunk, upstream));
    upstream.on("data", (chunk: Buffer) => this.forward(link, chunk, client));
    const end = (): void => this.drop(link);
    for (const socket of [client, upstream]) {
      socket.on("error", end);
      socket.on("close", end);
    }
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
    link.client.resetAndDestroy();
    link.upstream.resetAndDestroy();
  }
}
