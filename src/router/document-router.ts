import type { IOwnership } from "../backplane/ownership.js";
import { DocumentSession } from "../engine/document-session.js";
import type { SessionServices } from "../engine/session-services.js";
import { peerOrigin } from "../engine/origin.js";
import type { SessionPeer } from "../engine/peer.js";
import { ErrorCodes, OpStreamError } from "../errors.js";
import type { DocumentHandle } from "./document-handle.js";
import { LocalDocumentHandle } from "./local-handle.js";

/** What the router needs; the host wires it. */
export interface RouterDependencies extends SessionServices {
  readonly ownership: IOwnership;
  /** Unload a session this long after its last peer left. @default 300000 */
  readonly idleTimeoutMs: number;
}

interface Entry {
  opening?: Promise<DocumentSession>;
  session?: DocumentSession;
  idleTimer?: NodeJS.Timeout;
}

/**
 * Routes a peer to its document: a local session when this node owns (or can
 * acquire) the document. The seam for clustering is {@link DocumentHandle}: a
 * peer only ever talks to a handle, so a handle that proxies to a remote owner
 * (issue #3) slots in where `acquire()` finds another owner.
 */
export class DocumentRouter {
  private readonly entries = new Map<string, Entry>();
  private shuttingDown = false;

  constructor(private readonly deps: RouterDependencies) {}

  /** Sessions loaded on this node. */
  get sessionCount(): number {
    let count = 0;
    for (const entry of this.entries.values()) if (entry.session && !entry.session.closed) count += 1;
    return count;
  }

  /** The loaded session of `docId`, if this node has one open. */
  localSession(docId: string): DocumentSession | undefined {
    const session = this.entries.get(docId)?.session;
    return session && !session.closed ? session : undefined;
  }

  /** Attaches `peer` to `docId`, loading the document if needed. */
  async join(docId: string, peer: SessionPeer): Promise<DocumentHandle> {
    for (;;) {
      if (this.shuttingDown) {
        throw new OpStreamError(
          ErrorCodes.SHUTTING_DOWN,
          "This node is shutting down; reconnect to another node.",
        );
      }
      const session = await this.sessionFor(docId);
      if (session.closed) continue; // closed between load and join: open a fresh one
      session.addPeer(peer);
      const entry = this.entries.get(docId);
      if (entry?.idleTimer) {
        clearTimeout(entry.idleTimer);
        entry.idleTimer = undefined;
      }
      return new LocalDocumentHandle(session, peer.id, peerOrigin(peer.id), () =>
        this.leave(session, peer.id),
      );
    }
  }

  /** Closes every session gracefully (final snapshots, leases released). */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    const closing: Promise<void>[] = [];
    for (const entry of this.entries.values()) {
      clearTimeout(entry.idleTimer);
      if (entry.session) closing.push(entry.session.close("shutdown"));
      else if (entry.opening)
        closing.push(
          entry.opening.then(
            (s) => s.close("shutdown"),
            () => undefined,
          ),
        );
    }
    await Promise.all(closing);
  }

  private async sessionFor(docId: string): Promise<DocumentSession> {
    for (;;) {
      const entry = this.entries.get(docId);
      if (entry?.session) {
        if (!entry.session.closed) return entry.session;
        await entry.session.whenClosed();
        continue;
      }
      if (entry?.opening) return entry.opening;
      const opening = this.open(docId);
      this.entries.set(docId, { opening });
      return opening;
    }
  }

  private async open(docId: string): Promise<DocumentSession> {
    try {
      const lease = await this.deps.ownership.acquire(docId);
      if (!lease) {
        const owner = await this.deps.ownership.ownerOf(docId);
        throw new OpStreamError(
          ErrorCodes.NOT_OWNER,
          `Document "${docId}" is owned by node "${owner ?? "?"}".`,
          {
            docId,
            owner,
          },
        );
      }
      const session = await DocumentSession.open(docId, {
        ...this.deps,
        lease,
        onClosed: (closed) => this.onSessionClosed(closed),
      });
      this.entries.set(docId, { session });
      this.deps.metrics.sessions.inc();
      return session;
    } catch (error) {
      this.entries.delete(docId);
      throw error;
    }
  }

  private leave(session: DocumentSession, peerId: string): void {
    session.removePeer(peerId);
    if (session.peerCount > 0 || session.closed) return;
    const entry = this.entries.get(session.docId);
    if (!entry || entry.session !== session) return;
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

  private onSessionClosed(session: DocumentSession): void {
    const entry = this.entries.get(session.docId);
    if (entry?.session === session) {
      clearTimeout(entry.idleTimer);
      this.entries.delete(session.docId);
      this.deps.metrics.sessions.dec();
    }
  }
}
