import {
  ChannelMessageType,
  type ChannelMessage,
  type IBackplane,
  type Subscription,
} from "../backplane/backplane.js";
import type { IOwnership } from "../backplane/ownership.js";
import { AwarenessRegistry } from "../engine/awareness.js";
import type { DisconnectReason, SessionPeer } from "../engine/peer.js";
import { ErrorCodes, OpStreamError } from "../errors.js";
import type { Logger } from "../logging/logger.js";
import type { OpStreamMetrics } from "../metrics.js";
import type { DocumentHandle } from "./document-handle.js";
import { OwnerCalls, type CallingRelay } from "./owner-calls.js";
import type { MoveHint } from "./owner-search.js";
import { RelayMember, type RelayCalls } from "./relay-member.js";
import { RelayMove, type MovingRelay } from "./relay-move.js";
import { OwnerRequests, type ManagementRequest, type OwnerReply } from "./rpc.js";

export { DEFAULT_MOVE_TIMEOUT_MS } from "./relay-move.js";

/** Joins clients to a session this node owns (the router's local join). */
export interface LocalJoiner {
  /** The session's last durable seq when it opened. */
  readonly seq: number;
  join(peer: SessionPeer): DocumentHandle;
}

/** What a relay needs; the router provides it. */
export interface RelayDependencies {
  readonly backplane: IBackplane;
  readonly ownership: IOwnership;
  readonly logger: Logger;
  readonly metrics: OpStreamMetrics;
  /** Timeout of each request to the owner. @default the backplane's request timeout */
  readonly requestTimeoutMs?: number;
  /** How often the relay renews its clients with the owner ({@link OwnerRequests.PEERS}). @default 10000 */
  readonly remotePeerRenewalMs?: number;
  /**
   * Makes this node the document's owner when nobody holds its lease (acquire,
   * claim an epoch, open the session); resolves a joiner onto that session, or
   * null when another node holds the lease.
   */
  readonly takeOver: (docId: string) => Promise<LocalJoiner | null>;
  /**
   * How long a relay looks for its document's next owner before it gives up and
   * closes its clients (1013). It must cover a lease TTL: a hung owner is
   * replaced only once its lease expires. @default 30000
   */
  readonly moveTimeoutMs?: number;
}

const EMPTY = new Uint8Array(0);

/**
 * A document owned by another node, as seen by a node with clients on it. Client
 * requests are proxied to the owner; the owner's ops and awareness arrive on the
 * document's channel and are relayed to the local clients.
 *
 * The relay tracks the owner's `(epoch, seq)`: a skipped seq, or a heartbeat ahead
 * of it, makes it fetch the owner's full durable state (duplicates are harmless in
 * Yjs).
 *
 * **Owner changes keep the clients connected.** A new epoch on the channel (an
 * `Owner` message, an op or a heartbeat), a `Closed` message, or a request the
 * owner fails (NODE_GONE: it left the backplane; NOT_OWNER; a timeout) starts a
 * move: the relay finds the next owner — breaking the lease of an owner gone from
 * the backplane, taking the document over itself when nobody holds it — and
 * re-joins its clients there, or hands them to the local session when this node
 * took over. Each client then gets the new owner's full state and a sync step 1,
 * which it answers with a sync step 2 holding whatever the new owner lacks (edits
 * the old owner never made durable included); its awareness is re-announced.
 * Requests made meanwhile wait for the move and then go to the new owner. Only a
 * move that finds no owner within `moveTimeoutMs` closes the clients (1013).
 */
export class RelayDocument implements RelayCalls {
  private readonly members = new Map<string, RelayMember>();
  private awareness = new AwarenessRegistry({ coalesceWindowMs: 0 });
  private subscription: Subscription | undefined;
  /** Channel messages that arrived before a join told us where the owner's stream stands. */
  private early: ChannelMessage[] | undefined = [];
  private epoch = 0;
  private seq = 0;
  private resyncing: Promise<void> | undefined;
  private closedReason: DisconnectReason | undefined;
  private renewalTimer: NodeJS.Timeout | undefined;
  /** Set once this node owns the document: the clients moved to its session. */
  private handedOver = false;
  /** Moves the clients to the document's next owner. */
  private readonly mover: RelayMove;
  /** Requests to the owner. */
  private readonly calls: OwnerCalls;

