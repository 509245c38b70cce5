// The node the adversarial suite attacks, in a process of its own so that its
// resident memory is the server's alone (the attackers and honest clients run in
// the spec's process).
//
//   fork("spec/security/adversary-server.ts", [sqlitePath], { execArgv: ["--import", "tsx", "--expose-gc"] })
//
// Configuration: JWT authorization (spec/support/tokens.ts's secret), the tenant
// from the `tenant` query parameter, SQLite storage at argv[2], and the limits
// the suite's bounds are computed from (ADVERSARY_LIMITS). It sends
// `{ type: "listening", port }` once it listens, then answers IPC requests:
// `{ type: "rss" }` → the resident set size after two full garbage collections;
// `{ type: "stored" }` → every stored document with its text and state vector,
// read from storage (what is durable), not from memory.
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import * as Y from "yjs";
import { ServiceCollection } from "../../src/index.js";
import { JWT_SECRET } from "../support/tokens.js";
import { ADVERSARY_LIMITS, type AdversaryReply, type AdversaryRequest, type StoredDoc } from "./limits.js";

const path = process.argv[2];
if (!path) throw new Error("usage: adversary-server.ts <sqlite path>");
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --expose-gc");

const services = new ServiceCollection();
services
  .addOpStream({
    processMetrics: false,
    transport: ADVERSARY_LIMITS.transport,
    sessions: ADVERSARY_LIMITS.sessions,
  })
  .useLogger(pino({ level: process.env.OPSTREAM_LOG_LEVEL ?? "silent" }))
  .useSqliteStorage({ path, writerThread: false })
  .useJwtAuthorization({ secret: JWT_SECRET })
  .useTenantResolver(
    (request) => new URL(request.url ?? "/", "http://localhost").searchParams.get("tenant") ?? undefined,
  );
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

async function answer(request: AdversaryRequest): Promise<AdversaryReply> {
  switch (request.type) {
    case "rss":
      gc!();
      await new Promise((resolve) => setImmediate(resolve));
      gc!();
      return { type: "rss", rss: process.memoryUsage().rss };
    case "stored":
      return { type: "stored", docs: await stored() };
  }
}

process.on("message", (request: AdversaryRequest) => {
  answer(request).then(
    (reply) => process.send!(reply),
    (error: unknown) => process.send!({ type: "error", message: String(error) } satisfies AdversaryReply),
  );
});
process.once("disconnect", () => {
  host.shutdown({ drainTimeoutMs: 1000 }).then(
    () => process.exit(0),
    () => process.exit(1),
  );
});

const server = await host.listen(0, { host: "127.0.0.1" });
process.send!({ type: "listening", port: (server.address() as AddressInfo).port } satisfies AdversaryReply);
