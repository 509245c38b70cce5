import type { IBackplane } from "../backplane/backplane.js";
import type { DocumentSession } from "../engine/document-session.js";
import { peerOrigin } from "../engine/origin.js";
import type { SessionPeer } from "../engine/peer.js";
import { invalidUpdate } from "../engine/session-errors.js";
import type { DocumentHandle } from "./document-handle.js";
import { LocalDocumentHandle, type LeaveListener } from "./local-handle.js";
import {
  MANAGEMENT_ACTIONS,
  OwnerRequests,
  decodePeerIds,
  decodeOwnerRequest,
  encodeOwnerReply,
  type ManagementRequest,
  type OwnerRequest,
} from "./rpc.js";

/** What the endpoint needs from the router; a handle's leave reaches it as for a local client's. */
export interface OwnedSessions extends LeaveListener {
  /** The session of a document this node owns; rejects with NOT_OWNER otherwise. */
  owned(docId: string): Promise<DocumentSession>;
  /** Attaches a peer to a session owned here, as a local client joins: the handle local peers get. */
  join(session: DocumentSession, peer: SessionPeer): DocumentHandle;
  /** Starts the idle timer of a session without peers (after a management request). */
  idle(session: DocumentSession): void;
}

/**
 * A client of another node, as the owner's session sees it. Its updates and
 * awareness reach it through the document's channel (its node relays them), so
 * nothing is sent directly; it exists so awareness is tagged with its client and
 * idle unload counts it.
 */
class RemoteClient implements SessionPeer {
  readonly remote = true;
  constructor(
    readonly id: string,
    /** The node the client is connected to (the relay that sent its JOIN). */
    readonly node: string,
  ) {}
  sendUpdate(): void {}
  sendAwareness(): void {}
  disconnect(): void {
    // Its relay learns of the step-down from the channel (Closed) or a failed
    // request, and closes the client with a retryable code itself.
  }
}

/** A client of another node that joined: its handle, and its last sign of life (JOIN, a request, a renewal). */
interface RemotePeer {
  readonly handle: DocumentHandle;
  seenAt: number;
}

const EMPTY = new Uint8Array(0);

/** How the endpoint expires clients of other nodes whose LEAVE never came. */
export interface RemotePeerExpiry {
  /** Relays renew their clients this often; a client not renewed for 3 periods is forgotten. */
  readonly renewalMs: number;
  /** Called once per forgotten client (a metric). */
  readonly onExpired: () => void;
}

/**
 * Answers relays' requests for the documents this node owns (handlers of
 * {@link OwnerRequests}), and forgets clients of other nodes that their relay
 * stopped renewing (see {@link OwnerRequests.PEERS}).
 */