  private constructor(
    readonly docId: string,
    private owner: string,
    private readonly deps: RelayDependencies,
    private readonly onClosed: (relay: RelayDocument) => void,
  ) {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the move and the calls read the relay's live state
    const relay = this;
    const view: MovingRelay & CallingRelay = {
      docId,
      get owner() {
        return relay.owner;
      },
      set owner(owner) {
        relay.owner = owner;
      },
      get epoch() {
        return relay.epoch;
      },
      get seq() {
        return relay.seq;
      },
      get closed() {
        return relay.closed;
      },
      get early() {
        return relay.early;
      },
      get moving() {
        return relay.mover.moving;
      },
      closedError: () => this.closedError(),
      holdBack: () => {
        this.early ??= [];
      },
      members: () => [...this.members.values()],
      globalId: (peerId) => this.calls.globalId(peerId),
      resetAwareness: (states) => this.resetAwareness(states),
      applyAwareness: (member, update) => this.applyAwareness(member, update),
      followed: (reply) => this.followed(reply),
      handOff: () => this.handOff(),
      move: (hint) => this.move(hint),
      fail: (reason) => this.fail(reason),
    };
    this.mover = new RelayMove(view, deps);
    this.calls = new OwnerCalls(view, deps);
  }

  /** Subscribes first, so nothing published after the owner's join reply is missed. */
  static async open(
    docId: string,
    owner: string,
    deps: RelayDependencies,
    onClosed: (relay: RelayDocument) => void,
  ): Promise<RelayDocument> {
    const relay = new RelayDocument(docId, owner, deps, onClosed);
    relay.subscription = await deps.backplane.subscribe(docId, (message) => relay.onMessage(message));
    return relay;
  }

  /** True once it relays nothing more: closed, or its clients moved to a session on this node. */
  get closed(): boolean {
    return this.closedReason !== undefined || this.handedOver;
  }

  get peerCount(): number {
    return this.members.size;
  }

  /** Joins `peer` through the owner; rejects with NOT_OWNER when the relay closed meanwhile (the router retries). */
  async attach(peer: SessionPeer): Promise<DocumentHandle> {
    const globalId = this.calls.globalId(peer.id);
    const reply = await this.calls.call(OwnerRequests.JOIN, globalId, EMPTY);
    if (this.closed) throw this.closedError();
    if (this.early) this.start(reply);
    else if (reply.epoch !== this.epoch) {
      // The owner changed before this relay heard of it: follow it, then join again.
      void this.move({ owner: this.owner });
      throw this.closedError();
    }
    if (reply.extra.byteLength > 0) this.awareness.apply("owner", reply.extra, Date.now());
    const member = new RelayMember(this.docId, peer, globalId, reply.bytes, this);
    this.members.set(peer.id, member);
    if (!this.renewalTimer) {
      this.renewalTimer = setInterval(() => this.renew(), this.deps.remotePeerRenewalMs ?? 10_000);
      this.renewalTimer.unref();
    }
    return member;
  }

  /** Sends a management request to the owner (no client attached); see `OwnerRequests`. */
  async manage(type: ManagementRequest, payload: Uint8Array = EMPTY): Promise<OwnerReply> {
    if (this.closed) throw this.closedError();
    return this.calls.call(type, this.calls.globalId("manager"), payload);
  }

  /** Has the owner send a stateless message to every Hocuspocus client of the document (this node's via the channel). */
  async stateless(payload: string): Promise<void> {
    if (this.closed) throw this.closedError();
    await this.calls.call(
      OwnerRequests.STATELESS,
      this.calls.globalId("server"),
      new TextEncoder().encode(payload),
    );
  }

