/**
 * One failover round's accounting: from t0 (just before the signal) it waits for
 * the first token typed after t0 that reaches a client of another surviving node,
 * and counts the sockets that closed, until the fleet ends the round.
 */
import type { CloseEvent, FailoverClient } from "./client.js";

/** What a round does to the node: nothing (baseline), SIGKILL, SIGTERM or SIGSTOP. */
export type Mode = "baseline" | "kill" | "term" | "stop";

/**
 * Tokens typed this long after the signal count towards a round's worst wait: long
 * enough for a SIGTERM drain's switches (~0.5 s here) and a crash's takeover, the
 * same in every mode, so the baseline's figure is the loaded machine's own tail
 * over as many tokens.
 */
export const WORST_WAIT_WINDOW_MS = 1_000;

export class Round {
  /** performance.now() just before the signal. */
  readonly t0 = performance.now();
  /** Dropped sockets of clients on nodes other than the victim (the figure that should be 0). */
  relayCloses = 0;
  /** Of those, sockets of the victim's own clients after they moved to another node. */
  movedCloses = 0;
  readonly relayCloseCodes: Record<string, number> = {};
  /** Sockets of clients on the victim itself (expected: it was killed, drained or stepped down). */
  victimCloses = 0;
  /** Connection attempts to the victim that never opened (it was killed or draining). */
  refusedByVictim = 0;
  /** Connection attempts to other nodes that never opened (should not happen). */
  refusedBySurvivors = 0;
  /** Per affected document: ms from t0 to its first qualifying delivery. */
  private readonly first = new Map<string, number>();
  private readonly waiters = new Map<string, ((ms: number) => void)[]>();
  /** Per token typed on the measured document in the round's window: ms from typing to its first qualifying delivery. */
  private readonly waits = new Map<string, number>();
  /** performance.now() at which the window of {@link worstWaitMs} closes: {@link WORST_WAIT_WINDOW_MS} after t0. */
  readonly windowEnd = this.t0 + WORST_WAIT_WINDOW_MS;

  constructor(
    readonly mode: Mode,
    /** The document the round is measured on. */
    readonly docId: string,
    /** The node acted on (for the baseline, the node that would have been). */
    readonly victim: number,
    /** The documents the victim owned: the fault moves them all. */
    readonly affected: ReadonlySet<string>,
    /**
     * Sender and receiver must be on different nodes (opstream's 3 nodes: the edit
     * crosses the backplane through the new owner). With 2 nodes only one survives,
     * so any two of its clients count.
     */
    private readonly crossNode: boolean,
  ) {}

  /** Called by the fleet for every token a client receives from another client. */
  delivered(sender: FailoverClient, receiver: FailoverClient, typedAt: number, at: number): void {
    const docId = sender.docId;
    if (typedAt <= this.t0 || !this.affected.has(docId)) return;
    // Both ends belong to surviving nodes and the receiver is on its own node.
    if (sender.home === this.victim || receiver.home === this.victim || receiver.node !== receiver.home)
      return;
    if (this.crossNode && sender.home === receiver.home) return;
    if (docId === this.docId && typedAt < this.windowEnd) {
      const token = `${sender.id}@${typedAt}`;
      if (!this.waits.has(token)) this.waits.set(token, at - typedAt);
    }
    if (this.first.has(docId)) return;
    const ms = at - this.t0;
    this.first.set(docId, ms);
    for (const waiter of this.waiters.get(docId) ?? []) waiter(ms);
    this.waiters.delete(docId);
  }

  /** Resolves with the ms from t0 to the first qualifying delivery on `docId`, or null after `limitMs`. */
  whenDelivered(docId: string, limitMs: number): Promise<number | null> {
    const known = this.first.get(docId);
    if (known !== undefined) return Promise.resolve(known);
    return new Promise((resolve) => {
      const waiter = (ms: number | null): void => {
        clearTimeout(timer);
        const waiting = this.waiters.get(docId)?.filter((other) => other !== waiter);
        if (waiting?.length) this.waiters.set(docId, waiting);
        else this.waiters.delete(docId);
        resolve(ms);
      };
      const timer = setTimeout(() => waiter(null), limitMs);
      this.waiters.set(docId, [...(this.waiters.get(docId) ?? []), waiter]);
    });
  }

  /**
   * The longest any token typed on the measured document in the
   * {@link WORST_WAIT_WINDOW_MS} after the signal waited for its first qualifying delivery: the gap a user
   * typing through the fault sees (for a crash, about the first token's wait; for
   * a handoff that serves on until its successor is ready, the switch itself).
   */
  worstWaitMs(): number | null {
    return this.waits.size ? Math.max(...this.waits.values()) : null;
  }

  /** First deliveries of the affected documents so far (ms after t0). */
  deliveries(): number[] {
    return [...this.first.values()];
  }

  closed(event: CloseEvent): void {
    if (!event.opened) {
      if (event.node === this.victim) this.refusedByVictim++;
      else this.refusedBySurvivors++;
    } else if (event.node === this.victim) {
      this.victimCloses++;
    } else {
      this.relayCloses++;
      if (event.client.home === this.victim) this.movedCloses++;
      this.relayCloseCodes[event.code] = (this.relayCloseCodes[event.code] ?? 0) + 1;
    }
  }
}

/** When Redis stopped naming the victim as a document's owner, in ms after t0. */
export interface OwnerMoves {
  /** The first poll that found no owner at all (the lease had expired or was released); null: none seen. */
  goneMs: number | null;
  /** The first poll that named another node; null: none within the watch. */
  movedMs: number | null;
}

const OWNER_POLL_MS = 100;

/**
 * Polls `ownerOf` (a node id, or "none") every 100 ms until stopped or until it names
 * a node other than `victim`: splits a round's latency into the time until the lease
 * moved and the time the new owner then took to deliver.
 */
export function watchOwner(
  ownerOf: () => Promise<string>,
  victim: string,
  t0: number,
): { stop(): Promise<OwnerMoves> } {
  const moves: OwnerMoves = { goneMs: null, movedMs: null };
  let stopped = false;
  const polling = (async () => {
    while (!stopped) {
      const owner = await ownerOf();
      const ms = performance.now() - t0;
      if (owner === "none") moves.goneMs ??= ms;
      else if (owner !== victim) {
        moves.movedMs = ms;
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, OWNER_POLL_MS));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await polling;
      return moves;
    },
  };
}
