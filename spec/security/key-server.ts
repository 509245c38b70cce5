// A node in a process of its own, so that its resident memory is the server's
// alone (the attacking sockets run in the spec's process). Started as
//
//   fork("spec/security/key-server.ts", [JSON.stringify(transportOptions)],
//        { execArgv: ["--import", "tsx", "--expose-gc"] })
//
// with JWT authorization (spec/support/tokens.ts's secret), as `opstream serve
// --jwt-secret` runs: a socket without a token is denied every document. It sends
// `{ type: "listening", port }` once it listens, then answers `{ type: "rss" }`
// with the resident set size after two full garbage collections.
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { ServiceCollection, type TransportOptions } from "../../src/index.js";
import { JWT_SECRET } from "../support/tokens.js";

export type KeyServerReply = { type: "listening"; port: number } | { type: "rss"; rss: number };

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --expose-gc");
const transport = JSON.parse(process.argv[2] ?? "{}") as TransportOptions;

const services = new ServiceCollection();
services
  .addOpStream({ processMetrics: false, transport })
  .useLogger(pino({ level: process.env.OPSTREAM_LOG_LEVEL ?? "silent" }))
  .useMemoryStorage()
  .useJwtAuthorization({ secret: JWT_SECRET });
const host = services.build();

process.on("message", (request: { type: "rss" }) => {
  if (request.type !== "rss") return;
  gc();
  // A second collection after a turn frees what the first one's finalizers released.
  setImmediate(() => {
    gc();
    process.send!({ type: "rss", rss: process.memoryUsage().rss } satisfies KeyServerReply);
  });
});
process.once("disconnect", () => {
  host.shutdown({ drainTimeoutMs: 1000 }).then(
    () => process.exit(0),
    () => process.exit(1),
  );
});

const server = await host.listen(0, { host: "127.0.0.1" });
process.send!({ type: "listening", port: (server.address() as AddressInfo).port } satisfies KeyServerReply);