  /** Closes every client (retryable) and stops relaying. */
  close(reason: DisconnectReason): void {
    this.fail(reason);
  }

  /** Messages may have been lost (the backplane resubscribed): fetch the owner's state again. */
  resubscribed(): void {
    if (!this.closed && !this.early && !this.mover.moving) this.gap();
  }

  async syncStep1(member: RelayMember, stateVector: Uint8Array): Promise<Uint8Array> {
    return (await this.calls.call(OwnerRequests.SYNC, member.globalId, stateVector)).bytes;
  }

  async applyUpdate(member: RelayMember, update: Uint8Array): Promise<number | null> {
    const { seq } = await this.calls.call(OwnerRequests.APPLY, member.globalId, update);
    return seq === 0 ? null : seq;
  }

  async contains(member: RelayMember, update: Uint8Array): Promise<boolean> {
    return (await this.calls.call(OwnerRequests.CONTAINS, member.globalId, update)).bytes[0] === 1;
  }

  applyAwareness(member: RelayMember, update: Uint8Array): void {
    this.calls
      .call(OwnerRequests.AWARENESS, member.globalId, update)
      .catch((error: unknown) =>
        this.deps.logger.warn({ err: error, docId: this.docId }, "awareness not delivered to the owner"),
      );
  }

  awarenessStates(): Uint8Array | null {
    return this.awareness.encodeAll();
  }

  detach(member: RelayMember): void {
    if (this.members.get(member.peer.id) !== member) return;
    this.members.delete(member.peer.id);
    if (this.closed) return;
    this.calls
      .call(OwnerRequests.LEAVE, member.globalId, EMPTY)
      .catch((error: unknown) =>
        this.deps.logger.warn({ err: error, docId: this.docId }, "leave not delivered to the owner"),
      );
    if (this.members.size === 0 && !this.mover.moving) this.finish(undefined);
  }

  /** Renews this relay's clients with the owner (see {@link OwnerCalls.renew}). */
  private renew(): void {
    if (this.closed || this.early || this.mover.moving || this.members.size === 0) return;
    this.calls.renew([...this.members.values()].map((member) => member.globalId));
  }

  private start(reply: OwnerReply): void {
    this.epoch = reply.epoch;
    this.seq = reply.seq;
    const early = this.early ?? [];
    this.early = undefined;
    for (const message of early) this.onMessage(message);
  }

  private onMessage(message: ChannelMessage): void {
    if (this.closed) return;
    this.mover.news(message);
    if (this.early) {
      // The old owner's last ops, published while the move is under way, carry on
      // the stream the clients already follow: they go to them now, so that the new
      // owner's Owner message (which names the seq it opened at) finds the relay
      // level with it and the relay can follow at once (see RelayMove.rejoin).
      if (this.mover.moving && this.carriesOn(message)) this.relayUpdate(message);
      else this.early.push(message);
      return;
    }
    switch (message.type) {
      case ChannelMessageType.Update:
        if (message.epoch !== this.epoch) return this.ownerChanged(message.epoch, message.origin);
        if (message.seq <= this.seq) return; // already relayed (or covered by a resync)
        if (message.seq !== this.seq + 1) return this.gap();
        this.relayUpdate(message);
        return;
      case ChannelMessageType.Awareness:
        this.awareness.apply("owner", message.payload, Date.now());
        for (const member of this.members.values()) member.peer.sendAwareness(message.payload);
        return;
      case ChannelMessageType.Heartbeat:
        if (message.epoch !== this.epoch) return this.ownerChanged(message.epoch, message.origin);
        if (message.seq > this.seq) this.gap();
        return;
      case ChannelMessageType.Owner:
        if (message.epoch > this.epoch) this.ownerChanged(message.epoch, message.origin);
        return;
      case ChannelMessageType.Closed:
        if (message.epoch >= this.epoch)
          void this.move({ suspect: message.origin, successor: message.successor, closed: true });
        return;
      case ChannelMessageType.Stateless:
        for (const member of this.members.values()) member.peer.sendStateless?.(message.payload);
        return;
    }
  }

