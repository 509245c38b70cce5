import { connect, createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";

/** A backend the proxy can send connections to. */
export interface Backend {
  readonly host: string;
  readonly port: number;
}

/** Options of {@link RoundRobinProxy.start}. */
export interface ProxyOptions {
  /**
   * An HTTP path each backend answers 200 on while it takes clients (opstream:
   * `/readyz`). Checked every `healthIntervalMs`; a backend that answers
   * otherwise, or not within the interval (a hung process, one draining on
   * SIGTERM), gets no new connection until it answers 200 again. @default none (no checks)
   */
  readonly healthPath?: string;
  /** Period (and timeout) of the health checks. @default 500 */
  readonly healthIntervalMs?: number;
}

/**
 * A non-sticky TCP load balancer: each new connection goes to the next backend in
 * turn, skipping one that refuses the connection (a killed node) and, with a
 * `healthPath`, one that fails its health check (a hung or draining node), so a
 * client whose node died is put on a live one at its first reconnect. Plain TCP,
 * so HTTP and WebSocket upgrades pass through untouched — like a cloud load
 * balancer without affinity.
 */
export class RoundRobinProxy {
  private next = 0;
  private readonly sockets = new Set<Socket>();
  /** Backends whose last health check failed. */
  private readonly unhealthy = new Set<Backend>();
  private healthTimer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly server: Server,
    private readonly backends: readonly Backend[],
  ) {}

  static async start(
    backends: readonly Backend[],
    port = 0,
    host = "127.0.0.1",
    options: ProxyOptions = {},
  ): Promise<RoundRobinProxy> {
    const server = createServer();
    const proxy = new RoundRobinProxy(server, backends);
    if (options.healthPath !== undefined) {
      const path = options.healthPath;
      const intervalMs = options.healthIntervalMs ?? 500;
      proxy.healthTimer = setInterval(() => void proxy.checkHealth(path, intervalMs), intervalMs);
      proxy.healthTimer.unref();
      await proxy.checkHealth(path, intervalMs);
    }
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
    clearInterval(this.healthTimer);
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    this.track(client);
    // An error on either end destroys it; its "close" then closes the other end.
    client.on("error", () => client.destroy());
    this.route(client, 0);
  }

  /** Asks every backend's health path at once; marks those that do not answer 200 in time. */
  private async checkHealth(path: string, timeoutMs: number): Promise<void> {
    await Promise.all(
      this.backends.map(async (backend) => {
        let healthy: boolean;
        try {
          const response = await fetch(`http://${backend.host}:${backend.port}${path}`, {
            signal: AbortSignal.timeout(timeoutMs),
          });
          healthy = response.ok;
          await response.body?.cancel();
        } catch {
          healthy = false;
        }
        if (healthy) this.unhealthy.delete(backend);
        else this.unhealthy.add(backend);
      }),
    );
  }

  /** Connects `client` to the next backend, after `tried` backends refused it. */
  private route(client: Socket, tried: number): void {
    if (!(tried >= this.backends.length || client.destroyed)) {
      // Healthy backends first; when none is, every backend is tried in turn.
      const healthy = this.backends.length - this.unhealthy.size;
      for (let skipped = 0; healthy > 0 && skipped < this.backends.length; skipped++) {
        const candidate = this.backends[this.next % this.backends.length];
        if (candidate && !this.unhealthy.has(candidate)) break;
        this.next++;
      }
    }
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