export function registerOwnerEndpoint(
  backplane: IBackplane,
  sessions: OwnedSessions,
  expiry: RemotePeerExpiry,
): () => void {
  /** Per owned session: the clients of other nodes that joined it. */
  const remote = new Map<DocumentSession, Map<string, RemotePeer>>();
  const seen = (session: DocumentSession, peerId: string): void => {
    const peer = remote.get(session)?.get(peerId);
    if (peer) peer.seenAt = performance.now();
  };
  /**
   * The handle a client's requests go through. A client this session does not
   * know (it never joined it, or expired) is still served, through a handle that
   * is not attached: each request carries everything it needs.
   */
  const handleOf = (session: DocumentSession, peerId: string): DocumentHandle =>
    remote.get(session)?.get(peerId)?.handle ??
    new LocalDocumentHandle(session, peerId, peerOrigin(peerId, true), sessions);
  const sweep = (): void => {
    const oldest = performance.now() - 3 * expiry.renewalMs;
    for (const [session, peers] of remote) {
      if (session.closed) {
        remote.delete(session);
        continue;
      }
      for (const [peerId, peer] of peers) {
        if (peer.seenAt >= oldest) continue;
        peers.delete(peerId);
        expiry.onExpired();
        peer.handle.leave();
      }
      if (peers.size === 0) remote.delete(session);
    }
  };
  const sweeper = setInterval(sweep, expiry.renewalMs);
  sweeper.unref();
  const handle = (
    work: (session: DocumentSession, request: OwnerRequest, fromNodeId: string) => Promise<Uint8Array>,
  ) => {
    return async (payload: Uint8Array, fromNodeId: string): Promise<Uint8Array> => {
      const request = decodeOwnerRequest(payload);
      const session = await sessions.owned(request.docId);
      seen(session, request.peerId);
      return work(session, request, fromNodeId);
    };
  };
  const handlers: Partial<
    Record<(typeof OwnerRequests)[keyof typeof OwnerRequests], ReturnType<typeof handle>>
  > = {
    [OwnerRequests.JOIN]: handle(async (session, { peerId }, fromNodeId) => {
      const joined = sessions.join(session, new RemoteClient(peerId, fromNodeId));
      const peers = remote.get(session) ?? new Map<string, RemotePeer>();
      peers.set(peerId, { handle: joined, seenAt: performance.now() });
      remote.set(session, peers);
      const info = await session.joinInfo();
      return encodeOwnerReply({
        epoch: info.epoch,
        seq: info.seq,
        bytes: info.stateVector,
        extra: info.awareness ?? EMPTY,
      });
    }),
    [OwnerRequests.SYNC]: handle(async (session, { peerId, bytes }) => {
      // The seq of the request's arrival: the reply holds at least the ops up to it.
      const seq = session.lastSeq;
      return encodeOwnerReply({
        epoch: session.epoch,
        seq,
        bytes: await handleOf(session, peerId).syncStep1(bytes),
      });
    }),
    [OwnerRequests.APPLY]: handle(async (session, { peerId, bytes }) => {
      const seq = await handleOf(session, peerId).apply(bytes);
      return encodeOwnerReply({ epoch: session.epoch, seq: seq ?? 0 });
    }),
    [OwnerRequests.AWARENESS]: handle((session, { peerId, bytes }) => {
      handleOf(session, peerId).applyAwareness(bytes);
      return Promise.resolve(encodeOwnerReply({ epoch: session.epoch, seq: session.lastSeq }));
    }),
    [OwnerRequests.CONTAINS]: handle(async (session, { peerId, bytes }) => {
      const contained = await handleOf(session, peerId).contains(bytes);
      return encodeOwnerReply({
        epoch: session.epoch,
        seq: session.lastSeq,
        bytes: Uint8Array.of(contained ? 1 : 0),
      });
    }),
    [OwnerRequests.STATELESS]: handle((session, { bytes }) => {
      session.broadcastStateless(new TextDecoder().decode(bytes));
      // A broadcast to a document nobody uses must not keep it loaded.
      sessions.idle(session);
      return Promise.resolve(encodeOwnerReply({ epoch: session.epoch, seq: session.lastSeq }));
    }),
    [OwnerRequests.LEAVE]: handle((session, { peerId }) => {
      handleOf(session, peerId).leave();
      remote.get(session)?.delete(peerId);
      return Promise.resolve(encodeOwnerReply({ epoch: session.epoch, seq: session.lastSeq }));
    }),
    [OwnerRequests.PEERS]: handle((session, { bytes }) => {
      let ids: string[];
      try {
        ids = decodePeerIds(bytes);
      } catch (error) {
        return Promise.reject(invalidUpdate(error, session.docId));
      }
      // Only clients this owner knows: one it never saw join belongs to another epoch.
      for (const id of ids) seen(session, id);
      return Promise.resolve(encodeOwnerReply({ epoch: session.epoch, seq: session.lastSeq }));
    }),
    [OwnerRequests.RESYNC]: handle(async (session) => {
      const { seq, bytes } = await session.state();
      return encodeOwnerReply({ epoch: session.epoch, seq, bytes });
    }),
  };
  const manage = (type: ManagementRequest) =>
    handle(async (session, request) => {
      const { seq, bytes } = await session.manage(MANAGEMENT_ACTIONS[type], request.bytes);
      if (!session.closed) sessions.idle(session);
      return encodeOwnerReply({ epoch: session.epoch, seq, bytes });
    });
  handlers[OwnerRequests.STATE] = manage(OwnerRequests.STATE);
  handlers[OwnerRequests.COMPACT] = manage(OwnerRequests.COMPACT);
  handlers[OwnerRequests.DELETE] = manage(OwnerRequests.DELETE);
  handlers[OwnerRequests.VERSION] = manage(OwnerRequests.VERSION);
  handlers[OwnerRequests.RESTORE] = manage(OwnerRequests.RESTORE);
  const offs = Object.entries(handlers).map(([type, handler]) =>
    backplane.registerRequestHandler(type, handler),
  );
  return () => {
    clearInterval(sweeper);
    offs.forEach((off) => off());
  };
}
