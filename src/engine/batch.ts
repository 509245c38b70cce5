import * as Y from "yjs";
import type { OpStreamMetrics } from "../metrics.js";
import type { ApplyTask, BatchTask } from "./apply-queue.js";
import { isProducer, type Origin } from "./origin.js";
import type { PendingBudget } from "./pending-budget.js";
import { invalidUpdate, rejection } from "./session-errors.js";
import { checkUpdate } from "./update-check.js";
import type { Validator } from "./validation.js";

/** One effective change captured from Yjs's `update` event, and the task it belongs to. */
export interface Captured {
  update: Uint8Array;
  origin: Origin;
  task: ApplyTask | undefined;
}

/**
 * Records the changes producers make to one document while recording is on.
 * Yjs emits `update` only when a transaction changed something (new structs or
 * new deletions), with exactly the integrated change: that is what gets stored.
 */
export class ChangeRecorder {
  private into: Captured[] | null = null;
  private task: ApplyTask | undefined;
  private readonly listener = (update: Uint8Array, origin: unknown): void => {
    if (this.into && isOrigin(origin) && isProducer(origin)) {
      this.into.push({ update, origin, task: this.task });
    }
  };

  constructor(private readonly doc: Y.Doc) {
    doc.on("update", this.listener);
  }

  /**
   * Runs `apply` without Yjs encoding its transaction's update for the recorder
   * (Yjs encodes one only while an `update` listener exists): for a change the
   * caller records itself.
   */
  unrecorded(apply: () => void): void {
    this.doc.off("update", this.listener);
    try {
      apply();
    } finally {
      this.doc.on("update", this.listener);
    }
  }

  /** Records every change from now on into `into`, tagged with `task`, until {@link stop}. */
  start(into: Captured[], task?: ApplyTask): void {
    this.into = into;
    this.task = task;
  }

  stop(): void {
    this.into = null;
    this.task = undefined;
  }
}

/** What applying a batch needs from its session; built once per session. */
export interface BatchContext {
  readonly docId: string;
  readonly doc: Y.Doc;
  readonly validators: readonly Validator[];
  readonly metrics: OpStreamMetrics;
  readonly recorder: ChangeRecorder;
  readonly pendingBudget: PendingBudget;
}

/**
 * Validates and applies each update of `batch` in order, recording what changed
 * into `captured` and each refused update's error into `failures`.
 */
export async function applyBatch(
  batch: readonly BatchTask[],
  context: BatchContext,
  captured: Captured[],
  failures: Map<ApplyTask, unknown>,
): Promise<void> {
  const { docId, doc, metrics, recorder } = context;
  for (const task of batch) {
    if (task.kind !== "apply") continue;
    try {
      for (const validate of context.validators) await validate(task.update, { docId, origin: task.origin });
    } catch (error) {
      failures.set(task, rejection(error, docId));
      metrics.updatesRejected.inc({ reason: "validator" });
      continue;
    }
    recorder.start(captured, task);
    let span: UpdateSpan | undefined;
    let failed = false;
    try {
      // Structure and declared counts first: crafted input must not reach Yjs's decoder.
      checkUpdate(task.update);
      span = startsWhereDocumentIs(doc, task.update);
      if (span) recorder.unrecorded(() => Y.applyUpdate(doc, task.update, task.origin));
      else Y.applyUpdate(doc, task.update, task.origin);
    } catch (error) {
      // Whatever Yjs integrated before it threw was captured and is stored with
      // the batch, so the document in memory never differs from the log.
      failed = true;
      failures.set(task, invalidUpdate(error, docId));
      metrics.updatesRejected.inc({ reason: "invalid" });
    } finally {
      recorder.stop();
    }
    const change = span && changeOf(doc, task.update, span, failed);
    if (change) captured.push({ update: change, origin: task.origin, task });
    const overBudget = context.pendingBudget.enforce(docId);
    if (overBudget && !failures.has(task)) {
      failures.set(task, overBudget);
      metrics.updatesRejected.inc({ reason: "pending-budget" });
    }
  }
}

