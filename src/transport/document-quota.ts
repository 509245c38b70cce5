import type { Duplex } from "node:stream";
import { ForwardingPeer, type DisconnectReason, type SessionPeer } from "../engine/peer.js";
import { ErrorCodes, OpStreamError, isOpStreamError } from "../errors.js";
import type { OpStreamMetrics } from "../metrics.js";
import { joinRefusal } from "../router/document-cap.js";
import { ForwardingHandle, type DocumentHandle } from "../router/document-handle.js";
import { CloseCodes, type CloseCode } from "./close-codes.js";
import type { DocumentJoiner } from "./tenancy.js";

/** The caps a {@link DocumentQuota} checks (the transport's options of the same names). */
export interface DocumentQuotaOptions {
  /** Documents at once on one Hocuspocus socket, enforced by the connection (validated here); 0 = no limit. */
  readonly maxDocumentsPerSocket: number;
  /** Distinct documents open at once on this node by one principal; 0 = no limit. */
  readonly maxDocumentsPerPrincipal: number;
}

/**
 * Counts the documents each principal holds open on this node (over all its
 * connections, each document once however many connections share it) and hands
 * each Hocuspocus socket a joiner that counts them. A principal is the
 * authorizer's `AccessGrant.principal`, else the client address, so a client
 * with one token or one address cannot hold more than the cap whatever it opens
 * through. Memory is bounded by the caps: one entry per held (principal, document).
 */
export class DocumentQuota {
  private readonly held = new Map<string, Map<string, number>>();
  private readonly maxPerPrincipal: number;

  constructor(
    options: DocumentQuotaOptions,
    private readonly metrics: Pick<OpStreamMetrics, "joinsRefused">,
  ) {
    // Enforced by each Hocuspocus connection; validated here with its sibling.
    wholeNumber("transport.maxDocumentsPerSocket", options.maxDocumentsPerSocket);
    this.maxPerPrincipal = wholeNumber(
      "transport.maxDocumentsPerPrincipal",
      options.maxDocumentsPerPrincipal,
    );
  }

  /**
   * The key a principal is counted under: the grant's principal, else the client
   * address (tagged apart, so a principal named like an address has its own
   * count), within its tenant (tenant ids contain no "/").
   */
  static principalOf(principal: string | undefined, address: string, tenant: string | undefined): string {
    const who = principal === undefined ? `address:${address}` : `principal:${principal}`;
    return tenant === undefined ? who : `${tenant}/${who}`;
  }

  /** Takes one hold of `docId` for `principal`; false (nothing taken) when it is one document more than the cap. */
  hold(principal: string, docId: string): boolean {
    let documents = this.held.get(principal);
    const holds = documents?.get(docId) ?? 0;
    if (holds === 0 && this.maxPerPrincipal > 0 && (documents?.size ?? 0) >= this.maxPerPrincipal)
      return false;
    if (!documents) this.held.set(principal, (documents = new Map<string, number>()));
    documents.set(docId, holds + 1);
    return true;
  }

  /** Gives back one hold taken with {@link hold}. */
  release(principal: string, docId: string): void {
    const documents = this.held.get(principal);
    const holds = documents?.get(docId);
    if (!documents || holds === undefined) return;
    if (holds > 1) documents.set(docId, holds - 1);
    else if (documents.delete(docId) && documents.size === 0) this.held.delete(principal);
  }

  /**
   * A y-websocket upgrade's hold (one document per socket), kept until `socket`
   * closes, whatever happens to the upgrade; false past the principal's cap.
   */
  holdUntilClose(socket: Duplex, principal: string, docId: string): boolean {
    // A socket that closed while the authorizer ran will open nothing, and its close
    // event may be past: a hold taken now would never be given back.
    if (socket.destroyed) return true;
    if (!this.hold(principal, docId)) return false;
    socket.once("close", () => this.release(principal, docId));
    return true;
  }

