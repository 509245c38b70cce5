import type { IOwnership, Lease } from "../backplane/ownership.js";
import { DocumentSession } from "../engine/document-session.js";
import { peerOrigin } from "../engine/origin.js";
import type { SessionPeer } from "../engine/peer.js";
import type { SessionServices } from "../engine/session-services.js";
import { ErrorCodes, OpStreamError } from "../errors.js";
import type { PreparedDocument } from "../engine/prepared-document.js";
import { DocumentCalls } from "./document-calls.js";
import { DocumentCap, joinRefusal } from "./document-cap.js";
import type { DocumentHandle } from "./document-handle.js";
import { Handoffs } from "./handoff.js";
import { LocalDocumentHandle, type LeaveListener } from "./local-handle.js";
import { registerOwnerEndpoint } from "./owner-endpoint.js";
import type { ManagementRequest } from "./rpc.js";
import { RelayDocument, type LocalJoiner, type RelayDependencies } from "./relay-document.js";
import { RETRY_LIMITS, withRetries } from "./retry-policy.js";

/** What the router needs; the host wires it. */
export interface RouterDependencies extends SessionServices {
  readonly ownership: IOwnership;
  /** Unload a session this long after its last peer left. @default 300000 */
  readonly idleTimeoutMs: number;
  /** Timeout of each request a relay sends to a document's owner. @default the backplane's */
  readonly requestTimeoutMs?: number;
  /** Attempts to join a document whose owner keeps moving before giving up. @default 8 */
  readonly maxJoinAttempts?: number;
  /** Period of relays' renewals of their clients; owners expire others' clients after 3. @default 10000 */
  readonly remotePeerRenewalMs?: number;
  /**
   * How long a relay looks for its document's next owner (keeping its clients
   * connected) before closing them with 1013. @default 30000
   */
  readonly moveTimeoutMs?: number;
  /**
   * Most documents this node holds at once (owned sessions, relays, and documents
   * opening); a join that would open another fails with LIMIT_REACHED once no idle
   * session can be unloaded to make room. 0 = no limit. @default 0
   */
  readonly maxDocuments?: number;
}

/** Options of {@link DocumentRouter.join}. */
export interface JoinOptions {
  /**
   * Whether the join may create the document. Readers join with false: a document
   * storage does not hold (never created, or deleted) is refused with
   * DOCUMENT_NOT_FOUND and nothing is created; one open on any node is joined.
   * @default true (server-side callers and writers)
   */
  readonly create?: boolean;
}

/** How a document is opened: whether storage must already hold it, and whether the node cap applies. */
interface OpenOptions {
  readonly mustExist: boolean;
  readonly capped: boolean;
}

/** This node's hold on a document: the session it owns, or a relay to the owner. */
type Target = DocumentSession | RelayDocument;

interface Entry {
  opening?: Promise<Target>;
  target?: Target;
  idleTimer?: NodeJS.Timeout;
}

/**
 * Routes a peer to its document. If this node owns the document (or can acquire
 * it) the peer joins the local session; if another node owns it, the peer joins a
 * {@link RelayDocument} that proxies to the owner. Peers only ever see a
 * {@link DocumentHandle}, so they cannot tell the two apart.
 */
export class DocumentRouter implements LeaveListener {
  private readonly entries = new Map<string, Entry>();
  private readonly unregister: () => void;
  private readonly offResubscribed: () => void;
  private shuttingDown = false;
  private readonly cap: DocumentCap;
  private readonly relayDeps: RelayDependencies;
  private readonly handoffs: Handoffs;
  private readonly calls: DocumentCalls;

