// A writer that compaction-crash.spec.ts kills with SIGKILL at random moments.
//
//   node --import tsx spec/storage/compaction-child.ts sqlite:<path> [compactEvery]
//   node --import tsx spec/storage/compaction-child.ts postgres:<connectionString>#<schema> [compactEvery]
//
// It opens one real DocumentSession for document "crash" whose snapshot policy
// (the engine's own, driven by its scheduler) snapshots and trims the log after
// every `compactEvery` ops (default 2), so a kill often lands inside a compaction.
// It prints "ready", then appends the tokens "t0;", "t1;", … to the Y.Text "text"
// one at a time and prints each token's name ("t0", "t1", …) on its own line once
// its `apply` resolved (= it is durable). It runs until it is killed; a failure
// is printed on stderr and ends the process with a non-zero code.
import { pino } from "pino";
import * as Y from "yjs";
import {
  HybridSnapshotPolicy,
  PostgresDocumentStore,
  SqliteDocumentStore,
  type DocumentStore,
} from "../../src/index.js";
import { DocumentSession } from "../../src/engine/document-session.js";
import { insertUpdate, sessionDeps } from "../support/engine.js";

const DOC_ID = "crash";

// Warnings and errors (a failed snapshot is only logged by the session) go to
// stderr, where the spec looks; stdout carries nothing but "ready" and tokens.
const logger = pino({ level: "warn" }, pino.destination(2));

function openStore(target: string): DocumentStore {
  if (target.startsWith("sqlite:")) return new SqliteDocumentStore({ path: target.slice("sqlite:".length) });
  if (target.startsWith("postgres:")) {
    const rest = target.slice("postgres:".length);
    const hash = rest.lastIndexOf("#");
    if (hash <= 0) throw new Error(`expected postgres:<connectionString>#<schema>, got "${target}"`);
    return new PostgresDocumentStore({
      connectionString: rest.slice(0, hash),
      schema: rest.slice(hash + 1),
      logger,
    });
  }
  throw new Error(`expected sqlite:<path> or postgres:<connectionString>#<schema>, got "${target}"`);
}

const [target, compactEvery = "2"] = process.argv.slice(2);
if (target === undefined) {
  throw new Error("usage: compaction-child.ts <sqlite:path | postgres:url#schema> [compactEvery]");
}

const deps = await sessionDeps(DOC_ID, {
  store: openStore(target),
  snapshotPolicy: new HybridSnapshotPolicy({ maxOps: Number(compactEvery) }),
  logger,
});
const session = await DocumentSession.open(DOC_ID, deps);
process.stdout.write("ready\n");

const source = new Y.Doc();
const text = source.getText("text");
for (let n = 0; ; n++) {
  await session.apply(insertUpdate(source, text.length, `t${n};`), { kind: "server" });
  process.stdout.write(`t${n}\n`);
  // better-sqlite3 settles every promise in microtasks; yield to the event loop as a
  // server would between requests, so stdout drains and the scheduler's timers run.
  await new Promise((resolve) => setImmediate(resolve));
}
