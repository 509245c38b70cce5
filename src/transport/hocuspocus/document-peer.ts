import type { IncomingMessage } from "node:http";
import type { DisconnectReason, SessionPeer } from "../../engine/peer.js";
import type { Logger } from "../../logging/logger.js";
import type { OpStreamMetrics } from "../../metrics.js";
import type { DocumentHandle } from "../../router/document-handle.js";
import type { DocumentJoiner } from "../tenancy.js";
import { onExpiry, toGrant, type Authorizer } from "../authorization.js";
import { AwarenessGuard, type AwarenessRefusal, type AwarenessRefusalListener } from "../awareness-guard.js";
import { CloseCodes, DISCONNECT_CLOSE_CODES, type CloseCode } from "../close-codes.js";
import { joinDenialReason, joinFailureCloseCode, joinRefusalReason } from "../document-quota.js";
import { closeForHandleError } from "../handle-errors.js";
import {
  EMPTY_AWARENESS_UPDATE,
  MAX_SESSION_ID_LENGTH,
  documentNameOf,
  encode,
  type HocuspocusMessage,
} from "./messages.js";
import { runStatelessHandlers, type StatelessHandler } from "./stateless.js";

/** What a document of a Hocuspocus socket needs from its connection. */
export interface DocumentPeerContext {
  readonly request: IncomingMessage;
  readonly router: DocumentJoiner;
  /** The socket's tenant, told to the authorizer. */
  readonly tenant?: string;
  readonly authorizer: Authorizer;
  readonly statelessHandlers: readonly StatelessHandler[];
  readonly metrics: OpStreamMetrics;
  readonly logger: Logger;
  readonly maxDocumentNameLength: number;
  readonly maxAwarenessStateBytes: number;
  /** Sends a frame on the socket. */
  send(frame: Uint8Array): void;
  /** Counts one frame of `bytes` queued before its document is ready; false once the socket's caps are passed (it is closed). */
  reserve(bytes: number): boolean;
  /** Uncounts `count` queued frames of `bytes` in all. */
  release(count: number, bytes: number): void;
  /** Closes the whole socket. */
  close(code: CloseCode, reason: string, badInput?: string): void;
  /** The document left the socket; a `refused` key's later frames are dropped until a new Auth. */
  forget(peer: HocuspocusDocumentPeer, refused: boolean): void;
  /** The document was authorized and joined: the socket's pre-auth timeout is over. */
  authorized(): void;
  /** Logs a refusal of a document (rate-limited; the caller counts it). */
  refused(reason: string, docId: string | undefined): void;
}

/** The reasons sent with PermissionDenied when the authorizer answers `deny`: Hocuspocus's own, and ours for a missing or bad token. */
const DENIAL_REASONS = Object.freeze({
  forbidden: "permission-denied",
  unauthenticated: "unauthenticated",
});

/**
 * One document on a Hocuspocus socket, under the routing key the client uses:
 * waiting for its Auth message, authorizing, joining, then open. Messages that
 * arrive before it is open are queued in order (counted against the socket's
 * `maxPendingFrames`). It is the session's {@link SessionPeer}.
 */
export class HocuspocusDocumentPeer implements SessionPeer, AwarenessRefusalListener {
  readonly docId: string;
  private state: "waiting" | "authorizing" | "joining" | "open" | "gone" = "waiting";
  private readonly queue: { message: HocuspocusMessage; bytes: number }[] = [];
  private handle: DocumentHandle | undefined;
  private access: "readonly" | "read-write" = "readonly";
  private token: string | undefined;
  private cancelExpiry: () => void = () => undefined;
  private readonly awareness: AwarenessGuard;

  constructor(
    readonly id: string,
    readonly key: string,
    private readonly ctx: DocumentPeerContext,
  ) {
    this.docId = documentNameOf(key);
    this.awareness = new AwarenessGuard(ctx.maxAwarenessStateBytes, this);
  }

  /** Counts and logs an awareness entry the guard dropped. */
  awarenessRefused(reason: AwarenessRefusal, clientId: number): void {
    this.ctx.metrics.awarenessRefused.inc({ reason });
    this.ctx.logger.debug(
      { docId: this.docId, peerId: this.id, clientId, reason },
      "awareness entry refused",
    );
  }

  /** Whether it counts against the socket's `maxDocumentsPerSocket`: from its Auth on, until it leaves. */
  get counted(): boolean {
    return this.state !== "waiting" && this.state !== "gone";
  }

  /** Denies its Auth for `reason` (PermissionDenied) and leaves the socket, its key refused. */
  refuse(reason: string): void {
    this.deny(reason);
  }

  /** Handles one message addressed to this document's key (`bytes`: its frame's size). */
  receive(message: HocuspocusMessage, bytes: number): void {
    if (this.state === "open") return this.dispatch(message);
    if (this.state === "gone") return;
    if (this.state === "waiting" && message.type === "auth") return this.startAuthorization(message.token);
    if (this.state === "waiting" && message.type === "close") return this.forget(false);
    if (this.ctx.reserve(bytes)) this.queue.push({ message, bytes });
  }

