// An opstream node in a process of its own, so that its resident memory is the
// server's alone (attackers and honest clients run in the spec's process).
// Started by `SecurityNode.start(config)` (security-node.ts) as
//
//   fork("spec/security/node-process.ts", [JSON.stringify(config)], { execArgv: ["--import", "tsx", "--expose-gc"] })
//
// It authorizes with JWTs (spec/support/tokens.ts's secret), as `opstream serve
// --jwt-secret` does: a socket without a token is denied every document. With
// `config.tenants` the tenant is the `tenant` query parameter. Storage is SQLite
// at `config.sqlitePath`, else memory. It sends `{ type: "listening", port }`
// once it listens, then answers IPC requests:
// `{ type: "rss" }` → the resident set size after two full garbage collections;
// `{ type: "stored" }` → every stored document with its text and state vector,
// read from storage (what is durable), not from memory.
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import * as Y from "yjs";
import { ServiceCollection } from "../../src/index.js";
import { JWT_SECRET } from "../support/tokens.js";
import type { NodeConfig, NodeReply, NodeRequest, StoredDoc } from "./security-node.js";

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --expose-gc");
const config = JSON.parse(process.argv[2] ?? "{}") as NodeConfig;

const services = new ServiceCollection();
const builder = services
  .addOpStream({ processMetrics: false, transport: config.transport ?? {}, sessions: config.sessions ?? {} })
  .useLogger(pino({ level: process.env.OPSTREAM_LOG_LEVEL ?? "silent" }))
  .useJwtAuthorization({ secret: JWT_SECRET });
if (config.sqlitePath) builder.useSqliteStorage({ path: config.sqlitePath, writerThread: false });
else builder.useMemoryStorage();
if (config.tenants) {
  builder.useTenantResolver(
    (request) => new URL(request.url ?? "/", "http://localhost").searchParams.get("tenant") ?? undefined,
  );
}
const host = services.build();

async function stored(): Promise<StoredDoc[]> {
  const docs: StoredDoc[] = [];
  for (const id of await host.store.list()) {
    const { snapshot, ops } = await host.store.load(id);
    const doc = new Y.Doc();
    if (snapshot) Y.applyUpdate(doc, snapshot.state);
    for (const op of ops) Y.applyUpdate(doc, op.update);
    docs.push({
      id,
      text: doc.getText("text").toString(),
      stateVector: Buffer.from(Y.encodeStateVector(doc)).toString("base64"),
    });
    doc.destroy();
  }
  return docs;
}

async function answer(request: NodeRequest): Promise<NodeReply> {
  switch (request.type) {
    case "rss":
      gc!();
      // A second collection after a turn frees what the first one's finalizers released.
      await new Promise((resolve) => setImmediate(resolve));
      gc!();
      return { type: "rss", rss: process.memoryUsage().rss };
    case "stored":
      return { type: "stored", docs: await stored() };
  }
}

process.on("message", (request: NodeRequest) => {
  answer(request).then(
    (reply) => process.send!(reply),
    (error: unknown) => process.send!({ type: "error", message: String(error) } satisfies NodeReply),
  );
});
process.once("disconnect", () => {
  host.shutdown({ drainTimeoutMs: 1000 }).then(
    () => process.exit(0),
    () => process.exit(1),
  );
});

const server = await host.listen(0, { host: "127.0.0.1" });
process.send!({ type: "listening", port: (server.address() as AddressInfo).port } satisfies NodeReply);
