import { ChannelMessageType, type ChannelMessage, type IBackplane } from "../backplane/backplane.js";
import type { Logger } from "../logging/logger.js";
import type { OpStreamMetrics } from "../metrics.js";
import { soleSender, type Captured } from "./batch.js";
import type { DisconnectReason, SessionPeer } from "./peer.js";
import type { SessionServices } from "./session-services.js";
import { fnv1a } from "../backplane/fnv1a.js";
import { SessionHooks } from "./session-hooks.js";

/** A document's failing publishes are warned about at most this often (the rest at debug). */
const PUBLISH_WARN_INTERVAL_MS = 10_000;

/**
 * Where a session's durable ops, awareness changes and lifecycle go: its local
 * peers (never back to the sender), the document's backplane channel for other
 * nodes, and this node's hooks (`builder.on()`), each told after the channel.
 */
export class FanOut {
  private readonly peers = new Map<string, SessionPeer>();
  private readonly backplane: IBackplane;
  private readonly metrics: OpStreamMetrics;
  private readonly logger: Logger;
  private readonly hooks: SessionHooks | undefined;
  /** `performance.now()` of the last publish failure logged as a warning. */
  private publishWarnedAt = -Infinity;

  constructor(
    private readonly docId: string,
    deps: Pick<SessionServices, "backplane" | "metrics" | "logger" | "hooks">,
  ) {
    this.backplane = deps.backplane;
    this.metrics = deps.metrics;
    this.logger = deps.logger;
    this.hooks = deps.hooks && new SessionHooks(deps.hooks, docId);
  }

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

  /**
   * A durable op (the batch's `captured` changes merged): to every peer but its
   * sole sender, on the channel with its (epoch, seq), and to `change` hooks.
   */
  update(update: Uint8Array, epoch: number, seq: number, captured: readonly Captured[]): void {
    const exceptPeerId = soleSender(captured);
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
    this.hooks?.changed(seq, captured);
  }

  /** An awareness change: to every peer but its sender, on the channel, and to `awareness` hooks (`added`: new client ids). */
  awareness(update: Uint8Array, exceptPeerId: string | undefined, added: readonly number[] = []): void {
    for (const [id, peer] of this.peers) if (id !== exceptPeerId) peer.sendAwareness(update);
    this.publish({ type: ChannelMessageType.Awareness, origin: this.backplane.nodeId, payload: update });
    this.hooks?.awareness(update, added);
  }

  /** A stateless message: to every local peer that takes one (the sender included), and on the channel. */
  stateless(payload: string): void {
    for (const peer of this.peers.values()) peer.sendStateless?.(payload);
    this.publish({ type: ChannelMessageType.Stateless, origin: this.backplane.nodeId, payload });
  }

  /**
   * Tells other nodes the session of `epoch` closed, so their relays re-resolve the
   * owner at once; `successor` (from {@link successor}) is the one that takes over.
   * Then `unloaded` hooks, with why it closed.
   */
  closed(epoch: number, successor: string, reason: DisconnectReason | "unloaded"): void {
    this.publish({ type: ChannelMessageType.Closed, origin: this.backplane.nodeId, epoch, successor });
    this.hooks?.unloaded(epoch, reason);
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
      const node = peer.remote ? peer.node : undefined;
      if (node === undefined) continue;
      const score = fnv1a(`${this.docId}\n${node}`);
      if (score > bestScore || (score === bestScore && node < best)) {
        best = node;
        bestScore = score;
      }
    }
    return best;
  }

  /**
   * A session of `epoch` opened here at `seq`: this node is the new owner, relays
   * follow it at once, and `loaded` hooks run.
   */
  owner(epoch: number, seq: number): void {
    this.publish({ type: ChannelMessageType.Owner, origin: this.backplane.nodeId, epoch, seq });
    this.hooks?.loaded(epoch, seq);
  }

  /** The owner's latest (epoch, seq), so relays notice a lost message without waiting for the next op. */
  heartbeat(epoch: number, seq: number): void {
    this.publish({ type: ChannelMessageType.Heartbeat, origin: this.backplane.nodeId, epoch, seq });
  }

  private publish(message: ChannelMessage): void {
    this.backplane.publish(this.docId, message).catch((error: unknown) => {
      // Not fatal: the op is durable, and relays detect the gap by seq and resync.
      this.metrics.backplaneErrors.inc();
      // While Redis is away every publish fails: warn once per document per interval.
      const now = performance.now();
      const warn = now - this.publishWarnedAt >= PUBLISH_WARN_INTERVAL_MS;
      if (warn) this.publishWarnedAt = now;
      this.logger[warn ? "warn" : "debug"](
        { err: error, docId: this.docId },
        "backplane publish failed; relays will resync",
      );
    });
  }
}
