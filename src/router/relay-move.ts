import { ChannelMessageType, type ChannelMessage } from "../backplane/backplane.js";
import type { DisconnectReason } from "../engine/peer.js";
import { ErrorCodes, OpStreamError } from "../errors.js";
import type { DocumentHandle } from "./document-handle.js";
import { EMPTY_STATE_VECTOR, type RelayMember } from "./relay-member.js";
import { OwnerSearch, REJOIN_STALE, type MoveHint } from "./owner-search.js";
import type { LocalJoiner, RelayDependencies } from "./relay-document.js";
import { OwnerRequests, decodeOwnerReply, encodeOwnerRequest, type OwnerReply } from "./rpc.js";

const EMPTY = new Uint8Array(0);

/** Each request of a move waits at most this long: a hung owner must not hold the move for a whole request timeout. */
const MOVE_REQUEST_TIMEOUT_MS = 1000;

/** Default of {@link RelayDependencies.moveTimeoutMs}. */
export const DEFAULT_MOVE_TIMEOUT_MS = 30_000;

/** What a move reads and does of its relay; the relay implements it. */
export interface MovingRelay {
  readonly docId: string;
  /** The node the relay follows; a rejoin points it at the node it rejoins. */
  owner: string;
  /** The epoch of the stream the relay follows. */
  readonly epoch: number;
  /** The last seq the relay relayed. */
  readonly seq: number;
  /** True once it relays nothing more: closed, or its clients moved to a session on this node. */
  readonly closed: boolean;
  closedError(): Error;
  /** Channel messages held back until a join tells where the owner's stream stands. */
  readonly early: readonly ChannelMessage[] | undefined;
  /** Holds channel messages back (in `early`) from now on, until the move says where the stream stands. */
  holdBack(): void;
  /** The relay's clients now. */
  members(): RelayMember[];
  /** The id of `peerId` cluster-wide: `<nodeId>/<peerId>`. */
  globalId(peerId: string): string;
  /** Drops the awareness states the relay knew, and keeps the new owner's `states` instead. */
  resetAwareness(states: Uint8Array | undefined): void;
  /** Sends a client's awareness update to the owner (best effort). */
  applyAwareness(member: RelayMember, update: Uint8Array): void;
  /** The move ended with the clients on another node: relay its stream from `reply`'s (epoch, seq). */
  followed(reply: OwnerReply): void;
  /** Stops relaying for good and gives up its clients (a session on this node takes them). */
  handOff(): RelayMember[];
  /** Closes every client (retryable) and stops relaying. */
  fail(reason: DisconnectReason): void;
}

/**
 * A relay's moves to its document's next owner, one at a time: an {@link OwnerSearch}
 * finds the owner; the move re-joins the relay's clients there and reconciles them
 * (or hands them to the local session when this node took the document over), then
 * the relay relays the new owner's stream.
 */
export class RelayMove {
  /** The move to a new owner under way. */
  private current: Promise<void> | undefined;
  /** The latest Owner message: where and at which seq the newest session opened. */
  private opened: { origin: string; epoch: number; seq: number } | undefined;
  /** Called on every Owner message while a rejoin waits for its joins. */
  private onOpened: (() => void) | undefined;
  /** Finds the next owner during a move. */
  private readonly search: OwnerSearch<LocalJoiner>;

  constructor(
    private readonly relay: MovingRelay,
    private readonly deps: RelayDependencies,
  ) {
    this.search = new OwnerSearch<LocalJoiner>(
      {
        docId: relay.docId,
        get epoch() {
          return relay.epoch;
        },
        get owner() {
          return relay.owner;
        },
        get closed() {
          return relay.closed;
        },
        closedError: () => relay.closedError(),
        rejoin: (to, current) => this.rejoin(to, current),
        handOver: (local) => this.handOver(local),
      },
      deps,
    );
  }

  /** The move under way, if any. */
  get moving(): Promise<void> | undefined {
    return this.current;
  }

  /** Every channel message the relay receives, before it relays or holds it back. */
  news(message: ChannelMessage): void {
    if (message.type === ChannelMessageType.Owner) {
      this.opened = message;
      this.onOpened?.();
    }
    if (this.current) this.search.news(message);
  }

