import { randomUUID } from "node:crypto";
import * as Y from "yjs";
import { SERVER_PEER_PREFIX } from "../engine/origin.js";
import type { DisconnectReason } from "../engine/peer.js";
import { ErrorCodes, OpStreamError } from "../errors.js";
import type { Logger } from "../logging/logger.js";
import type { DocumentHandle } from "../router/document-handle.js";
import type { DocumentRouter } from "../router/document-router.js";
import { RETRY_LIMITS, isRetryable, withRetries } from "../router/retry-policy.js";
import { assertDocumentName } from "./document-name.js";

/** Options of {@link ServerDocuments.open}. */
export interface OpenDocumentOptions {
  /**
   * Longest time `open()` and each `transact()` keep trying (across an owner
   * failover) before they reject with REQUEST_TIMEOUT. @default 30000
   */
  timeoutMs?: number;
}

/** Disconnect reasons after which the handle rejoins (the others end it). */
const REJOIN: ReadonlySet<DisconnectReason> = new Set(["step-down", "storage-failure"]);
const LOCAL = Symbol("opstream.server-document");

/**
 * Server-side access to documents from any node: `opstream.documents.open(docId)`.
 * Changes go through the document's owner with the same durability and fan-out
 * as a client's edits.
 */
export class ServerDocuments {
  private readonly open_ = new Set<ServerDocument>();

  /** @internal Created by the host. */
  constructor(
    private readonly router: DocumentRouter,
    private readonly logger: Logger,
    private readonly maxDocumentNameLength: number,
  ) {}

  /**
   * Opens `docId` (creating it if it does not exist) and resolves once the local
   * replica `doc` holds the owner's durable state. Keep the handle while you use
   * it (it counts as a client, so the document stays loaded) and `close()` it after.
   * Rejects with INVALID_DOCUMENT_NAME, before any document work, when `docId` is
   * longer than `transport.maxDocumentNameLength`.
   */
  async open(docId: string, options: OpenDocumentOptions = {}): Promise<ServerDocument> {
    assertDocumentName(docId, this.maxDocumentNameLength);
    const timeoutMs = options.timeoutMs ?? RETRY_LIMITS.serverDocument.timeoutMs;
    const handle = new ServerDocument(docId, this.router, this.logger, timeoutMs, () =>
      this.open_.delete(handle),
    );
    this.open_.add(handle);
    try {
      await handle.connect();
    } catch (error) {
      await handle.close();
      throw error;
    }
    return handle;
  }

  /** @internal Closes every open handle (host shutdown). */
  async closeAll(): Promise<void> {
    await Promise.all([...this.open_].map((handle) => handle.close()));
  }
}

/**
 * A server-side handle on one document. `doc` is a replica kept up to date with
 * the owner's durable state (read it freely; write only through `transact`).
 * After an owner failover it rejoins by itself and resends what was not acknowledged.
 */
export class ServerDocument {
  readonly id = `${SERVER_PEER_PREFIX}${randomUUID()}`;
  readonly doc = new Y.Doc();
  private handle: DocumentHandle | undefined;
  private joining: Promise<DocumentHandle> | undefined;
  private closed = false;

  /** @internal */
  constructor(
    readonly docId: string,
    private readonly router: DocumentRouter,
    private readonly logger: Logger,
    private readonly timeoutMs: number,
    private readonly onClose: () => void,
  ) {}

  /**
   * Runs `change` on the replica in one transaction and sends what it changed to
   * the owner. Resolves with the op's sequence number once it is durable and
   * fanned out, or null when it changed nothing. Rejects with REQUEST_TIMEOUT if
   * that takes longer than `timeoutMs` (the change stays in the replica and is
   * sent again when the handle next rejoins), and with SESSION_CLOSED after `close()`.
   */
  async transact(change: (doc: Y.Doc) => void): Promise<number | null> {
    this.assertOpen();
    const updates: Uint8Array[] = [];
    const capture = (update: Uint8Array, origin: unknown): void => {
      if (origin === LOCAL) updates.push(update);
    };
    this.doc.on("update", capture);
    try {
      this.doc.transact(() => change(this.doc), LOCAL);
    } finally {
      this.doc.off("update", capture);
    }
    if (updates.length === 0) return null;
    const update = Y.mergeUpdates(updates);
    return this.withRetry("transact", (handle) => handle.apply(update));
  }