  constructor(private readonly deps: RouterDependencies) {
    this.cap = new DocumentCap(deps.maxDocuments);
    this.handoffs = new Handoffs({ ...deps, accepting: () => !this.shuttingDown });
    this.relayDeps = { ...deps, takeOver: (docId) => this.takeOver(docId) };
    this.calls = new DocumentCalls({
      deps,
      target: (docId) => this.entries.get(docId)?.target,
      targetFor: (docId, options) => this.targetFor(docId, options),
      owned: (docId) => this.owned(docId),
      armIdle: (session) => this.armIdle(session),
      assertRunning: (advice) => this.assertRunning(advice),
    });
    this.unregister = registerOwnerEndpoint(
      deps.backplane,
      {
        owned: (docId) => this.owned(docId),
        join: (session, peer) => this.joinLocal(session, peer),
        peerLeft: (session, peerId) => this.peerLeft(session, peerId),
        idle: (session) => this.armIdle(session),
      },
      {
        renewalMs: deps.remotePeerRenewalMs ?? 10_000,
        onExpired: () => deps.metrics.remotePeersExpired.inc(),
      },
    );
    // After a backplane reconnect, channel messages may have been lost: every relay resyncs.
    this.offResubscribed =
      deps.backplane.onResubscribed?.(() => {
        for (const { target } of this.entries.values())
          if (target instanceof RelayDocument) target.resubscribed();
      }) ?? (() => undefined);
  }

  /** Sessions this node owns and has loaded. */
  get sessionCount(): number {
    let count = 0;
    for (const { target } of this.entries.values())
      if (target instanceof DocumentSession && !target.closed) count += 1;
    return count;
  }

  /** The loaded session of `docId`, if this node owns it. */
  localSession(docId: string): DocumentSession | undefined {
    const target = this.entries.get(docId)?.target;
    return target instanceof DocumentSession && !target.closed ? target : undefined;
  }

  /**
   * Attaches `peer` to `docId`: to the local session, or through a relay to its
   * owner. Rejects with DOCUMENT_NOT_FOUND for a reader (`create: false`) of a
   * document storage does not hold, and with LIMIT_REACHED when the document is
   * not open and this node holds `maxDocuments` already.
   */
  async join(docId: string, peer: SessionPeer, options: JoinOptions = {}): Promise<DocumentHandle> {
    const create = options.create ?? true;
    try {
      return await withRetries(() => this.joinOnce(docId, peer, create), {
        kind: create ? "join" : "joinExisting",
        maxAttempts: this.deps.maxJoinAttempts,
      });
    } catch (error) {
      const refused = joinRefusal(error);
      if (refused) this.deps.metrics.joinsRefused.inc({ reason: refused });
      throw error;
    }
  }

  /** One attempt of {@link join}; a relay whose owner moved meanwhile rejects with NOT_OWNER. */
  private async joinOnce(docId: string, peer: SessionPeer, create: boolean): Promise<DocumentHandle> {
    for (;;) {
      this.assertRunning("reconnect to another node");
      const target = await this.targetFor(docId, { mustExist: !create, capped: true });
      if (target.closed) continue; // closed between load and join: open a fresh one
      if (target instanceof DocumentSession) return this.joinLocal(target, peer);
      try {
        return await target.attach(peer);
      } catch (error) {
        if (target.peerCount === 0) target.close("step-down");
        throw error;
      }
    }
  }

  /** See {@link DocumentCalls.broadcastStateless}. */
  broadcastStateless(docId: string, payload: string): Promise<void> {
    return this.calls.broadcastStateless(docId, payload);
  }

  /** See {@link DocumentCalls.manage}. */
  manage(docId: string, type: ManagementRequest, payload?: Uint8Array): ReturnType<DocumentCalls["manage"]> {
    return this.calls.manage(docId, type, payload);
  }

  private assertRunning(advice: string): void {
    if (this.shuttingDown) {
      throw new OpStreamError(ErrorCodes.SHUTTING_DOWN, `This node is shutting down; ${advice}.`);
    }
  }

