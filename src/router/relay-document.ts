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
import { withRetries } from "./retry-policy.js";
import {
  OwnerRequests,
  decodeOwnerReply,
  encodeOwnerRequest,
  encodePeerIds,
  type ManagementRequest,
  type OwnerReply,
} from "./rpc.js";

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
}

const EMPTY = new Uint8Array(0);

/**
 * A document owned by another node, as seen by a node with clients on it. Client
 * requests are proxied to the owner; the owner's ops and awareness arrive on the
 * document's channel and are relayed to the local clients.
 *
 * The relay tracks the owner's `(epoch, seq)`: a skipped seq, or a heartbeat ahead
 * of it, makes it fetch the owner's full durable state (duplicates are harmless in
 * Yjs). A new epoch, a `Closed` message or an owner that cannot be reached means
 * the owner changed: the relay closes its clients with a retryable code and they
 * reconnect and rejoin. Their unacknowledged edits are safe in their own
 * documents, which the y-websocket sync resends on reconnect.
 */
export class RelayDocument {
  private readonly peers = new Map<string, SessionPeer>();
  private readonly awareness = new AwarenessRegistry({ coalesceWindowMs: 0 });
  private subscription: Subscription | undefined;
  /** Channel messages that arrived before the first join told us where the stream stands. */
  private early: ChannelMessage[] | undefined = [];
  private epoch = 0;
  private seq = 0;
  private resyncing: Promise<void> | undefined;
  private closedReason: DisconnectReason | undefined;
  private renewalTimer: NodeJS.Timeout | undefined;

  private constructor(
    readonly docId: string,
    private owner: string,
    private readonly deps: RelayDependencies,
    private readonly onClosed: (relay: RelayDocument) => void,
  ) {}

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

  get closed(): boolean {
    return this.closedReason !== undefined;
  }

  get peerCount(): number {
    return this.peers.size;
  }

  /** Joins `peer` through the owner; rejects with NOT_OWNER when the owner moved (the router retries). */
  async attach(peer: SessionPeer): Promise<DocumentHandle> {
    const globalId = this.globalId(peer.id);
    const reply = await this.call(OwnerRequests.JOIN, globalId, EMPTY);
    if (this.closedReason) throw this.closedError();
    if (this.early) this.start(reply);
    else if (reply.epoch !== this.epoch) {
      // The owner changed before this relay heard of it: the relay is stale for every
      // peer, this one included; the router re-joins it through a fresh relay.
      this.fail("step-down");
      throw this.closedError();
    }
    if (reply.extra.byteLength > 0) this.awareness.apply("owner", reply.extra, Date.now());
    this.peers.set(peer.id, peer);
    if (!this.renewalTimer) {
      this.renewalTimer = setInterval(() => this.renew(), this.deps.remotePeerRenewalMs ?? 10_000);
      this.renewalTimer.unref();
    }
    return this.handle(peer.id, globalId, reply.bytes);
  }

  /** Sends a management request to the owner (no client attached); see `OwnerRequests`. */
  async manage(type: ManagementRequest): Promise<OwnerReply> {
    if (this.closedReason) throw this.closedError();
    return this.call(type, this.globalId("manager"), EMPTY);
  }

  /** Has the owner send a stateless message to every Hocuspocus client of the document (this node's via the channel). */
  async stateless(payload: string): Promise<void> {
    if (this.closedReason) throw this.closedError();
    await this.call(OwnerRequests.STATELESS, this.globalId("server"), new TextEncoder().encode(payload));
  }

  /** Closes every client (retryable) and stops relaying. */
  close(reason: DisconnectReason): void {
    this.fail(reason);
  }

  /** Messages may have been lost (the backplane resubscribed): fetch the owner's state again. */
  resubscribed(): void {
    if (!this.closedReason && !this.early) this.gap();
  }

  private handle(peerId: string, globalId: string, stateVector: Uint8Array): DocumentHandle {
    let left = false;
    return {
      docId: this.docId,
      stateVector: () => Promise.resolve(stateVector),
      syncStep1: async (sv) => (await this.call(OwnerRequests.SYNC, globalId, sv)).bytes,
      apply: async (update) => {
        const { seq } = await this.call(OwnerRequests.APPLY, globalId, update);
        return seq === 0 ? null : seq;
      },
      contains: async (update) => (await this.call(OwnerRequests.CONTAINS, globalId, update)).bytes[0] === 1,
      applyAwareness: (update) => {
        this.call(OwnerRequests.AWARENESS, globalId, update).catch((error: unknown) =>
          this.deps.logger.warn({ err: error, docId: this.docId }, "awareness not delivered to the owner"),
        );
      },
      awarenessStates: () => this.awareness.encodeAll(),
      leave: () => {
        if (left) return;
        left = true;
        this.detach(peerId, globalId);
      },
    };
  }

  /**
   * Tells the owner which clients are still attached, so it can forget those whose
   * LEAVE never arrived. Best effort and never retried: the next renewal repeats it,
   * and a missing owner is the other requests' business.
   */
  private renew(): void {
    if (this.closedReason || this.early || this.peers.size === 0) return;
    const ids = [...this.peers.keys()].map((id) => this.globalId(id));
    const payload = encodeOwnerRequest({
      docId: this.docId,
      peerId: this.globalId("relay"),
      bytes: encodePeerIds(ids),
    });
    const options = this.deps.requestTimeoutMs === undefined ? {} : { timeoutMs: this.deps.requestTimeoutMs };
    this.deps.backplane
      .sendRequest(this.owner, OwnerRequests.PEERS, payload, options)
      .catch((error: unknown) => {
        this.deps.logger.debug({ err: error, docId: this.docId }, "peer renewal not delivered to the owner");
      });
  }

