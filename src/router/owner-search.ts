import { ChannelMessageType, type ChannelMessage, type IBackplane } from "../backplane/backplane.js";
import type { IOwnership } from "../backplane/ownership.js";
import { ErrorCodes, OpStreamError } from "../errors.js";
import { backoffMs, isRetryable } from "./retry-policy.js";
import type { OwnerReply } from "./rpc.js";

/** How long after a node was first found gone from the backplane it is checked again, before its lease is broken. */
export const GONE_CONFIRM_MS = 100;

/** How long a relay waits for the successor an ex-owner named before taking the document over itself. */
export const SUCCESSOR_WAIT_MS = 500;

/** Where a move starts from: an owner that failed a request or closed, or a node announced as the new owner. */
export interface MoveHint {
  readonly suspect?: string;
  readonly owner?: string;
  /** The successor the ex-owner named in its Closed message. */
  readonly successor?: string;
  /** The move started from the suspect's Closed message: it let the document go. */
  readonly closed?: boolean;
}

/** What a search does with the owner it finds; the relay implements it. */
export interface SearchTarget<Local> {
  readonly docId: string;
  /** The epoch the relay follows: news of an older or equal one is no news. */
  readonly epoch: number;
  /** The node the relay follows or is rejoining. */
  readonly owner: string;
  readonly closed: boolean;
  closedError(): Error;
  /**
   * Re-joins every client to `owner`. It must check `current()` after each wait and
   * reject with {@link REJOIN_STALE} once it is false: the search abandoned it.
   */
  rejoin(owner: string, current: () => boolean): Promise<OwnerReply>;
  /** Hands every client to the session this node now owns. */
  handOver(local: Local): void;
}

/** What a search asks of the node. */
export interface SearchDependencies<Local> {
  readonly backplane: Pick<IBackplane, "nodeId" | "isNodeAlive" | "isRecovering">;
  readonly ownership: Pick<IOwnership, "ownerOf" | "breakLease">;
  /** Acquires the lease and opens the session when nobody holds it; null when another node does. */
  readonly takeOver: (docId: string) => Promise<Local | null>;
}

/** A rejoin abandoned because news named another owner (or the target closed the document). */
export const REJOIN_STALE = new OpStreamError(ErrorCodes.NOT_OWNER, "The owner being rejoined changed.", {});

/**
 * A relay's search for its document's next owner, one move at a time: read the
 * owner key; break the lease of an owner gone from the backplane; take the
 * document over when nobody holds it (or wait for the successor the ex-owner
 * named); else rejoin the holder. Channel news during the search (`news`) cuts any
 * wait short and abandons a rejoin of a node that owns the document no more.
 */
export class OwnerSearch<Local> {
  /** Cuts the current wait short: news about the owner arrived. */
  private wake: (() => void) | undefined;
  /** Abandons the rejoin under way. */
  private interrupt: (() => void) | undefined;
  /** The newest owner announced on the channel during the search. */
  private announced: string | undefined;
  /** The successor named by the Closed message of the owner being moved from. */
  private successor: string | undefined;
  /** Rejoins started; one whose number is no longer current was abandoned. */
  private rejoins = 0;
  /** The owner the search started from let the document go (its Closed message), or was found gone. */
  private leftFor = new Set<string>();

  constructor(
    private readonly target: SearchTarget<Local>,
    private readonly deps: SearchDependencies<Local>,
  ) {}

  /**
   * During a search, a message that says who owns the document now (Owner, an op
   * or heartbeat of a newer epoch) or that the owner let go (Closed) ends the wait
   * under way: a SIGTERM handoff is followed the moment the lease is free.
   */
  news(message: ChannelMessage): void {
    let stale: boolean; // whether the news says the node being rejoined owns it no more
    switch (message.type) {
      case ChannelMessageType.Owner:
      case ChannelMessageType.Update:
      case ChannelMessageType.Heartbeat:
        if (message.epoch <= this.target.epoch) return;
        this.announced = message.origin;
        stale = message.origin !== this.target.owner;
        break;
      case ChannelMessageType.Closed:
        stale = message.origin === this.target.owner;
        if (stale) this.successor = message.successor;
        this.leftFor.add(message.origin);
        break;
      default:
        return;
    }
    this.wake?.();
    if (stale) this.interrupt?.();
  }