  sendUpdate(update: Uint8Array): void {
    this.send(encode.update(this.key, update));
  }

  sendAwareness(update: Uint8Array): void {
    this.awareness.sent(update);
    this.send(encode.awareness(this.key, update));
  }

  sendStateless(payload: string): void {
    this.send(encode.stateless(this.key, payload));
  }

  sendSyncStep1(stateVector: Uint8Array): void {
    this.send(encode.syncStep1(this.key, stateVector));
  }

  /**
   * The session let go of this peer. A deleted document is closed on its own
   * (the socket's other documents carry on; the provider's later edits of it are
   * dropped); for every other reason the socket is closed, so the stock provider
   * reconnects and rejoins every document on it.
   */
  disconnect(reason: DisconnectReason): void {
    this.handle = undefined;
    if (reason !== "deleted") return this.ctx.close(DISCONNECT_CLOSE_CODES[reason], reason);
    this.send(encode.close(this.key, "document deleted"));
    this.forget(true);
  }

  /** The socket closed: leave the document. */
  detach(): void {
    this.state = "gone";
    this.cancelExpiry();
    this.queue.length = 0;
    this.handle?.leave();
    this.handle = undefined;
  }

  private dispatch(message: HocuspocusMessage): void {
    const handle = this.handle;
    if (!handle) return;
    switch (message.type) {
      case "auth":
        return this.startAuthorization(message.token);
      case "sync-step-1":
        return this.answerSyncStep1(handle, message.stateVector, message.reply);
      case "sync-step-2":
      case "update":
        return this.applyUpdate(handle, message.update, message.type === "sync-step-2");
      case "awareness":
        try {
          // Read-only documents may set awareness too: viewers appear in presence lists.
          const allowed = this.awareness.filter(message.update);
          if (allowed) handle.applyAwareness(allowed);
        } catch (error) {
          this.onHandleError(error, "invalid-awareness");
        }
        return;
      case "query-awareness":
        return this.sendAwareness(handle.awarenessStates() ?? EMPTY_AWARENESS_UPDATE);
      case "stateless":
        return this.stateless(message.payload);
      case "close":
        handle.leave();
        this.handle = undefined;
        return this.forget(false);
    }
  }

  private startAuthorization(token: string): void {
    this.authorize(token).catch((error: unknown) => {
      this.ctx.logger.error({ err: error, docId: this.docId, peerId: this.id }, "authorization failed");
      this.ctx.close(CloseCodes.INTERNAL_ERROR, "authorization failed");
    });
  }

  /** Runs the authorizer for a (first or refreshed) token; joins the document on the first success. */
  private async authorize(rawToken: string): Promise<void> {
    // The stock provider sends "" when it has no token.
    const token = rawToken === "" ? undefined : rawToken;
    const invalid = this.invalidKey();
    if (invalid) {
      // Not the name itself: it may be far too long for a log line.
      this.ctx.metrics.joinsRefused.inc({ reason: "invalid-name" });
      this.ctx.refused("invalid-name", undefined);
      return this.deny(invalid);
    }
    this.state = "authorizing";
    // A throwing authorizer closes the socket with 1011 (startAuthorization).
    const grant = toGrant(
      await this.ctx.authorizer({
        docId: this.docId,
        request: this.ctx.request,
        token,
        ...(this.ctx.tenant === undefined ? {} : { tenant: this.ctx.tenant }),
      }),
    );
    if (this.isGone()) return;
    if (grant.access === "deny") {
      this.ctx.metrics.joinsRefused.inc({ reason: grant.reason });
      this.ctx.refused(grant.reason, this.docId);
      return this.deny(DENIAL_REASONS[grant.reason]);
    }
    this.access = grant.access;
    this.token = token;
    // Until the next Auth, the grant holds, up to its end: then the socket is closed
    // (4003), so the stock provider reconnects and sends a fresh token (a `token` function).
    this.cancelExpiry();
    this.cancelExpiry = onExpiry(grant.expiresAt, () =>
      this.ctx.close(CloseCodes.ACCESS_EXPIRED, "access expired: reconnect with a fresh token"),
    );
    if (this.handle) this.send(encode.authenticated(this.key, grant.access));
    else {
      // Joined before Authenticated is sent, so a join refused for this document (a
      // reader of a missing one, a document cap) is a PermissionDenied, not an
      // Authenticated taken back.
      const handle = await this.join(grant.access === "read-write", grant.principal);
      if (!handle) return;
      this.send(encode.authenticated(this.key, grant.access));
      const states = handle.awarenessStates();
      if (states) this.sendAwareness(states);
    }
    this.ctx.authorized();
    this.state = "open";
    while (this.state === "open" && this.queue.length > 0) {
      const { message, bytes } = this.queue.shift()!;
      this.ctx.release(1, bytes);
      this.dispatch(message);
    }
  }