  /**
   * The joiner of one Hocuspocus socket (`address`: its client address): each
   * join counts against its principal's cap until its handle leaves or the
   * session lets go of the peer. (The socket's own cap is the connection's: it
   * counts documents from their first frame, before they are authorized.)
   * Refusals reject with LIMIT_REACHED (`details.limit`: "principal") and are counted.
   */
  forSocket(router: DocumentJoiner, address: string, tenant: string | undefined): DocumentJoiner {
    return {
      join: async (docId, peer, options) => {
        const principal = DocumentQuota.principalOf(options.principal, address, tenant);
        if (!this.hold(principal, docId)) throw this.refuse(docId);
        let released = false;
        const release = (): void => {
          if (released) return;
          released = true;
          this.release(principal, docId);
        };
        try {
          const handle = await router.join(docId, new CountedPeer(peer, release), options);
          return new CountedHandle(handle, release);
        } catch (error) {
          release();
          throw error;
        }
      },
      broadcastStateless: (docId, payload) => router.broadcastStateless(docId, payload),
    };
  }

  private refuse(docId: string): OpStreamError {
    this.metrics.joinsRefused.inc({ reason: "principal-limit" });
    return new OpStreamError(
      ErrorCodes.LIMIT_REACHED,
      `Too many documents open: ${this.maxPerPrincipal} per principal (transport.maxDocumentsPerPrincipal); close one before opening "${docId}".`,
      { docId, limit: "principal", max: this.maxPerPrincipal },
    );
  }
}

/**
 * Why a Hocuspocus join is answered with PermissionDenied for that document only
 * (the socket's other documents carry on), or undefined for a failure that closes
 * the socket (see {@link joinFailureCloseCode}). The stock provider does not retry
 * a denied document by itself.
 */
export function joinDenialReason(error: unknown): "document-not-found" | "too-many-documents" | undefined {
  if (isOpStreamError(error, ErrorCodes.DOCUMENT_NOT_FOUND)) return "document-not-found";
  if (isOpStreamError(error, ErrorCodes.LIMIT_REACHED) && error.details.limit !== "node") {
    return "too-many-documents";
  }
  return undefined;
}

/**
 * Why a join was refused (`document-not-found`, `principal-limit`, `node-limit`),
 * as the refusal log names it, or undefined for a failure that is no refusal.
 */
export function joinRefusalReason(
  error: unknown,
): "document-not-found" | "principal-limit" | "node-limit" | undefined {
  if (isOpStreamError(error, ErrorCodes.LIMIT_REACHED) && error.details.limit === "principal") {
    return "principal-limit";
  }
  return joinRefusal(error);
}

/**
 * The close code of a connection whose join failed. A reader of a missing
 * document gets DOCUMENT_NOT_FOUND (4005): the stock y-websocket provider
 * reconnects with backoff, so a viewer joins once a writer has created it. Other
 * coded errors (not owner, shutting down, storage, the node's document cap) are
 * worth a retry (1013); anything else is a bug (1011).
 */
export function joinFailureCloseCode(error: unknown): CloseCode {
  if (isOpStreamError(error, ErrorCodes.DOCUMENT_NOT_FOUND)) return CloseCodes.DOCUMENT_NOT_FOUND;
  return isOpStreamError(error) ? CloseCodes.TRY_AGAIN_LATER : CloseCodes.INTERNAL_ERROR;
}

/** The peer as the session sees it: when the session lets go of it, its quota is released. */
class CountedPeer extends ForwardingPeer {
  constructor(
    inner: SessionPeer,
    private readonly release: () => void,
  ) {
    super(inner);
  }

  override disconnect(reason: DisconnectReason): void {
    this.release();
    super.disconnect(reason);
  }
}

/** The handle as the connection sees it: leaving releases the quota. */
class CountedHandle extends ForwardingHandle {
  constructor(
    handle: DocumentHandle,
    private readonly release: () => void,
  ) {
    super(handle);
  }

  override leave(): void {
    this.release();
    super.leave();
  }
}

function wholeNumber(option: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new OpStreamError(
      ErrorCodes.INVALID_OPTION,
      `${option} must be a whole number of documents (0 = no limit), got ${String(value)}.`,
      { option, value },
    );
  }
  return value;
}