  /**
   * Finds the next owner and moves every client to it. Resolves the new owner's
   * state reply (epoch, seq) once the clients follow another node, or undefined
   * once they are on this node's own session. Rejects once `timeoutMs` passed.
   */
  async run(hint: MoveHint, timeoutMs: number): Promise<OwnerReply | undefined> {
    // News heard during an earlier search that ended without it is stale now.
    this.announced = undefined;
    this.successor = hint.successor;
    this.leftFor = new Set(hint.closed && hint.suspect !== undefined ? [hint.suspect] : []);
    // The owner the relay followed: while Redis is recovering, a vanished key is no sign it left.
    const previous = this.target.owner;
    const deadline = performance.now() + timeoutMs;
    let announced = hint.owner;
    // A step that changed who holds the lease is followed at once, a few times in a row.
    let quick = 0;
    let waitedForSuccessor = false;
    let tookNamed = false;
    for (let attempt = 1; ; attempt++) {
      if (this.target.closed) throw this.target.closedError();
      // A node heard from just now (its Owner message, an op of a newer epoch) is
      // alive: no need to ask the backplane before rejoining it.
      const heard = announced ?? this.takeAnnounced();
      const successor = this.successor;
      // Named successor: the ex-owner released the lease before its Closed message,
      // so the key is free and reading it first would only delay the takeover (if
      // another node got it meanwhile, the takeover fails and the next step reads it).
      const named: boolean = heard === undefined && successor === this.deps.backplane.nodeId && !tookNamed;
      tookNamed ||= named;
      let owner: string | null;
      try {
        owner = named ? null : (heard ?? (await this.deps.ownership.ownerOf(this.target.docId)));
      } catch {
        // Redis does not answer: nothing to decide on. Look again after a pause.
        announced = undefined;
        this.checkDeadline(deadline);
        await this.untilNews(backoffMs(attempt));
        continue;
      }
      announced = undefined;
      if (owner === null && !named && this.mayComeBack(previous)) {
        // The key vanished with Redis (restarted empty, or expired while it was
        // unreachable), and the owner served on through the outage: rejoin it. It
        // takes its key back with its next renewal. Only once Redis has been back a
        // lease TTL does a vanished key mean the owner is gone.
        try {
          return await this.rejoinUnlessStale(previous);
        } catch (error) {
          if (!isRetryable("ownerCall", error)) throw error;
        }
        this.checkDeadline(deadline);
        await this.untilNews(backoffMs(attempt));
        continue;
      }
      if (owner === null && successor && successor !== this.deps.backplane.nodeId && !waitedForSuccessor) {
        // The ex-owner named another node to take over: its Owner message comes
        // soon; racing it would only pile every document onto whichever node is
        // quickest. If it does not come, this node takes over after all.
        waitedForSuccessor = true;
        await this.untilNews(SUCCESSOR_WAIT_MS);
        continue;
      }
      let again: boolean;
      if (owner === null || owner === this.deps.backplane.nodeId) {
        const local = await this.deps.takeOver(this.target.docId);
        if (local) {
          this.target.handOver(local);
          return undefined;
        }
        again = true; // another node took it first: follow it
      } else if (heard === undefined && !(await this.isAlive(owner))) {
        // A crashed owner: free its lease and take over without waiting for it to
        // expire. Whether or not this node's break was the one that freed it (news
        // during the confirmation, or another relay first), the next step looks again.
        const gone = await this.stillGone(owner);
        if (gone) this.leftFor.add(owner);
        const broke = gone ? await this.deps.ownership.breakLease?.(this.target.docId, owner) : undefined;
        again = !gone || broke !== undefined;
      } else {
        try {
          return await this.rejoinUnlessStale(owner);
        } catch (error) {
          if (!isRetryable("ownerCall", error)) throw error;
          again = error === REJOIN_STALE; // the news names where to go: at once
        }
      }
      this.checkDeadline(deadline);
      if (again && quick++ < 3) continue;
      await this.untilNews(backoffMs(attempt));
    }
  }

  /**
   * Throws once the search is past `deadline`, unless Redis is unreachable or just
   * came back: the clients then have nowhere better to go, and keep their sockets.
   */
  private checkDeadline(deadline: number): void {
    if (performance.now() < deadline || this.deps.backplane.isRecovering?.() === true) return;
    throw new OpStreamError(ErrorCodes.NOT_OWNER, `No owner of "${this.target.docId}" answered; rejoin.`, {
      docId: this.target.docId,
    });
  }

  /**
   * Whether `previous`, the owner the relay followed, may still serve the document
   * though its key is gone: another node, not known to have left (no Closed, not
   * found gone), while this node's link to Redis is recovering.
   */
  private mayComeBack(previous: string): boolean {
    return (
      previous !== this.deps.backplane.nodeId &&
      !this.leftFor.has(previous) &&
      this.deps.backplane.isRecovering?.() === true
    );
  }

  /** Waits `ms`; resolves true at once if news about the owner arrives meanwhile. */
  private async untilNews(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const news = await new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
      this.wake = () => resolve(true);
    });
    clearTimeout(timer);
    this.wake = undefined;
    return news;
  }

  /**
   * The target's rejoin, abandoned as soon as news says `owner` owns the document
   * no more (it closed it, or another node announced itself): a draining or crashed
   * node may take its time to refuse, and the move need not wait for that.
   */
  private async rejoinUnlessStale(owner: string): Promise<OwnerReply> {
    const attempt = ++this.rejoins;
    const joining = this.target.rejoin(owner, () => attempt === this.rejoins);
    joining.catch(() => undefined); // abandoned: its outcome no longer matters
    try {
      return await Promise.race([
        joining,
        new Promise<never>((_, reject) => (this.interrupt = () => reject(REJOIN_STALE))),
      ]);
    } finally {
      this.interrupt = undefined;
      if (attempt === this.rejoins) this.rejoins += 1; // the abandoned rejoin touches no client
    }
  }

  private takeAnnounced(): string | undefined {
    const owner = this.announced;
    this.announced = undefined;
    return owner;
  }

  /**
   * Asks again after {@link GONE_CONFIRM_MS}: a live node whose subscriber is
   * reconnecting (ioredis retries after 50 ms) is back by then, a crashed one is
   * not. A false alarm would cost the owner a step-down, never an edit. False
   * when news about the owner arrives first.
   */
  private async stillGone(nodeId: string): Promise<boolean> {
    // News (the owner's Closed, another node's Owner) settles it sooner: look again.
    if (await this.untilNews(GONE_CONFIRM_MS)) return false;
    return !(await this.isAlive(nodeId));
  }

  /** Whether `nodeId` is on the backplane; unknown (the backplane cannot tell, or does not answer) counts as alive. */
  private async isAlive(nodeId: string): Promise<boolean> {
    try {
      return (await this.deps.backplane.isNodeAlive?.(nodeId)) ?? true;
    } catch {
      return true;
    }
  }
}
