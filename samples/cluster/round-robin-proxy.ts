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
    server.on("connection", (client: Socket) => proxy.route(client, 0));
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

  private route(client: Socket, tried: number): void {
    const backend = this.backends[this.next++ % this.backends.length];
    if (!backend || tried >= this.backends.length) {
      client.destroy();
      return;
    }
    const upstream = connect(backend.port, backend.host);
    let connected = false;
    upstream.once("connect", () => {
      connected = true;
      this.track(client);
      this.track(upstream);
      client.pipe(upstream).pipe(client);
    });
    upstream.once("error", () => {
      // A backend that is down: try the next one; once connected, just drop both ends.
      if (!connected) this.route(client, tried + 1);
      else client.destroy();
    });
    client.once("error", () => upstream.destroy());
    client.once("close", () => upstream.destroy());
    upstream.once("close", () => client.destroy());
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
  }
}
