/**
 * The SQLite store's writer thread. It owns the connection that writes, so a
 * commit's fsync blocks this thread and never the server's event loop.
 *
 * Appends and epoch claims are group-committed across documents: every one that
 * arrived while the previous commit was running (one drain of the message port) is
 * written by a single IMMEDIATE transaction, so they share one fsync, and the group
 * grows with the load (a mass takeover claims dozens of documents at once). Each
 * keeps its own checks (a savepoint): a fenced append fails alone, and its
 * neighbours commit. Any other request first commits the writes queued before it,
 * so writes keep the order in which they were asked.
 */
import { parentPort, workerData } from "node:worker_threads";
import { SqliteDatabase } from "./sqlite-database.js";
import { READY_ID, toWire, type WriterReply, type WriterRequest } from "./writer-protocol.js";

type GroupedRequest = Extract<WriterRequest, { op: "append" | "claimEpoch" }>;

const port = parentPort;
if (!port) throw new Error("sqlite-writer runs as a worker thread of SqliteDocumentStore");
const { path, synchronous } = workerData as { path: string; synchronous: "full" | "normal" };
const db = new SqliteDatabase(path, synchronous);
let pending: GroupedRequest[] = [];
let flushScheduled = false;

const reply = (message: WriterReply): void => port.postMessage(message);

function flush(): void {
  flushScheduled = false;
  const group = pending;
  if (group.length === 0) return;
  pending = [];
  let outcomes;
  try {
    outcomes = db.writeGroup(group);
  } catch (error) {
    const wire = toWire(error);
    for (const request of group) reply({ id: request.id, error: wire });
    return;
  }
  group.forEach((request, i) => {
    const outcome = outcomes[i];
    if (outcome && "value" in outcome) reply({ id: request.id, value: outcome.value });
    else
      reply({ id: request.id, error: toWire(outcome?.error ?? new Error("group commit lost an outcome")) });
  });
}

function run(request: Exclude<WriterRequest, GroupedRequest>): unknown {
  switch (request.op) {
    case "saveSnapshot":
      return db.saveSnapshot(
        request.docId,
        request.epoch,
        request.state,
        request.uptoSeq,
        request.trimThrough,
      );
    case "commitOffset":
      return db.commitOffset(request.docId, request.epoch, request.consumer, request.seq);
    case "saveVersion":
      return db.saveVersion(request.docId, request.epoch, request.version);
    case "dropVersions":
      return db.dropVersions(request.docId, request.epoch, request.ids);
    case "delete":
      return db.delete(request.docId);
    case "ping":
      return db.ping();
    case "close":
      return db.close();
  }
}

port.on("message", (request: WriterRequest) => {
  if (request.op === "append" || request.op === "claimEpoch") {
    pending.push(request);
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flush);
    }
    return;
  }
  flush();
  try {
    reply({ id: request.id, value: run(request) });
  } catch (error) {
    reply({ id: request.id, error: toWire(error) });
  }
  if (request.op === "close") port.close();
});

reply({ id: READY_ID, value: null });
