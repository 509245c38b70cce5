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

  /** Tells other nodes the session of `epoch` closed, so their relays re-resolve the owner at once. */
  closed(epoch: number): void {
    this.publish({ type: ChannelMessageType.Closed, origin: this.backplane.nodeId, epoch });
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
