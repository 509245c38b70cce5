import type { IBackplane } from "../backplane/backplane.js";
import type { DocumentSession } from "../engine/document-session.js";
import { PreparedDocument } from "../engine/prepared-document.js";
import { ErrorCodes, OpStreamError } from "../errors.js";
import type { Logger } from "../logging/logger.js";
import type { OpStreamMetrics } from "../metrics.js";
import type { DocumentStore } from "../storage/document-store.js";
import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import { OwnerRequests, decodeOwnerRequest, encodeOwnerRequest } from "./rpc.js";

/** A prepared document not taken over within this long is dropped. */
const PREPARED_TTL_MS = 5_000;
/** How long a draining owner waits for its successor to have loaded a document. */
const PREPARE_WAIT_MS = 1_000;

const EMPTY = new Uint8Array(0);

/**
 * How many documents a draining node hands over at once, of `count`: 4, or one per
 * 100 documents for more than 400. Each handover makes its successor load the
 * document and then the survivors' relays re-join; a node owning dozens of
 * documents would otherwise put all of that on the survivors in one burst,
 * delaying the edits they relay meanwhile. The others are served on until their
 * turn. Past 400, every document's turn still comes after about 100 others, so a
 * large node's drain stays inside the drain timeout (OPERATIONS.md).
 */
export function handoverConcurrency(count: number): number {
  return Math.max(4, Math.ceil(count / 100));
}

/** Runs at most `limit` tasks at once, in the order they were given. */
export class HandoverQueue {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async run(task: () => Promise<void>): Promise<void> {
    if (this.running >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.running += 1;
    try {
      await task();
    } finally {
      this.running -= 1;
      this.waiting.shift()?.();
    }
  }
}

/** What {@link Handoffs} needs from the node. */
export interface HandoffDependencies {
  readonly backplane: IBackplane;
  readonly store: DocumentStore;
  readonly logger: Logger;
  readonly metrics: OpStreamMetrics;
  /** False once this node drains: it will not take anything over. */
  readonly accepting: () => boolean;
}

interface Prepared {
  readonly loading: Promise<PreparedDocument | undefined>;
  readonly timer: NodeJS.Timeout;
}

/**
 * The graceful handoff's make-before-break step (PROTOCOL.md, "The successor"). An
 * owner that drains asks each document's successor to load it first
 * ({@link prepare}) and keeps serving until it has, or for at most 1 s; only then
 * does it drain the document's queue, release its lease and publish Closed. The
 * successor loads and restores the document meanwhile ({@link OwnerRequests.PREPARE})
 * and, when Closed names it, takes the document over with that copy
 * ({@link take}), so the gap in which nobody serves the document holds the epoch
 * claim and a catch-up of the last ops, not the whole load.
 */
export class Handoffs {
  private readonly prepared = new Map<string, Prepared>();
  private readonly unregister: () => void;

  constructor(private readonly deps: HandoffDependencies) {
    this.unregister = deps.backplane.registerRequestHandler(OwnerRequests.PREPARE, async (payload) => {
      const { docId, bytes } = decodeOwnerRequest(payload);
      if (!deps.accepting()) {
        deps.metrics.handoffPrepares.inc({ outcome: "failed" });
        throw new OpStreamError(ErrorCodes.SHUTTING_DOWN, "This node is draining; it takes nothing over.", {
          docId,
        });
      }
      await this.load(docId, decoding.readVarUint(decoding.createDecoder(bytes)));
      return EMPTY;
    });
  }

  /**
   * Owner side, on shutdown: closes `sessions` (each may still be opening), a few
   * at a time ({@link handoverConcurrency}); one that other nodes use is handed
   * over make-before-break (its successor loads it first, {@link prepare}), the
   * others write a final snapshot.
   */
  async handOverAll(sessions: readonly Promise<DocumentSession | undefined>[]): Promise<void> {
    const queue = new HandoverQueue(handoverConcurrency(sessions.length));
    await Promise.all(
      sessions.map(async (opening) => {
        const session = await opening;
        if (session) await queue.run(() => this.handOver(session));
      }),
    );
  }

  private async handOver(session: DocumentSession): Promise<void> {
    const successor = session.successor();
    if (successor && !session.closed) await this.prepare(successor, session.docId, session.epoch);
    await session.close("shutdown");
  }

  /**
   * Asks `successor` to load `docId` ahead of the handoff. Resolves once it has,
   * or when it failed or 1 s passed (the takeover then loads as after a crash);
   * never rejects.
   */
  private async prepare(successor: string, docId: string, epoch: number): Promise<void> {
    try {
      await this.deps.backplane.sendRequest(
        successor,
        OwnerRequests.PREPARE,
        encodeOwnerRequest({
          docId,
          peerId: "",
          bytes: encoding.encode((e) => encoding.writeVarUint(e, epoch)),
        }),
        { timeoutMs: PREPARE_WAIT_MS, key: docId },
      );
    } catch (error) {
      this.deps.logger.debug({ err: error, docId, successor }, "handoff: the successor did not prepare");
    }
  }

  /** Successor side: the copy prepared for `docId`, if any (taken once). */
  take(docId: string): Promise<PreparedDocument | undefined> | undefined {
    const entry = this.prepared.get(docId);
    if (!entry) return undefined;
    this.prepared.delete(docId);
    clearTimeout(entry.timer);
    void entry.loading.then((prepared) => {
      if (prepared) this.deps.metrics.handoffPrepares.inc({ outcome: "used" });
    });
    return entry.loading;
  }

  /** Drops every prepared copy and stops answering. */
  close(): void {
    this.unregister();
    for (const docId of [...this.prepared.keys()]) this.drop(docId);
  }

  private async load(docId: string, epoch: number): Promise<void> {
    const known = this.prepared.get(docId);
    if (known) {
      await known.loading;
      return;
    }
    const loading = PreparedDocument.load(docId, this.deps.store, epoch).catch((error: unknown) => {
      this.deps.metrics.handoffPrepares.inc({ outcome: "failed" });
      this.deps.logger.warn({ err: error, docId }, "handoff: could not load the document ahead");
      return undefined;
    });
    const timer = setTimeout(() => this.drop(docId, "unused"), PREPARED_TTL_MS);
    timer.unref();
    this.prepared.set(docId, { loading, timer });
    await loading;
  }

  private drop(docId: string, outcome?: "unused"): void {
    const entry = this.prepared.get(docId);
    if (!entry) return;
    this.prepared.delete(docId);
    clearTimeout(entry.timer);
    void entry.loading.then((prepared) => {
      if (!prepared) return;
      prepared.discard();
      if (outcome) this.deps.metrics.handoffPrepares.inc({ outcome });
    });
  }
}