/**
 * The start clock of each client in `update` when every one is exactly the
 * document's clock for that client and nothing is pending in the document: then
 * applying it integrates all of it (unless it is malformed or has a hole), and the
 * update is its own change, recorded as is. Undefined otherwise, and the change is
 * recorded from Yjs's `update` event.
 *
 * Why: Yjs encodes that event by writing each changed item from an offset, and an
 * item a client keeps appending to (typing) is one merged string that the write
 * copies whole, a copy per keystroke growing with the run: a quarter of the CPU of
 * a busy document, and as much again in garbage collection.
 */
function startsWhereDocumentIs(doc: Y.Doc, update: Uint8Array): UpdateSpan | undefined {
  const store = doc.store;
  if (store.pendingStructs !== null || store.pendingDs !== null) return undefined;
  const span = Y.parseUpdateMeta(update);
  if (span.from.size === 0) return undefined; // deletions only: Yjs says which were new
  for (const [client, clock] of span.from) if (Y.getState(store, client) !== clock) return undefined;
  return span;
}

/** Each client's first clock in an update, and the clock after its last struct. */
interface UpdateSpan {
  readonly from: Map<number, number>;
  readonly to: Map<number, number>;
}

/**
 * What applying `update` (which started where the document was, `span`) changed:
 * the update itself when all of it integrated; nothing when it threw before any of
 * its structs did (Yjs applies an update's deletions after its structs); else
 * everything integrated since `span.from`, with the document's delete set, which
 * holds every deletion it made (applying deletions again changes nothing).
 */
function changeOf(doc: Y.Doc, update: Uint8Array, span: UpdateSpan, failed: boolean): Uint8Array | undefined {
  const store = doc.store;
  const at = (clocks: Map<number, number>): boolean =>
    [...clocks].every(([client, clock]) => Y.getState(store, client) === clock);
  if (!failed && store.pendingStructs === null && store.pendingDs === null && at(span.to)) return update;
  if (failed && at(span.from)) return undefined;
  const before = Y.decodeStateVector(Y.encodeStateVector(doc));
  for (const [client, clock] of span.from) before.set(client, clock);
  return Y.encodeStateAsUpdate(doc, Y.encodeStateVector(before));
}

/**
 * Settles every task of a batch once its op is durable and fanned out: reads run,
 * refused updates reject, contributing ones resolve with the op's `seq`, and the
 * rest resolve with null (true no-ops).
 */
export function settleBatch(
  batch: readonly BatchTask[],
  captured: readonly Captured[],
  failures: ReadonlyMap<ApplyTask, unknown>,
  seq: number | null,
  metrics: OpStreamMetrics,
): void {
  const applied = new Set<ApplyTask>();
  for (const change of captured) if (change.task) applied.add(change.task);
  for (const task of batch) {
    if (task.kind === "read") task.run();
    else if (task.kind === "apply") {
      const failure = failures.get(task);
      if (failure !== undefined) task.reject(failure);
      else if (applied.has(task)) task.resolve(seq);
      else {
        metrics.updatesNoop.inc();
        task.resolve(null);
      }
    }
  }
}

/** The batch's changes as one op (the only change as is, without re-encoding it). */
export function mergeCaptured(captured: readonly Captured[]): Uint8Array {
  const [only] = captured;
  return captured.length === 1 && only ? only.update : Y.mergeUpdates(captured.map((c) => c.update));
}

/**
 * The peer every change of a batch came from, whose frame is then not sent back to
 * it; undefined when several peers (or the server) contributed. A peer then gets its
 * own changes back inside the merged op: Yjs ignores what a document already holds,
 * as it does for the same echo from a relay.
 */
export function soleSender(captured: readonly Captured[]): string | undefined {
  let sender: string | undefined;
  for (const { origin } of captured) {
    if (origin.kind !== "peer") return undefined;
    if (sender === undefined) sender = origin.peerId;
    else if (sender !== origin.peerId) return undefined;
  }
  return sender;
}

function isOrigin(value: unknown): value is Origin {
  return typeof value === "object" && value !== null && "kind" in value;
}
