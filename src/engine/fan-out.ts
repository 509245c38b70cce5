import { ChannelMessageType, type ChannelMessage, type IBackplane } from "../backplane/backplane.js";
import type { Logger } from "../logging/logger.js";
import type { OpStreamMetrics } from "../metrics.js";
import type { SessionPeer } from "./peer.js";

/**
 * Where a session's durable ops and awareness changes go: its local peers (never
 * back to the sender) and the document's backplane channel, for other nodes.
 */
export class FanOut {
  private readonly peers = new Map<string, SessionPeer>();

  constructor(
    private readonly docId: string,
    private readonly backplane: IBackplane,
    private readonly metrics: OpStreamMetrics,
    private readonly logger: Logger,
  ) {}

  get size(): number {
    return this.peers.size;
  }

  add(peer: SessionPeer): void {
    this.peers.set(peer.id, peer);
  }

  /** Forgets `peerId`; false when it was not attached. */
  delete(peerId: string): boolean {
    return this.peers.delete(peerId);
  }

  /** Forgets every peer and returns them. */
  /** Whether a client of another node is attached (its relay will take the document over). */
  hasRemote(): boolean {
    for (const peer of this.peers.values()) if (peer.remote) return true;
    return false;
  }

  takeAll(): SessionPeer[] {
    const peers = [...this.peers.values()];
    this.peers.clear();
    return peers;
  }

  /** A durable op: to every peer but its sender, and on the channel with its (epoch, seq). */
  update(update: Uint8Array, epoch: number, seq: number, exceptPeerId: string | undefined): void {
    let sent = 0;
    for (const [id, peer] of this.peers) {
      if (id === exceptPeerId) continue;
      peer.sendUpdate(update);
      sent += 1;
    }
    this.metrics.fanOutPeers.observe(sent);
    this.publish({
      type: ChannelMessageType.Update,
      origin: this.backplane.nodeId,
      epoch,
      seq,
      payload: update,
    });
  }

  /** An awareness change: to every peer but its sender, and on the channel. */
  awareness(update: Uint8Array, exceptPeerId: string | undefined): void {
    for (const [id, peer] of this.peers) if (id !== exceptPeerId) peer.sendAwareness(update);
    this.publish({ type: ChannelMessageType.Awareness, origin: this.backplane.nodeId, payload: update });
  }

  /** A stateless message: to every local peer that takes one (the sender included), and on the channel. */
  stateless(payload: string): void {
    for (const peer of this.peers.values()) peer.sendStateless?.(payload);
    this.publish({ type: ChannelMessageType.Stateless, origin: this.backplane.nodeId, payload });
  }

  /**
   * Tells other nodes the session of `epoch` closed, so their relays re-resolve the
   * owner at once; `successor` (from {@link successor}) is the one that takes over.
   */
  closed(epoch: number, successor: string): void {
    this.publish({ type: ChannelMessageType.Closed, origin: this.backplane.nodeId, epoch, successor });
  }

  /**
   * Of the nodes whose clients are attached (through their relays), the one that
   * should take the document over when this session closes, or "" when none is.
   * Rendezvous hashing on (document, node): each document picks the same node
   * wherever it is asked, and a node's documents spread evenly over the others.
   */
  successor(): string {
    let best = "";
    let bestScore = -1;
    for (const peer of this.peers.values()) {
      if (!peer.remote) continue;
      const node = nodeOfPeer(peer.id);
      const score = fnv1a(`${this.docId}\n${node}`);
      if (score > bestScore || (score === bestScore && node < best)) {
        best = node;
        bestScore = score;
      }
    }
    return best;
  }

  /** A session of `epoch` opened here at `seq`: this node is the new owner, and relays follow it at once. */
  owner(epoch: number, seq: number): void {
    this.publish({ type: ChannelMessageType.Owner, origin: this.backplane.nodeId, epoch, seq });
  }

  /** The owner's latest (epoch, seq), so relays notice a lost message without waiting for the next op. */
  heartbeat(epoch: number, seq: number): void {
    this.publish({ type: ChannelMessageType.Heartbeat, origin: this.backplane.nodeId, epoch, seq });
  }

  private publish(message: ChannelMessage): void {
    this.backplane.publish(this.docId, message).catch((error: unknown) => {
      // Not fatal: the op is durable, and relays detect the gap by seq and resync.
      this.metrics.backplaneErrors.inc();
      this.logger.warn({ err: error, docId: this.docId }, "backplane publish failed; relays will resync");
    });
  }
}

/** The node of a remote peer's cluster-wide id, `<nodeId>/<peerId>`. */
function nodeOfPeer(globalId: string): string {
  const slash = globalId.lastIndexOf("/");
  return slash < 0 ? globalId : globalId.slice(0, slash);
}

/** 32-bit FNV-1a of `text`'s UTF-16 code units: cheap, and spread well enough for picking among a few nodes. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}
