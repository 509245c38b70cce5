import {
  ChannelMessageType,
  type ChannelMessage,
  type IBackplane,
  type Subscription,
} from "../backplane/backplane.js";
import type { IOwnership } from "../backplane/ownership.js";
import { AwarenessRegistry } from "../engine/awareness.js";
import type { DisconnectReason, SessionPeer } from "../engine/peer.js";
import { ErrorCodes, OpStreamError, isOpStreamError } from "../errors.js";
import type { Logger } from "../logging/logger.js";
import type { OpStreamMetrics } from "../metrics.js";
import type { DocumentHandle } from "./document-handle.js";
import { EMPTY_STATE_VECTOR, RelayMember, type RelayCalls } from "./relay-member.js";
import { LeaseWatch } from "./lease-watch.js";
import { OwnerSearch, REJOIN_STALE, type MoveHint } from "./owner-search.js";
import { isRetryable, withRetries } from "./retry-policy.js";
import {
  OwnerRequests,
  decodeOwnerReply,
  encodeOwnerRequest,
  encodePeerIds,
  type ManagementRequest,
  type OwnerReply,
} from "./rpc.js";

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

/** Each request of a move waits at most this long: a hung owner must not hold the move for a whole request timeout. */
const MOVE_REQUEST_TIMEOUT_MS = 1000;

