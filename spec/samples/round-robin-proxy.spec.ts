// The cluster sample's load balancer over real TCP servers: it takes turns, and a
// backend that refuses connections (a killed node) is skipped, not handed the client.
import { strict as assert } from "node:assert";
import { createServer as createHttpServer } from "node:http";
import { connect, createServer, type AddressInfo, type Server } from "node:net";
import { eventually } from "../support/eventually.js";
import { RoundRobinProxy, type Backend } from "../../samples/cluster/round-robin-proxy.js";

/** A TCP server that greets each connection with its name and closes it. */
async function greeter(name: string): Promise<Server> {
  const server = createServer((socket) => socket.end(name));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return server;
}

function backendOf(server: Server): Backend {
  return { host: "127.0.0.1", port: (server.address() as AddressInfo).port };
}

/** A loopback port nobody listens on: connections to it are refused. */
async function refusingBackend(): Promise<Backend> {
  const server = await greeter("never");
  const backend = backendOf(server);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return backend;
}

/** Connects through `proxy` and resolves with everything received, or "closed: <error code>". */
function fetchGreeting(proxy: RoundRobinProxy): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(proxy.port, "127.0.0.1");
    let received = "";
    socket.on("data", (chunk: Buffer) => (received += chunk.toString()));
    socket.on("error", (error: NodeJS.ErrnoException) => resolve(`closed: ${error.code ?? error.message}`));
    socket.on("close", () => resolve(received));
  });
}

describe("RoundRobinProxy (samples/cluster)", () => {
  const servers: Server[] = [];
  let proxy: RoundRobinProxy | undefined;

  /** A proxy over greeters named by `backends`; "refused" stands for a backend that is down. */
  async function start(...backends: string[]): Promise<RoundRobinProxy> {
    const resolved = await Promise.all(
      backends.map(async (backend) => {
        if (backend === "refused") return refusingBackend();
        const server = await greeter(backend);
        servers.push(server);
        return backendOf(server);
      }),
    );
    proxy = await RoundRobinProxy.start(resolved);
    return proxy;
  }

  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    await Promise.all(
      servers.splice(0).map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
    );
  });

  it("sends consecutive connections to consecutive backends", async () => {
    const started = await start("a", "b", "c");
    const greetings: string[] = [];
    for (let i = 0; i < 6; i++) greetings.push(await fetchGreeting(started));
    assert.deepEqual(greetings, ["a", "b", "c", "a", "b", "c"]);
  });

  it("skips a backend that refuses the connection and serves the client from the next one", async () => {
    const started = await start("a", "refused", "c");
    const greetings: string[] = [];
    for (let i = 0; i < 6; i++) greetings.push(await fetchGreeting(started));
    assert.deepEqual(greetings, ["a", "c", "a", "c", "a", "c"]);
  });

  it("with a health path, sends no new connection to a backend whose check fails, until it passes again", async () => {
    // Each backend answers HTTP: GET /readyz with its health, any other request with its name.
    const health = new Map<string, number>([
      ["a", 200],
      ["b", 503],
      ["c", 200],
    ]);
    const backends = await Promise.all(
      [...health.keys()].map(async (name) => {
        const server = createHttpServer((request, response) => {
          response.statusCode = request.url === "/readyz" ? health.get(name)! : 200;
          response.end(name);
        });
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        servers.push(server);
        return backendOf(server);
      }),
    );
    proxy = await RoundRobinProxy.start(backends, 0, "127.0.0.1", {
      healthPath: "/readyz",
      healthIntervalMs: 50,
    });
    const names = async (n: number): Promise<string[]> => {
      const got: string[] = [];
      for (let i = 0; i < n; i++) {
        const response = await fetch(`http://127.0.0.1:${proxy!.port}/`, {
          headers: { connection: "close" },
        });
        got.push(await response.text());
      }
      return got;
    };
    assert.deepEqual([...new Set(await names(6))].sort(), ["a", "c"], "the unhealthy backend gets nobody");
    health.set("b", 200);
    await eventually(async () => assert.ok((await names(3)).includes("b"), "b is back in turn"), 2000);
  });

  it("closes the client when every backend refuses", async () => {
    const started = await start("refused", "refused");
    assert.equal(await fetchGreeting(started), "");
  });
});