  private detach(peerId: string, globalId: string): void {
    if (!this.peers.delete(peerId) || this.closedReason) return;
    this.call(OwnerRequests.LEAVE, globalId, EMPTY).catch((error: unknown) =>
      this.deps.logger.warn({ err: error, docId: this.docId }, "leave not delivered to the owner"),
    );
    if (this.peers.size === 0) this.finish(undefined);
  }

  private start(reply: OwnerReply): void {
    this.epoch = reply.epoch;
    this.seq = reply.seq;
    const early = this.early ?? [];
    this.early = undefined;
    for (const message of early) this.onMessage(message);
  }

  private onMessage(message: ChannelMessage): void {
    if (this.closedReason) return;
    if (this.early) {
      this.early.push(message);
      return;
    }
    switch (message.type) {
      case ChannelMessageType.Update:
        if (message.epoch !== this.epoch) return this.epochChanged(message.epoch);
        if (message.seq <= this.seq) return; // already relayed (or covered by a resync)
        if (message.seq !== this.seq + 1) return this.gap();
        this.seq = message.seq;
        for (const peer of this.peers.values()) peer.sendUpdate(message.payload);
        return;
      case ChannelMessageType.Awareness:
        this.awareness.apply("owner", message.payload, Date.now());
        for (const peer of this.peers.values()) peer.sendAwareness(message.payload);
        return;
      case ChannelMessageType.Heartbeat:
        if (message.epoch !== this.epoch) return this.epochChanged(message.epoch);
        if (message.seq > this.seq) this.gap();
        return;
      case ChannelMessageType.Closed:
        if (message.epoch >= this.epoch) this.fail("step-down");
        return;
      case ChannelMessageType.Stateless:
        for (const peer of this.peers.values()) peer.sendStateless?.(message.payload);
        return;
    }
  }

  private epochChanged(epoch: number): void {
    if (epoch < this.epoch) return; // a stale message from an ex-owner
    this.deps.metrics.gaps.inc();
    this.fail("step-down");
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
      if (this.closedReason) return;
      if (reply.epoch !== this.epoch) return this.epochChanged(reply.epoch);
      for (const peer of this.peers.values()) peer.sendUpdate(reply.bytes);
      this.seq = Math.max(this.seq, reply.seq);
    } catch (error) {
      this.deps.logger.warn({ err: error, docId: this.docId }, "resync failed; closing the relay");
      this.fail("step-down");
    }
  }

  /**
   * One request to the owner, retried as the `ownerCall` policy says (see
   * retry-policy.ts), re-resolving the owner after each backoff. After a retryable
   * failure the owner key decides: another node took over → retry there; the same
   * node answered NOT_OWNER/NO_HANDLER (a handover under way) → retry it; the same
   * node did not answer, or nobody/this node owns it now → the relay closes (its
   * clients rejoin, and the router acquires or relays afresh). Out of attempts,
   * the relay closes too, so no request hangs.
   */
  private async call(type: string, peerId: string, bytes: Uint8Array): Promise<OwnerReply> {
    const payload = encodeOwnerRequest({ docId: this.docId, peerId, bytes });
    const options = this.deps.requestTimeoutMs === undefined ? {} : { timeoutMs: this.deps.requestTimeoutMs };
    let target = this.owner;
    return withRetries(
      async () => {
        target = this.owner;
        return decodeOwnerReply(await this.deps.backplane.sendRequest(target, type, payload, options));
      },
      {
        kind: "ownerCall",
        shouldStop: () => (this.closedReason ? this.closedError() : undefined),
        onExhausted: () => this.ownerLost(this.owner),
        onRetry: async (error) => {
          const owner = await this.deps.ownership.ownerOf(this.docId);
          const moved = owner !== null && owner !== target && owner !== this.deps.backplane.nodeId;
          // A timeout (counted once, by the backplane that timed the request out) means
          // the same node is unreachable, not that it is handing over.
          const timedOut = error.code === ErrorCodes.REQUEST_TIMEOUT;
          if (!moved && (owner !== target || timedOut)) throw this.ownerLost(owner);
          this.deps.metrics.rpcRetries.inc();
          this.owner = owner ?? target;
        },
      },
    );
  }

  /** The owner cannot be reached or moved away: close the relay; the caller's clients rejoin. */
  private ownerLost(owner: string | null): OpStreamError {
    this.fail("step-down");
    return new OpStreamError(ErrorCodes.NOT_OWNER, `The owner of "${this.docId}" changed; rejoin.`, {
      docId: this.docId,
      owner,
    });
  }

  private globalId(peerId: string): string {
    return `${this.deps.backplane.nodeId}/${peerId}`;
  }

  private fail(reason: DisconnectReason): void {
    if (this.closedReason) return;
    const peers = [...this.peers.values()];
    this.peers.clear();
    this.finish(reason);
    for (const peer of peers) peer.disconnect(reason);
  }

  private finish(reason: DisconnectReason | undefined): void {
    this.closedReason = reason ?? "step-down";
    clearInterval(this.renewalTimer);
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