  /** Leaves the document (it may unload once no client is left). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.handle?.leave();
    this.handle = undefined;
    await this.joining?.catch(() => undefined);
    this.doc.destroy();
    this.onClose();
  }

  /** @internal Joins the document and syncs the replica. */
  async connect(): Promise<void> {
    await this.withRetry("open", () => Promise.resolve());
  }

  // SessionPeer: what the owner's session (or a relay) sends this handle. The class
  // does not say `implements SessionPeer` because that interface is internal (the
  // public type names no internal one); `router.join(docId, this)` checks the shape.
  /** @internal */
  sendUpdate(update: Uint8Array): void {
    if (!this.closed) Y.applyUpdate(this.doc, update, this);
  }
  /** @internal */
  sendAwareness(): void {
    // A server-side handle has no presence and shows none.
  }
  /** @internal */
  disconnect(reason: DisconnectReason): void {
    this.handle = undefined;
    if (this.closed) return;
    if (!REJOIN.has(reason)) {
      this.logger.warn({ docId: this.docId, reason }, "server-side document handle closed by the server");
      void this.close();
      return;
    }
    // Rejoin now: sync picks up what the new owner has, and sends what it lacks.
    this.current().catch((error: unknown) =>
      this.logger.warn({ err: error, docId: this.docId }, "server-side document handle could not rejoin yet"),
    );
  }

  /**
   * Runs `work` on the live handle, rejoining and retrying as the `serverDocument`
   * policy says (see retry-policy.ts) until `timeoutMs` has passed.
   */
  private withRetry<T>(what: string, work: (handle: DocumentHandle) => Promise<T>): Promise<T> {
    return withRetries(
      async () => {
        this.assertOpen();
        let handle: DocumentHandle | undefined;
        try {
          handle = await this.current();
          return await work(handle);
        } catch (error) {
          if (this.closed) throw this.closedError();
          // Its route to the owner failed: the next attempt rejoins. A handle joined
          // meanwhile (by a disconnect's rejoin) is kept.
          if (this.handle === handle && isRetryable("serverDocument", error)) this.handle = undefined;
          throw error;
        }
      },
      {
        kind: "serverDocument",
        timeoutMs: this.timeoutMs,
        shouldStop: () => (this.closed ? this.closedError() : undefined),
        onExhausted: (error) =>
          new OpStreamError(
            ErrorCodes.REQUEST_TIMEOUT,
            `${what} of "${this.docId}" did not complete within ${this.timeoutMs} ms (last error: ${error.code}).`,
            { docId: this.docId, timeoutMs: this.timeoutMs },
            error,
          ),
      },
    );
  }

  /** The live handle, joining (and syncing both ways) when there is none. */
  private current(): Promise<DocumentHandle> {
    if (this.handle) return Promise.resolve(this.handle);
    this.joining ??= this.join().finally(() => (this.joining = undefined));
    return this.joining;
  }

  private async join(): Promise<DocumentHandle> {
    const handle = await this.router.join(this.docId, this);
    try {
      // What the owner has that the replica lacks, then what the replica has that
      // the owner lacks (edits not acknowledged before a failover).
      Y.applyUpdate(this.doc, await handle.syncStep1(Y.encodeStateVector(this.doc)), this);
      const missing = Y.encodeStateAsUpdate(this.doc, await handle.stateVector());
      if (hasContent(missing)) await handle.apply(missing);
    } catch (error) {
      handle.leave();
      throw error;
    }
    if (this.closed) {
      handle.leave();
      throw this.closedError();
    }
    this.handle = handle;
    return handle;
  }

  private assertOpen(): void {
    if (this.closed) throw this.closedError();
  }

  private closedError(): OpStreamError {
    return new OpStreamError(ErrorCodes.SESSION_CLOSED, `The handle on "${this.docId}" is closed.`, {
      docId: this.docId,
    });
  }
}

/** False for an update that carries no structs and no deletions (Yjs encodes it in 2 bytes). */
function hasContent(update: Uint8Array): boolean {
  return update.byteLength > 2;
}