/** Default of {@link RelayDependencies.moveTimeoutMs}. */
export const DEFAULT_MOVE_TIMEOUT_MS = 30_000;

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
  /** The move to a new owner under way. */
  private moving: Promise<void> | undefined;
  /** Set once this node owns the document: the clients moved to its session. */
  private handedOver = false;
  /** Watches the owner's lease while calls go unanswered. */
  private readonly leaseWatch: LeaseWatch;
  /** The latest Owner message: where and at which seq the newest session opened. */
  private opened: { origin: string; epoch: number; seq: number } | undefined;
  /** Called on every Owner message while a rejoin waits for its joins. */
  private onOpened: (() => void) | undefined;
  /** Finds the next owner during a move. */
  private readonly search: OwnerSearch<LocalJoiner>;

  private constructor(
    readonly docId: string,
    private owner: string,
    private readonly deps: RelayDependencies,
    private readonly onClosed: (relay: RelayDocument) => void,
  ) {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the search reads the relay's live state
    const relay = this;
    this.search = new OwnerSearch<LocalJoiner>(
      {
        docId,
        get epoch() {
          return relay.epoch;
        },
        get owner() {
          return relay.owner;
        },
        get closed() {
          return relay.closed;
        },
        closedError: () => this.closedError(),
        rejoin: (to, current) => this.rejoin(to, current),
        handOver: (local) => this.handOver(local),
      },
      deps,
    );
    this.leaseWatch = new LeaseWatch(
      {
        docId,
        get owner() {
          return relay.owner;
        },
        get closed() {
          return relay.closed;
        },
        get moving() {
          return relay.moving !== undefined;
        },
        ownerLost: (owner) => void this.move({ suspect: owner }),
      },
      deps.ownership,
    );
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
    const globalId = this.globalId(peer.id);
    const reply = await this.call(OwnerRequests.JOIN, globalId, EMPTY);
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
  async manage(type: ManagementRequest): Promise<OwnerReply> {
    if (this.closed) throw this.closedError();
    return this.call(type, this.globalId("manager"), EMPTY);
  }

  /** Has the owner send a stateless message to every Hocuspocus client of the document (this node's via the channel). */
  async stateless(payload: string): Promise<void> {
    if (this.closed) throw this.closedError();
    await this.call(OwnerRequests.STATELESS, this.globalId("server"), new TextEncoder().encode(payload));
  }

  /** Closes every client (retryable) and stops relaying. */
  close(reason: DisconnectReason): void {
    this.fail(reason);
  }

  /** Messages may have been lost (the backplane resubscribed): fetch the owner's state again. */
  resubscribed(): void {
    if (!this.closed && !this.early && !this.moving) this.gap();
  }

  async syncStep1(member: RelayMember, stateVector: Uint8Array): Promise<Uint8Array> {
    return (await this.call(OwnerRequests.SYNC, member.globalId, stateVector)).bytes;
  }

  async applyUpdate(member: RelayMember, update: Uint8Array): Promise<number | null> {
    const { seq } = await this.call(OwnerRequests.APPLY, member.globalId, update);
    return seq === 0 ? null : seq;
  }

  async contains(member: RelayMember, update: Uint8Array): Promise<boolean> {
    return (await this.call(OwnerRequests.CONTAINS, member.globalId, update)).bytes[0] === 1;
  }

  applyAwareness(member: RelayMember, update: Uint8Array): void {
    this.call(OwnerRequests.AWARENESS, member.globalId, update).catch((error: unknown) =>
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
    this.call(OwnerRequests.LEAVE, member.globalId, EMPTY).catch((error: unknown) =>
      this.deps.logger.warn({ err: error, docId: this.docId }, "leave not delivered to the owner"),
    );
    if (this.members.size === 0 && !this.moving) this.finish(undefined);
  }

  /**
   * Tells the owner which clients are still attached, so it can forget those whose
   * LEAVE never arrived. Best effort and never retried: the next renewal repeats it.
   * An owner found gone from the backplane starts a move: a relay whose clients are
   * idle notices a crashed owner this way.
   */
  private renew(): void {
    if (this.closed || this.early || this.moving || this.members.size === 0) return;
    const ids = [...this.members.values()].map((member) => member.globalId);
    const payload = encodeOwnerRequest({
      docId: this.docId,
      peerId: this.globalId("relay"),
      bytes: encodePeerIds(ids),
    });
    const owner = this.owner;
    this.deps.backplane
      .sendRequest(owner, OwnerRequests.PEERS, payload, this.requestOptions())
      .catch((error: unknown) => {
        this.deps.logger.debug({ err: error, docId: this.docId }, "peer renewal not delivered to the owner");
        if (isOpStreamError(error, ErrorCodes.NODE_GONE)) void this.move({ suspect: owner });
      });
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
    if (message.type === ChannelMessageType.Owner) {
      this.opened = message;
      this.onOpened?.();
    }
    if (this.moving) this.search.news(message);
    if (this.early) {
      // The old owner's last ops, published while the move is under way, carry on
      // the stream the clients already follow: they go to them now, so that the new
      // owner's Owner message (which names the seq it opened at) finds the relay
      // level with it and the relay can follow at once (see rejoin).
      if (this.moving && this.carriesOn(message)) this.relayUpdate(message);
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
          void this.move({ suspect: message.origin, successor: message.successor });
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
      const reply = await this.call(OwnerRequests.RESYNC, this.globalId("relay"), EMPTY);
      if (this.closed || this.early) return; // a move under way or done delivers the state itself
      if (reply.epoch !== this.epoch) return this.ownerChanged(reply.epoch, this.owner);
      for (const member of this.members.values()) member.peer.sendUpdate(reply.bytes);
      this.seq = Math.max(this.seq, reply.seq);
    } catch (error) {
      // The call moved to a new owner if it could; failing that, the relay has closed.
      this.deps.logger.warn({ err: error, docId: this.docId }, "resync failed");
    }
  }

  /**
   * One request to the owner, retried as the `ownerCall` policy says (see
   * retry-policy.ts). A failure that says the owner is gone or changing (NODE_GONE,
   * NOT_OWNER, NO_HANDLER, a timeout) starts a move; the next attempt waits for it
   * and goes to the new owner. Once the relay closed (or handed its clients to a
   * local session) the call rejects with NOT_OWNER.
   */
  private call(type: string, peerId: string, bytes: Uint8Array): Promise<OwnerReply> {
    const payload = encodeOwnerRequest({ docId: this.docId, peerId, bytes });
    return withRetries(
      async () => {
        await this.settled();
        const target = this.owner;
        this.leaseWatch.sent();
        try {
          const reply = await this.deps.backplane.sendRequest(target, type, payload, this.requestOptions());
          this.leaseWatch.answered();
          return decodeOwnerReply(reply);
        } catch (error) {
          if (isRetryable("ownerCall", error)) void this.move({ suspect: target });
          throw error;
        } finally {
          this.leaseWatch.settled();
        }
      },
      {
        kind: "ownerCall",
        shouldStop: () => (this.closed ? this.closedError() : undefined),
        onRetry: () => this.deps.metrics.rpcRetries.inc(),
        onExhausted: (error) => {
          this.deps.logger.warn(
            { err: error, docId: this.docId },
            "the owner kept failing; closing the relay",
          );
          this.fail("step-down");
          return this.closedError();
        },
      },
    );
  }

  /** Waits for the move under way, if any; rejects with NOT_OWNER once the relay relays no more. */
  private async settled(): Promise<void> {
    while (this.moving) await this.moving;
    if (this.closed) throw this.closedError();
  }

  /**
   * Starts a move to the document's next owner (one at a time: a move under way
   * serves every later reason). A failure of an owner the relay already left is
   * stale and ignored.
   */
  private move(hint: MoveHint): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.moving) return this.moving;
    if (hint.suspect !== undefined && hint.suspect !== this.owner) return Promise.resolve();
    this.early ??= [];
    const moving = this.search.run(hint, this.deps.moveTimeoutMs ?? DEFAULT_MOVE_TIMEOUT_MS).then(
      (reply) => {
        this.moving = undefined;
        this.deps.metrics.relayMoves.inc({ outcome: reply ? "followed" : "took-over" });
        if (!reply) return;
        this.start(reply);
        // Every client left during the move: nothing to relay any more.
        if (this.members.size === 0 && !this.closed) this.finish(undefined);
      },
      (error: unknown) => {
        this.moving = undefined;
        if (this.closed) return;
        this.deps.metrics.relayMoves.inc({ outcome: "failed" });
        this.deps.logger.warn(
          { err: error, docId: this.docId },
          "no new owner found; closing the relay's clients",
        );
        this.fail("step-down");
      },
    );
    this.moving = moving;
    return moving;
  }

  /**
   * Joins every client to `owner` and reconciles it: the owner's full state (what
   * the old owner fanned out but the client never got), then a sync step 1 (the
   * client answers with what the owner lacks), and its awareness again.
   *
   * When `owner` announced itself (Owner) at the very seq this relay's stream had
   * reached, the clients miss nothing: the relay follows it at once, and the joins
   * and sync steps run meanwhile (a busy new owner may take a while to answer them,
   * and edits need not wait for that). A join that then fails moves the relay again.
   */
  private async rejoin(owner: string, current: () => boolean): Promise<OwnerReply> {
    this.owner = owner;
    const opened = this.openedBy(owner);
    if (opened) return this.followAtOnce(owner, opened.epoch);
    const members = [...this.members.values()];
    const send = (type: string, peerId: string, bytes: Uint8Array): Promise<OwnerReply> =>
      this.sendDuringMove(owner, type, peerId, bytes);
    const joining = Promise.all(members.map((member) => send(OwnerRequests.JOIN, member.globalId, EMPTY)));
    // The joins went out before the owner finished opening (it answers them once it
    // has): when its Owner message names this relay's seq first, follow it then.
    const announced = await this.untilOpened(owner, joining);
    if (announced) {
      if (!current()) throw REJOIN_STALE;
      return this.followAtOnce(owner, announced.epoch, members, joining);
    }
    const joined = await joining;
    // The log's seq runs on across epochs: when the new owner's log ends where this
    // relay's stream did, the clients already hold every durable op and need no
    // full state (the common case after a crash or a handoff), only the sync step 1.
    const first = joined[0];
    const upToDate = first !== undefined && joined.every((reply) => reply.seq <= this.seq);
    // Otherwise the ops the new owner appended since are usually buffered already
    // (this relay stayed subscribed throughout): when they follow on from its stream
    // without a hole, relaying them is the whole catch-up, and no full state is sent.
    const buffered = first === undefined || upToDate ? this.seq : this.bufferedThrough(first.epoch);
    const caughtUp = first !== undefined && joined.every((reply) => reply.seq <= buffered);
    const state = caughtUp
      ? { epoch: first.epoch, seq: upToDate ? first.seq : this.seq, bytes: EMPTY, extra: EMPTY }
      : await send(OwnerRequests.RESYNC, this.globalId("relay"), EMPTY);
    if (!current()) throw REJOIN_STALE;
    if (joined.some((reply) => reply.epoch !== state.epoch)) {
      throw new OpStreamError(ErrorCodes.NOT_OWNER, `The owner of "${this.docId}" changed again.`, {
        docId: this.docId,
      });
    }
    this.reconcile(members, joined, caughtUp ? undefined : state.bytes);
    return state;
  }

  /** The Owner message of `owner`, when it opened at the very seq this relay's stream reached. */
  private openedBy(owner: string): { epoch: number } | undefined {
    const opened = this.opened;
    return opened && opened.origin === owner && opened.epoch > this.epoch && opened.seq === this.seq
      ? opened
      : undefined;
  }

  /**
   * Resolves {@link openedBy}'s message as soon as `owner` announces itself at this
   * relay's seq, or undefined once `joining` settled first.
   */
  private async untilOpened(
    owner: string,
    joining: Promise<unknown>,
  ): Promise<{ epoch: number } | undefined> {
    try {
      return await Promise.race([
        joining.then(
          () => undefined,
          () => undefined,
        ),
        new Promise<{ epoch: number }>((resolve) => {
          this.onOpened = () => {
            const opened = this.openedBy(owner);
            if (opened) resolve(opened);
          };
        }),
      ]);
    } finally {
      this.onOpened = undefined;
    }
  }

  /**
   * Relays from `owner` at once (its stream carries on from this relay's seq); the
   * joins, already sent or sent now, and the sync steps run meanwhile.
   */
  private followAtOnce(
    owner: string,
    epoch: number,
    members?: readonly RelayMember[],
    joining?: Promise<OwnerReply[]>,
  ): OwnerReply {
    void this.joinMeanwhile(owner, epoch, members, joining);
    return { epoch, seq: this.seq, bytes: EMPTY, extra: EMPTY };
  }

  /** The joins and sync steps of a rejoin whose relaying already started (see rejoin). */
  private async joinMeanwhile(
    owner: string,
    epoch: number,
    members: readonly RelayMember[] = [...this.members.values()],
    joining?: Promise<OwnerReply[]>,
  ): Promise<void> {
    try {
      const joined = await (joining ??
        Promise.all(
          members.map((member) => this.sendDuringMove(owner, OwnerRequests.JOIN, member.globalId, EMPTY)),
        ));
      if (this.closed || this.moving || this.owner !== owner) return;
      // It opened the document again meanwhile: a full rejoin.
      if (joined.some((reply) => reply.epoch !== epoch)) return void this.move({ owner });
      this.reconcile(members, joined, undefined);
    } catch (error) {
      if (this.closed || this.owner !== owner) return;
      this.deps.logger.warn(
        { err: error, docId: this.docId },
        "rejoining the new owner failed; moving again",
      );
      void this.move({ suspect: owner });
    }
  }

  /**
   * Each client after its join: the owner's full state when it may lack some
   * (`state`), a sync step 1 with the owner's state vector, the owner's awareness
   * states, and its own awareness again.
   */
  private reconcile(
    members: readonly RelayMember[],
    joined: readonly OwnerReply[],
    state?: Uint8Array,
  ): void {
    this.awareness = new AwarenessRegistry({ coalesceWindowMs: 0 });
    const states = joined[0]?.extra;
    if (states && states.byteLength > 0) this.awareness.apply("owner", states, Date.now());
    members.forEach((member, index) => {
      if (member.gone) return;
      member.rejoined(joined[index]?.bytes ?? EMPTY_STATE_VECTOR);
      if (state) member.peer.sendUpdate(state);
      member.peer.sendSyncStep1?.(joined[index]?.bytes ?? EMPTY_STATE_VECTOR);
      if (states && states.byteLength > 0) member.peer.sendAwareness(states);
      if (member.awareness) this.applyAwareness(member, member.awareness);
    });
  }

  /** One request of a move: at most {@link MOVE_REQUEST_TIMEOUT_MS}, so a hung node cannot hold the move. */
  private async sendDuringMove(
    owner: string,
    type: string,
    peerId: string,
    bytes: Uint8Array,
  ): Promise<OwnerReply> {
    return decodeOwnerReply(
      await this.deps.backplane.sendRequest(
        owner,
        type,
        encodeOwnerRequest({ docId: this.docId, peerId, bytes }),
        { timeoutMs: Math.min(this.deps.requestTimeoutMs ?? Infinity, MOVE_REQUEST_TIMEOUT_MS) },
      ),
    );
  }

  /**
   * The highest seq up to which ops of `epoch` buffered during the move follow on
   * from this relay's stream without a hole (its own seq when none do).
   */
  private bufferedThrough(epoch: number): number {
    const seqs = new Set<number>();
    for (const message of this.early ?? []) {
      if (message.type === ChannelMessageType.Update && message.epoch === epoch) seqs.add(message.seq);
    }
    let through = this.seq;
    while (seqs.has(through + 1)) through += 1;
    return through;
  }

  /** This node owns the document now: every client moves to its session, reconciled the same way. */
  private handOver(local: LocalJoiner): void {
    this.handedOver = true;
    const members = [...this.members.values()];
    this.members.clear();
    this.finish(undefined);
    for (const member of members) {
      if (member.gone) continue;
      let handle: DocumentHandle;
      try {
        handle = local.join(member.peer);
      } catch (error) {
        this.deps.logger.warn(
          { err: error, docId: this.docId },
          "could not move a client to the new session",
        );
        member.peer.disconnect("step-down");
        continue;
      }
      member.handOver(handle);
      void reconcileLocal(member, handle, local.seq <= this.seq).catch((error: unknown) =>
        this.deps.logger.warn({ err: error, docId: this.docId }, "could not reconcile a moved client"),
      );
    }
  }

  private requestOptions(): { timeoutMs?: number } {
    return this.deps.requestTimeoutMs === undefined ? {} : { timeoutMs: this.deps.requestTimeoutMs };
  }

  private globalId(peerId: string): string {
    return `${this.deps.backplane.nodeId}/${peerId}`;
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
    this.leaseWatch.stop();
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

/**
 * A client just moved onto this node's session: the full state (unless the
 * relay's stream had reached the session's last seq), a sync step 1, and its
 * awareness again.
 */
async function reconcileLocal(member: RelayMember, handle: DocumentHandle, upToDate: boolean): Promise<void> {
  if (!upToDate) member.peer.sendUpdate(await handle.syncStep1(EMPTY_STATE_VECTOR));
  member.peer.sendSyncStep1?.(await handle.stateVector());
  if (member.awareness) handle.applyAwareness(member.awareness);
  const states = handle.awarenessStates();
  if (states) member.peer.sendAwareness(states);
}