  /** Why the routing key cannot name a document (the PermissionDenied reason), if it cannot. */
  private invalidKey(): string | undefined {
    if (this.docId === "") return "invalid document name";
    if (this.docId.length > this.ctx.maxDocumentNameLength) return "document name too long";
    if (this.key.length - this.docId.length - 1 > MAX_SESSION_ID_LENGTH) return "session id too long";
    return undefined;
  }

  /** Joins the document (`create`: only writers may create it); undefined when refused, denied or gone meanwhile. */
  private async join(create: boolean, principal: string | undefined): Promise<DocumentHandle | undefined> {
    this.state = "joining";
    let handle: DocumentHandle;
    try {
      handle = await this.ctx.router.join(this.docId, this, { create, principal });
    } catch (error) {
      if (this.isGone()) return undefined;
      // Refusals were counted by the router or the quota; logged here, where the socket is known.
      const refused = joinRefusalReason(error);
      if (refused) this.ctx.refused(refused, this.docId);
      const denial = joinDenialReason(error);
      if (denial) {
        this.deny(denial);
        return undefined;
      }
      if (!refused) this.ctx.logger.warn({ err: error, docId: this.docId }, "could not open the document");
      this.ctx.close(joinFailureCloseCode(error), "document unavailable");
      return undefined;
    }
    if (this.isGone()) {
      handle.leave();
      return undefined;
    }
    this.handle = handle;
    return handle;
  }

  /** PermissionDenied (the provider emits `authenticationFailed`); an open document is also closed. */
  private deny(reason: string): void {
    this.send(encode.permissionDenied(this.key, reason));
    if (this.handle) {
      this.handle.leave();
      this.handle = undefined;
      this.send(encode.close(this.key, reason));
    }
    this.forget(true);
  }

  /** Hocuspocus answers a SyncStep1 with a SyncStep2 and then its own SyncStep1 (not after a SyncReply). */
  private answerSyncStep1(handle: DocumentHandle, stateVector: Uint8Array, reply: boolean): void {
    handle
      .syncStep1(stateVector)
      .then(async (update) => {
        this.send(encode.syncStep2(this.key, update));
        if (!reply) this.send(encode.syncStep1(this.key, await handle.stateVector()));
      })
      .catch((error: unknown) => this.onHandleError(error));
  }

  /**
   * Acknowledges with SyncStatus only once the update is durable: the provider's
   * `unsyncedChanges` counts down on these. A read-only client's update is refused
   * (SyncStatus false), unless it is a SyncStep2 holding nothing new.
   */
  private applyUpdate(handle: DocumentHandle, update: Uint8Array, step2: boolean): void {
    if (this.access === "readonly") {
      const contained = step2 ? handle.contains(update) : Promise.resolve(false);
      contained
        .then((applied) => {
          if (!applied) this.ctx.metrics.updatesRejected.inc({ reason: "readonly" });
          this.send(encode.syncStatus(this.key, applied));
        })
        .catch((error: unknown) => this.onHandleError(error));
      return;
    }
    handle
      .apply(update)
      .then(() => this.send(encode.syncStatus(this.key, true)))
      .catch((error: unknown) => this.onHandleError(error));
  }

  private stateless(payload: string): void {
    const { docId, key, access, token } = this;
    const request = {
      docId,
      tenant: this.ctx.tenant,
      payload,
      access,
      token,
      request: this.ctx.request,
      reply: (answer: string) => this.send(encode.stateless(key, answer)),
      broadcast: (message: string) => {
        const sent = this.ctx.router.broadcastStateless(docId, message);
        // Logged here too, so a handler that does not await its broadcast loses nothing silently.
        sent.catch((error: unknown) =>
          this.ctx.logger.warn({ err: error, docId, peerId: this.id }, "stateless broadcast failed"),
        );
        return sent;
      },
    };
    void runStatelessHandlers(this.ctx.statelessHandlers, request, this.ctx.logger, this.id);
  }

  private onHandleError(error: unknown, badInputReason?: string): void {
    const { code, reason, badInput } = closeForHandleError(error, badInputReason);
    // A request that outlived its document (closed, deleted) concerns nobody now.
    if (this.isGone() && !badInput) return;
    if (badInput) {
      this.ctx.logger.warn({ err: error, docId: this.docId, peerId: this.id }, "invalid input; closing");
    }
    this.ctx.close(code, reason, badInput);
  }

  /** Whether the document left (read after an await: the socket may have closed meanwhile). */
  private isGone(): boolean {
    return this.state === "gone";
  }

  private forget(refused: boolean): void {
    this.state = "gone";
    this.cancelExpiry();
    this.ctx.release(
      this.queue.length,
      this.queue.reduce((sum, { bytes }) => sum + bytes, 0),
    );
    this.queue.length = 0;
    this.ctx.forget(this, refused);
  }

  /** Frames for a document that left the socket are dropped: its key may be reused by a new provider. */
  private send(frame: Uint8Array): void {
    if (this.state !== "gone") this.ctx.send(frame);
  }
}
