import { connect, createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";

/** A backend the proxy can send connections to. */
export interface Backend {
  readonly host: string;
  readonly port: number;
}

/**
 * A non-sticky TCP load balancer: each new connection goes to the next backend in
 * turn, skipping one that refuses the connection. Plain TCP, so HTTP and WebSocket
 * upgrades pass through untouched — like a cloud load balancer without affinity.
 */
export class RoundRobinProxy {
  private next = 0;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    private readonly backends: readonly Backend[],
  ) {}

  static async start(backends: readonly Backend[], port = 0, host = "127.0.0.1"): Promise<RoundRobinProxy> {
    const server = createServer();
    const proxy = new RoundRobinProxy(server, backends);
    server.on("connection", (client: Socket) => proxy.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolve());
    });
    return proxy;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    this.track(client);
    // An error on either end destroys it; its "close" then closes the other end.
    client.on("error", () => client.destroy());
    this.route(client, 0);
  }

  /** Connects `client` to the next backend, after `tried` backends refused it. */
  private route(client: Socket, tried: number): void {
    const backend = this.backends[this.next++ % this.backends.length];
    if (!backend || tried >= this.backends.length || client.destroyed) {
      client.destroy();
      return;
    }
    const upstream = connect(backend.port, backend.host);
    const abandon = (): void => void upstream.destroy();
    client.once("close", abandon);
    // Refused or unreachable (a node that is down): try the next backend. Only the
    // failed upstream goes: its "close" must not take the client with it, which is
    // why the close handlers below are installed only once it has connected.
    const skip = (): void => {
      client.off("close", abandon);
      upstream.destroy();
      this.route(client, tried + 1);
    };
    upstream.once("error", skip);
    upstream.once("connect", () => {
      upstream.off("error", skip);
      upstream.on("error", () => upstream.destroy());
      upstream.once("close", () => client.destroy());
      this.track(upstream);
      client.pipe(upstream).pipe(client);
    });
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
  }
}
