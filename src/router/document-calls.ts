import { DocumentSession } from "../engine/document-session.js";
import { RelayDocument } from "./relay-document.js";
import { withRetries } from "./retry-policy.js";
import { MANAGEMENT_ACTIONS, OwnerRequests, encodeOwnerRequest, type ManagementRequest } from "./rpc.js";
import type { RouterDependencies } from "./document-router.js";

/** What the calls read and do of their router. */
export interface CallingRouter {
  readonly deps: RouterDependencies;
  /** The document's session or relay on this node, if one is registered. */
  target(docId: string): DocumentSession | RelayDocument | undefined;
  /** The session or relay a request goes through, opening one (a reader's way: it must exist). */
  targetFor(
    docId: string,
    options: { mustExist: boolean; capped: boolean },
  ): Promise<DocumentSession | RelayDocument>;
  /** The session of a document this node owns (NOT_OWNER otherwise). */
  owned(docId: string): Promise<DocumentSession>;
  /** Unloads `session` after the idle timeout unless a peer joins meanwhile. */
  armIdle(session: DocumentSession): void;
  /** Throws SHUTTING_DOWN while the node drains. */
  assertRunning(advice: string): void;
}

/**
 * Server-side calls about one document that are not a client's join: a stateless
 * broadcast, and the management API's requests (state, compact, delete), run where
 * the document lives — on this node's session, or through a relay on its owner.
 */
export class DocumentCalls {
  constructor(private readonly router: CallingRouter) {}

  /**
   * Sends a stateless message to every Hocuspocus client of `docId` on every node:
   * through the session when this node owns it, else through the owner (it sends
   * to its clients and publishes on the channel, where relays pick it up). A
   * document nobody has open has nobody to tell: nothing is loaded for it.
   */
  async broadcastStateless(docId: string, payload: string): Promise<void> {
    const target = this.router.target(docId);
    if (target instanceof DocumentSession && !target.closed) return target.broadcastStateless(payload);
    if (target instanceof RelayDocument && !target.closed) return target.stateless(payload);
    const owner = await this.router.deps.ownership.ownerOf(docId);
    if (owner === null) return;
    if (owner === this.router.deps.backplane.nodeId) {
      const session = await this.router.owned(docId); // it was still opening
      session.broadcastStateless(payload);
      this.router.armIdle(session);
      return;
    }
    const request = encodeOwnerRequest({
      docId,
      peerId: `${this.router.deps.backplane.nodeId}/server`,
      bytes: new TextEncoder().encode(payload),
    });
    await this.router.deps.backplane.sendRequest(owner, OwnerRequests.STATELESS, request, {
      ...(this.router.deps.requestTimeoutMs === undefined
        ? {}
        : { timeoutMs: this.router.deps.requestTimeoutMs }),
      key: docId,
    });
  }

  /**
   * Runs a management request (state, compact, delete) on `docId`'s owner: this
   * node when it owns the document or can acquire it, else the owner through a
   * relay. A document loaded only for this is unloaded after the idle timeout.
   * It never creates the document: a missing one rejects with DOCUMENT_NOT_FOUND
   * (checked in storage in one step with the claim, so a delete in between cannot
   * be undone by it). Operators' requests are not held to `maxDocuments`.
   */
  async manage(
    docId: string,
    type: ManagementRequest,
    payload?: Uint8Array,
  ): Promise<{ seq: number; bytes: Uint8Array }> {
    return withRetries(() => this.manageOnce(docId, type, payload), {
      kind: "joinExisting",
      maxAttempts: this.router.deps.maxJoinAttempts,
    });
  }

  /** One attempt of {@link manage}; a relay whose owner moved meanwhile rejects with NOT_OWNER. */
  private async manageOnce(
    docId: string,
    type: ManagementRequest,
    payload: Uint8Array | undefined,
  ): Promise<{ seq: number; bytes: Uint8Array }> {
    for (;;) {
      this.router.assertRunning("ask another node");
      const target = await this.router.targetFor(docId, { mustExist: true, capped: false });
      if (target.closed) continue;
      try {
        if (target instanceof DocumentSession) {
          const result = await target.manage(MANAGEMENT_ACTIONS[type], payload);
          if (!target.closed) this.router.armIdle(target);
          return result;
        }
        const reply = await target.manage(type, payload);
        return { seq: reply.seq, bytes: reply.bytes };
      } finally {
        if (target instanceof RelayDocument && target.peerCount === 0 && !target.closed) {
          target.close("step-down");
        }
      }
    }
  }
}
