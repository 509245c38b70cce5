import * as Y from "yjs";
import type { IBackplane } from "../backplane/backplane.js";
import type { DocumentSession } from "../engine/document-session.js";
import { peerOrigin } from "../engine/origin.js";
import type { SessionPeer } from "../engine/peer.js";
import { invalidUpdate } from "../engine/session-errors.js";
import { containsUpdate } from "../engine/update-check.js";
import {
  OwnerRequests,
  decodePeerIds,
  decodeOwnerRequest,
  encodeOwnerReply,
  type ManagementRequest,
  type OwnerRequest,
} from "./rpc.js";

/** What the endpoint needs from the router. */
export interface OwnedSessions {
  /** The session of a document this node owns; rejects with NOT_OWNER otherwise. */
  owned(docId: string): Promise<DocumentSession>;
  /** Detaches a peer (starting the idle timer when it was the last). */
  detach(session: DocumentSession, peerId: string): void;
  /** Starts the idle timer of a session without peers (after a management request). */
  idle(session: DocumentSession): void;
}

/** Runs a management request on a session this node owns (here, or for another node's API call). */
export async function manageSession(
  session: DocumentSession,
  type: ManagementRequest,
): Promise<{ seq: number; bytes: Uint8Array }> {
  switch (type) {
    case OwnerRequests.STATE:
      return session.read(() => ({ seq: session.lastSeq, bytes: Y.encodeStateAsUpdate(session.doc) }));
    case OwnerRequests.COMPACT:
      await session.snapshot();
      return { seq: session.lastSeq, bytes: EMPTY };
    case OwnerRequests.DELETE:
      await session.delete();
      return { seq: 0, bytes: EMPTY };
  }
}

/** Whether the durable document holds all of `update`, read under the apply lock. Rejects with INVALID_UPDATE. */
export function sessionContains(session: DocumentSession, update: Uint8Array): Promise<boolean> {
  return session.read(() => {
    try {
      return containsUpdate(session.doc, update);
    } catch (error) {
      throw invalidUpdate(error, session.docId);
    }
  });
}

/**
 * A client of another node, as the owner's session sees it. Its updates and
 * awareness reach it through the document's channel (its node relays them), so
 * nothing is sent directly; it exists so awareness is tagged with its client and
 * idle unload counts it.
 */
class RemoteClient implements SessionPeer {
  constructor(readonly id: string) {}
  sendUpdate(): void {}
  sendAwareness(): void {}
  disconnect(): void {
    // Its relay learns of the step-down from the channel (Closed) or a failed
    // request, and closes the client with a retryable code itself.
  }
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
  /** Per owned session: each remote client's last sign of life (JOIN, a request, a renewal). */
  const remote = new Map<DocumentSession, Map<string, number>>();
  const seen = (session: DocumentSession, peerId: string): void => {
    const peers = remote.get(session);
    if (peers?.has(peerId)) peers.set(peerId, performance.now());
  };
  const sweep = (): void => {
    const oldest = performance.now() - 3 * expiry.renewalMs;
    for (const [session, peers] of remote) {
      if (session.closed) {
        remote.delete(session);
        continue;
      }
      for (const [peerId, at] of peers) {
        if (at >= oldest) continue;
        peers.delete(peerId);
        expiry.onExpired();
        sessions.detach(session, peerId);
      }
      if (peers.size === 0) remote.delete(session);
    }
  };
  const sweeper = setInterval(sweep, expiry.renewalMs);
  sweeper.unref();
  const handle = (work: (session: DocumentSession, request: OwnerRequest) => Promise<Uint8Array>) => {
    return async (payload: Uint8Array): Promise<Uint8Array> => {
      const request = decodeOwnerRequest(payload);
      const session = await sessions.owned(request.docId);
      seen(session, request.peerId);
      return work(session, request);
    };
  };
  const handlers: Partial<
    Record<(typeof OwnerRequests)[keyof typeof OwnerRequests], ReturnType<typeof handle>>
  > = {
    [OwnerRequests.JOIN]: handle((session, { peerId }) => {
      session.addPeer(new RemoteClient(peerId));
      const peers = remote.get(session) ?? new Map<string, number>();
      peers.set(peerId, performance.now());
      remote.set(session, peers);
      // Read under the lock: the state vector and seq describe durable state only.
      return session.read(() =>
        encodeOwnerReply({
          epoch: session.epoch,
          seq: session.lastSeq,
          bytes: Y.encodeStateVector(session.doc),
          extra: session.awarenessStates() ?? EMPTY,
        }),
      );
    }),
    [OwnerRequests.SYNC]: handle(async (session, { bytes }) =>
      encodeOwnerReply({ epoch: session.epoch, seq: session.lastSeq, bytes: await session.syncStep1(bytes) }),
    ),
    [OwnerRequests.APPLY]: handle(async (session, { peerId, bytes }) => {
      const seq = await session.apply(bytes, peerOrigin(peerId));
      return encodeOwnerReply({ epoch: session.epoch, seq: seq ?? 0 });
    }),
    [OwnerRequests.AWARENESS]: handle((session, { peerId, bytes }) => {
      session.applyAwareness(peerId, bytes);
      return Promise.resolve(encodeOwnerReply({ epoch: session.epoch, seq: session.lastSeq }));
    }),
    [OwnerRequests.CONTAINS]: handle(async (session, { bytes }) => {
      const contained = await sessionContains(session, bytes);
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
      remote.get(session)?.delete(peerId);
      sessions.detach(session, peerId);
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
    [OwnerRequests.RESYNC]: handle((session) =>
      session.read(() =>
        encodeOwnerReply({
          epoch: session.epoch,
          seq: session.lastSeq,
          bytes: Y.encodeStateAsUpdate(session.doc),
        }),
      ),
    ),
  };
  const manage = (type: ManagementRequest) =>
    handle(async (session) => {
      const { seq, bytes } = await manageSession(session, type);
      if (!session.closed) sessions.idle(session);
      return encodeOwnerReply({ epoch: session.epoch, seq, bytes });
    });
  handlers[OwnerRequests.STATE] = manage(OwnerRequests.STATE);
  handlers[OwnerRequests.COMPACT] = manage(OwnerRequests.COMPACT);
  handlers[OwnerRequests.DELETE] = manage(OwnerRequests.DELETE);
  const offs = Object.entries(handlers).map(([type, handler]) =>
    backplane.registerRequestHandler(type, handler),
  );
  return () => {
    clearInterval(sweeper);
    offs.forEach((off) => off());
  };
}