  /** Whether `message` is the next op of the stream this relay follows. */
  private carriesOn(
    message: ChannelMessage,
  ): message is ChannelMessage & { type: ChannelMessageType.Update } {
    return (
      message.type === ChannelMessageType.Update &&
      message.epoch === this.epoch &&
      message.seq === this.seq + 1
    );
  }

  private relayUpdate(message: ChannelMessage & { type: ChannelMessageType.Update }): void {
    this.seq = message.seq;
    for (const member of this.members.values()) member.peer.sendUpdate(message.payload);
  }

  /** A message of another epoch: a newer one names the new owner (its origin). */
  private ownerChanged(epoch: number, origin: string): void {
    if (epoch < this.epoch) return; // a stale message from an ex-owner
    this.deps.metrics.gaps.inc();
    void this.move({ owner: origin });
  }

  /** Fetches the owner's full durable state and sends it to every client. */
  private gap(): void {
    // Later messages that skip ahead while a resync is under way belong to the same
    // gap: count it once (a lost burst would otherwise count once per message).
    if (this.resyncing) return;
    this.deps.metrics.gaps.inc();
    this.resyncing = this.resync().finally(() => (this.resyncing = undefined));
  }

  private async resync(): Promise<void> {
    this.deps.metrics.resyncs.inc();
    try {
      const reply = await this.calls.call(OwnerRequests.RESYNC, this.calls.globalId("relay"), EMPTY);
      if (this.closed || this.early) return; // a move under way or done delivers the state itself
      if (reply.epoch !== this.epoch) return this.ownerChanged(reply.epoch, this.owner);
      for (const member of this.members.values()) member.peer.sendUpdate(reply.bytes);
      this.seq = Math.max(this.seq, reply.seq);
    } catch (error) {
      // The call moved to a new owner if it could; failing that, the relay has closed.
      this.deps.logger.warn({ err: error, docId: this.docId }, "resync failed");
    }
  }

  /** Starts a move to the document's next owner, or joins the one under way (see {@link RelayMove.run}). */
  private move(hint: MoveHint): Promise<void> {
    return this.mover.run(hint);
  }

  /** A move ended with the clients on another node: relay its stream. */
  private followed(reply: OwnerReply): void {
    this.start(reply);
    // Every client left during the move: nothing to relay any more.
    if (this.members.size === 0 && !this.closed) this.finish(undefined);
  }

  /** This node owns the document now: the relay stops and gives up its clients to its session. */
  private handOff(): RelayMember[] {
    this.handedOver = true;
    const members = [...this.members.values()];
    this.members.clear();
    this.finish(undefined);
    return members;
  }

  /** A new owner: its awareness `states` replace those of the old one. */
  private resetAwareness(states: Uint8Array | undefined): void {
    this.awareness = new AwarenessRegistry({ coalesceWindowMs: 0 });
    if (states && states.byteLength > 0) this.awareness.apply("owner", states, Date.now());
  }

  private fail(reason: DisconnectReason): void {
    if (this.closed) return;
    const members = [...this.members.values()];
    this.members.clear();
    this.finish(reason);
    for (const member of members) member.peer.disconnect(reason);
  }

  private finish(reason: DisconnectReason | undefined): void {
    if (!this.handedOver) this.closedReason = reason ?? "step-down";
    clearInterval(this.renewalTimer);
    this.calls.stop();
    this.early = undefined;
    this.subscription?.unsubscribe().catch((error: unknown) => {
      this.deps.logger.warn({ err: error, docId: this.docId }, "unsubscribe failed");
    });
    this.onClosed(this);
  }

  private closedError(): OpStreamError {
    return new OpStreamError(ErrorCodes.NOT_OWNER, `The relay of "${this.docId}" closed; rejoin.`, {
      docId: this.docId,
    });
  }
}