  /**
   * Closes every relay, and every session gracefully: one that other nodes use
   * is handed over make-before-break, a few at a time ({@link Handoffs.handOverAll}).
   * The owner endpoint answers until they have: relays' requests are served meanwhile.
   */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    const targets = [...this.entries.values()].map((entry) => {
      clearTimeout(entry.idleTimer);
      return Promise.resolve(entry.target ?? entry.opening?.catch(() => undefined));
    });
    const sessions = targets.map(async (target) => {
      const session = await target;
      return session instanceof DocumentSession ? session : undefined;
    });
    const relays = targets.map(async (target) => {
      const relay = await target;
      if (relay instanceof RelayDocument) relay.close("shutdown");
    });
    await Promise.all([this.handoffs.handOverAll(sessions), ...relays]);
    this.unregister();
    this.offResubscribed();
    this.handoffs.close();
  }

  private joinLocal(session: DocumentSession, peer: SessionPeer): DocumentHandle {
    session.addPeer(peer);
    const entry = this.entries.get(session.docId);
    if (entry?.idleTimer) {
      clearTimeout(entry.idleTimer);
      entry.idleTimer = undefined;
    }
    return new LocalDocumentHandle(session, peer.id, peerOrigin(peer.id, peer.remote), this);
  }

  /** The session of a document this node owns, for requests from relays. */
  private async owned(docId: string): Promise<DocumentSession> {
    const entry = this.entries.get(docId);
    const target = entry?.target ?? (await entry?.opening?.catch(() => undefined));
    if (target instanceof DocumentSession && !target.closed) {
      const timer = this.entries.get(docId)?.idleTimer;
      clearTimeout(timer);
      return target;
    }
    throw new OpStreamError(
      ErrorCodes.NOT_OWNER,
      `Node "${this.deps.backplane.nodeId}" does not own "${docId}".`,
      {
        docId,
        nodeId: this.deps.backplane.nodeId,
      },
    );
  }

  private async targetFor(docId: string, options: OpenOptions): Promise<Target> {
    for (;;) {
      const entry = this.entries.get(docId);
      if (entry?.target) {
        const target = entry.target;
        if (!target.closed) return target;
        // A closing session finishes first (its final snapshot must land before a
        // successor loads it). Then its entry goes, even if its onClosed was missed:
        // a closed target left registered would make this loop spin on a resolved
        // promise and starve the event loop.
        if (target instanceof DocumentSession) await target.whenClosed();
        if (this.entries.get(docId)?.target === target) this.entries.delete(docId);
        continue;
      }
      if (entry?.opening) return entry.opening;
      if (options.capped && this.cap.reached(this.entries.size)) {
        await this.makeRoom(docId);
        continue;
      }
      const opening = this.open(docId, options.mustExist);
      this.entries.set(docId, { opening });
      return opening;
    }
  }

  /**
   * Unloads one idle session (no clients, waiting for its idle timeout) and waits
   * until it is gone, or throws LIMIT_REACHED when every document held is in use.
   * Idle sessions are the cheapest to give up: a reader cycling through documents
   * would otherwise keep the node full for `idleTimeoutMs` after it left.
   */
  private async makeRoom(docId: string): Promise<void> {
    for (const entry of this.entries.values()) {
      const target = entry.target;
      if (!(target instanceof DocumentSession) || target.peerCount > 0 || target.closed) continue;
      if (entry.idleTimer === undefined) continue; // just opened for a join, or serving a management request
      clearTimeout(entry.idleTimer);
      entry.idleTimer = undefined;
      await target.close("unloaded");
      return;
    }
    throw this.cap.refusal(docId);
  }

  private async open(docId: string, mustExist: boolean): Promise<Target> {
    try {
      return this.register(await this.acquireOrRelay(docId, mustExist));
    } catch (error) {
      this.entries.delete(docId);
      throw error;
    }
  }

  /** Makes `target` the document's entry; a target that closed while it was opening is refused. */
  private register<T extends Target>(target: T): T {
    if (target.closed) {
      // It failed while opening (lease lost, storage failing, owner gone) and its
      // onClosed ran before it was registered: never register a closed target.
      throw new OpStreamError(
        ErrorCodes.SESSION_CLOSED,
        `"${target.docId}" closed while it was opening; retry.`,
        { docId: target.docId },
      );
    }
    this.entries.set(target.docId, { target });
    if (target instanceof DocumentSession) this.deps.metrics.sessions.inc();
    return target;
  }

  private async acquireOrRelay(docId: string, mustExist: boolean): Promise<Target> {
    for (let attempt = 1; ; attempt++) {
      // A reader's claim fails in storage when the document does not exist; the
      // ownership layer then releases the lease, and nothing was created.
      const lease = await this.deps.ownership.acquire(docId, { mustExist });
      if (lease) return this.openSession(docId, lease);
      const owner = await this.deps.ownership.ownerOf(docId);
      if (owner !== null && owner !== this.deps.backplane.nodeId) {
        return RelayDocument.open(docId, owner, this.relayDeps, (relay) => this.onClosed(relay));
      }
      // The lease was released between acquire and ownerOf: try again, a few times.
      if (attempt >= (this.deps.maxJoinAttempts ?? RETRY_LIMITS.join.maxAttempts)) {
        throw new OpStreamError(
          ErrorCodes.NOT_OWNER,
          `Could not acquire or locate the owner of "${docId}".`,
          { docId },
        );
      }
    }
  }

  private async openSession(
    docId: string,
    lease: Lease,
    preparing?: Promise<PreparedDocument | undefined>,
  ): Promise<DocumentSession> {
    const prepared = await preparing;
    try {
      const deps = { ...this.deps, lease, onClosed: (s: Target) => this.onClosed(s) };
      return await DocumentSession.open(docId, deps, prepared);
    } catch (error) {
      prepared?.discard();
      await lease.release();
      throw error;
    }
  }

  /**
   * A relay's move found nobody holding the lease of `docId` (or this node named):
   * acquire it and open the session, replacing the relay's entry, so joins and
   * other nodes' requests reach the session. Null when another node holds the lease.
   */
  private async takeOver(docId: string): Promise<LocalJoiner | null> {
    this.assertRunning("its clients reconnect to another node");
    const entry = this.entries.get(docId);
    const current = entry?.opening ? await entry.opening.catch(() => undefined) : entry?.target;
    if (current instanceof DocumentSession && !current.closed) return this.joinerOf(current);
    // The document existed (the relay had clients on it): never re-create one deleted meanwhile.
    const lease = await this.deps.ownership.acquire(docId, { mustExist: true });
    if (!lease) return null;
    const opening = this.openSession(docId, lease, this.handoffs.take(docId));
    this.entries.set(docId, { opening });
    try {
      return this.joinerOf(this.register(await opening));
    } catch (error) {
      if (this.entries.get(docId)?.opening === opening) this.entries.delete(docId);
      throw error;
    }
  }

  private joinerOf(session: DocumentSession): LocalJoiner {
    return { seq: session.lastSeq, join: (peer) => this.joinLocal(session, peer) };
  }

  /** A client of a session owned here left (its {@link LocalDocumentHandle}'s leave). */
  peerLeft(session: DocumentSession, peerId: string): void {
    session.removePeer(peerId);
    this.armIdle(session);
  }

  /** Unloads `session` after the idle timeout unless a peer joins meanwhile. */
  private armIdle(session: DocumentSession): void {
    if (session.peerCount > 0 || session.closed) return;
    const entry = this.entries.get(session.docId);
    if (!entry || entry.target !== session) return;
    clearTimeout(entry.idleTimer);
    entry.idleTimer = setTimeout(() => {
      entry.idleTimer = undefined;
      if (session.peerCount === 0) {
        session.close("unloaded").catch((error: unknown) => {
          this.deps.logger.error({ err: error, docId: session.docId }, "idle unload failed");
        });
      }
    }, this.deps.idleTimeoutMs);
    entry.idleTimer.unref();
  }

  private onClosed(target: Target): void {
    const entry = this.entries.get(target.docId);
    if (entry?.target !== target) return;
    clearTimeout(entry.idleTimer);
    this.entries.delete(target.docId);
    if (target instanceof DocumentSession) this.deps.metrics.sessions.dec();
  }
}