  /**
   * Starts a move to the document's next owner (one at a time: a move under way
   * serves every later reason). A failure of an owner the relay already left is
   * stale and ignored.
   */
  run(hint: MoveHint): Promise<void> {
    if (this.relay.closed) return Promise.resolve();
    if (this.current) return this.current;
    if (hint.suspect !== undefined && hint.suspect !== this.relay.owner) return Promise.resolve();
    this.relay.holdBack();
    const moving = this.search.run(hint, this.deps.moveTimeoutMs ?? DEFAULT_MOVE_TIMEOUT_MS).then(
      (reply) => {
        this.current = undefined;
        this.deps.metrics.relayMoves.inc({ outcome: reply ? "followed" : "took-over" });
        if (!reply) return;
        this.relay.followed(reply);
      },
      (error: unknown) => {
        this.current = undefined;
        if (this.relay.closed) return;
        this.deps.metrics.relayMoves.inc({ outcome: "failed" });
        this.deps.logger.warn(
          { err: error, docId: this.relay.docId },
          "no new owner found; closing the relay's clients",
        );
        this.relay.fail("step-down");
      },
    );
    this.current = moving;
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
    this.relay.owner = owner;
    const opened = this.openedBy(owner);
    if (opened) return this.followAtOnce(owner, opened.epoch);
    const members = this.relay.members();
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
    const upToDate = first !== undefined && joined.every((reply) => reply.seq <= this.relay.seq);
    // Otherwise the ops the new owner appended since are usually buffered already
    // (this relay stayed subscribed throughout): when they follow on from its stream
    // without a hole, relaying them is the whole catch-up, and no full state is sent.
    const buffered = first === undefined || upToDate ? this.relay.seq : this.bufferedThrough(first.epoch);
    const caughtUp = first !== undefined && joined.every((reply) => reply.seq <= buffered);
    const state = caughtUp
      ? { epoch: first.epoch, seq: upToDate ? first.seq : this.relay.seq, bytes: EMPTY, extra: EMPTY }
      : await send(OwnerRequests.RESYNC, this.relay.globalId("relay"), EMPTY);
    if (!current()) throw REJOIN_STALE;
    if (joined.some((reply) => reply.epoch !== state.epoch)) {
      throw new OpStreamError(ErrorCodes.NOT_OWNER, `The owner of "${this.relay.docId}" changed again.`, {
        docId: this.relay.docId,
      });
    }
    this.reconcile(members, joined, caughtUp ? undefined : state.bytes);
    return state;
  }

  /** The Owner message of `owner`, when it opened at the very seq this relay's stream reached. */
  private openedBy(owner: string): { epoch: number } | undefined {
    const opened = this.opened;
    return opened &&
      opened.origin === owner &&
      opened.epoch > this.relay.epoch &&
      opened.seq === this.relay.seq
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
    return { epoch, seq: this.relay.seq, bytes: EMPTY, extra: EMPTY };
  }

  /** The joins and sync steps of a rejoin whose relaying already started (see rejoin). */
  private async joinMeanwhile(
    owner: string,
    epoch: number,
    members: readonly RelayMember[] = this.relay.members(),
    joining?: Promise<OwnerReply[]>,
  ): Promise<void> {
    try {
      const joined = await (joining ??
        Promise.all(
          members.map((member) => this.sendDuringMove(owner, OwnerRequests.JOIN, member.globalId, EMPTY)),
        ));
      if (this.relay.closed || this.current || this.relay.owner !== owner) return;
      // It opened the document again meanwhile: a full rejoin.
      if (joined.some((reply) => reply.epoch !== epoch)) return void this.run({ owner });
      this.reconcile(members, joined, undefined);
    } catch (error) {
      if (this.relay.closed || this.relay.owner !== owner) return;
      this.deps.logger.warn(
        { err: error, docId: this.relay.docId },
        "rejoining the new owner failed; moving again",
      );
      void this.run({ suspect: owner });
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
    const states = joined[0]?.extra;
    this.relay.resetAwareness(states);
    members.forEach((member, index) => {
      if (member.gone) return;
      member.rejoined(joined[index]?.bytes ?? EMPTY_STATE_VECTOR);
      if (state) member.peer.sendUpdate(state);
      member.peer.sendSyncStep1?.(joined[index]?.bytes ?? EMPTY_STATE_VECTOR);
      if (states && states.byteLength > 0) member.peer.sendAwareness(states);
      if (member.awareness) this.relay.applyAwareness(member, member.awareness);
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
        encodeOwnerRequest({ docId: this.relay.docId, peerId, bytes }),
        {
          timeoutMs: Math.min(this.deps.requestTimeoutMs ?? Infinity, MOVE_REQUEST_TIMEOUT_MS),
          key: this.relay.docId,
        },
      ),
    );
  }

  /**
   * The highest seq up to which ops of `epoch` buffered during the move follow on
   * from this relay's stream without a hole (its own seq when none do).
   */
  private bufferedThrough(epoch: number): number {
    const seqs = new Set<number>();
    for (const message of this.relay.early ?? []) {
      if (message.type === ChannelMessageType.Update && message.epoch === epoch) seqs.add(message.seq);
    }
    let through = this.relay.seq;
    while (seqs.has(through + 1)) through += 1;
    return through;
  }

  /** This node owns the document now: every client moves to its session, reconciled the same way. */
  private handOver(local: LocalJoiner): void {
    const members = this.relay.handOff();
    for (const member of members) {
      if (member.gone) continue;
      let handle: DocumentHandle;
      try {
        handle = local.join(member.peer);
      } catch (error) {
        this.deps.logger.warn(
          { err: error, docId: this.relay.docId },
          "could not move a client to the new session",
        );
        member.peer.disconnect("step-down");
        continue;
      }
      member.handOver(handle);
      void reconcileLocal(member, handle, local.seq <= this.relay.seq).catch((error: unknown) =>
        this.deps.logger.warn({ err: error, docId: this.relay.docId }, "could not reconcile a moved client"),
      );
    }
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
