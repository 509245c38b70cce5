import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import {
  ServiceCollection,
  type OpStreamBuilder,
  type OpStreamHost,
  type OpStreamOptions,
} from "../../src/index.js";

export interface TestServer {
  readonly host: OpStreamHost;
  readonly server: Server;
  readonly port: number;
  /** `ws://127.0.0.1:<port>` (append the prefix for a provider's serverUrl). */
  readonly url: string;
  stop(): Promise<void>;
}

/** A silent logger for specs (set OPSTREAM_LOG_LEVEL to see logs). */
export const testLogger = () => pino({ level: process.env.OPSTREAM_LOG_LEVEL ?? "silent" });

/** Starts a real opstream node on a free port. `configure` adds use*() calls (memory storage by default). */
export async function startServer(
  configure: (builder: OpStreamBuilder) => void = (b) => b.useMemoryStorage(),
  options: OpStreamOptions = {},
): Promise<TestServer> {
  const services = new ServiceCollection();
  const builder = services.addOpStream({ processMetrics: false, ...options }).useLogger(testLogger());
  configure(builder);
  const host = services.build();
  const server = await host.listen(0, { host: "127.0.0.1" });
  const { port } = server.address() as AddressInfo;
  return {
    host,
    server,
    port,
    url: `ws://127.0.0.1:${port}`,
    stop: () => host.shutdown({ drainTimeoutMs: 5000 }),
  };
}
