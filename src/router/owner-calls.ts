import type { DisconnectReason } from "../engine/peer.js";
import { ErrorCodes, isOpStreamError } from "../errors.js";
import { LeaseWatch } from "./lease-watch.js";
import type { MoveHint } from "./owner-search.js";
import type { RelayDependencies } from "./relay-document.js";
import { isRetryable, withRetries } from "./retry-policy.js";
import {
  OwnerRequests,
  decodeOwnerReply,
  encodeOwnerRequest,
  encodePeerIds,
  type OwnerReply,
} from "./rpc.js";

/** What a relay's calls to the owner read and do of the relay; the relay implements it. */
export interface CallingRelay {
  readonly docId: string;
  /** The node calls go to. */
  readonly owner: string;
  /** True once it relays nothing more: calls then reject with {@link closedError}. */
  readonly closed: boolean;
  closedError(): Error;
  /** The move to a new owner under way, if any: calls wait for it. */
  readonly moving: Promise<void> | undefined;
  /** Starts a move to the document's next owner (see RelayMove.run). */
  move(hint: MoveHint): Promise<void>;
  /** Closes every client (retryable) and stops relaying. */
  fail(reason: DisconnectReason): void;
}

/** What the calls ask of the node. */
export type CallDependencies = Pick<
  RelayDependencies,
  "backplane" | "ownership" | "logger" | "metrics" | "requestTimeoutMs"
>;

/**
 * A relay's requests to its document's owner: retried, waiting for a move under
 * way, and starting one when the owner fails. A {@link LeaseWatch} follows the
 * owner's lease while they go unanswered.
 */
export class OwnerCalls {
  /** Watches the owner's lease while calls go unanswered. */
  private readonly leaseWatch: LeaseWatch;

  constructor(
    private readonly relay: CallingRelay,
    private readonly deps: CallDependencies,
  ) {
    this.leaseWatch = new LeaseWatch(
      {
        docId: relay.docId,
        get owner() {
          return relay.owner;
        },
        get closed() {
          return relay.closed;
        },
        get moving() {
          return relay.moving !== undefined;
        },
        ownerLost: (owner) => void relay.move({ suspect: owner }),
      },
      deps.ownership,
    );
  }

  /**
   * One request to the owner, retried as the `ownerCall` policy says (see
   * retry-policy.ts). A failure that says the owner is gone or changing (NODE_GONE,
   * NOT_OWNER, NO_HANDLER, a timeout) starts a move; the next attempt waits for it
   * and goes to the new owner. Once the relay closed (or handed its clients to a
   * local session) the call rejects with NOT_OWNER.
   */
  call(type: string, peerId: string, bytes: Uint8Array): Promise<OwnerReply> {
    const payload = encodeOwnerRequest({ docId: this.relay.docId, peerId, bytes });
    return withRetries(
      async () => {
        await this.settled();
        const target = this.relay.owner;
        this.leaseWatch.sent();
        try {
          const reply = await this.deps.backplane.sendRequest(target, type, payload, this.requestOptions());
          this.leaseWatch.answered();
          return decodeOwnerReply(reply);
        } catch (error) {
          if (isRetryable("ownerCall", error)) void this.relay.move({ suspect: target });
          throw error;
        } finally {
          this.leaseWatch.settled();
        }
      },
      {
        kind: "ownerCall",
        shouldStop: () => (this.relay.closed ? this.relay.closedError() : undefined),
        waitFor: () => this.relay.moving,
        onRetry: () => this.deps.metrics.rpcRetries.inc(),
        onExhausted: (error) => {
          this.deps.logger.warn(
            { err: error, docId: this.relay.docId },
            "the owner kept failing; closing the relay",
          );
          this.relay.fail("step-down");
          return this.relay.closedError();
        },
      },
    );
  }

  /**
   * Tells the owner which clients (`peerIds`, global ids) are still attached, so it
   * can forget those whose LEAVE never arrived. Best effort and never retried: the
   * next renewal repeats it. An owner found gone from the backplane starts a move:
   * a relay whose clients are idle notices a crashed owner this way.
   */
  renew(peerIds: readonly string[]): void {
    const payload = encodeOwnerRequest({
      docId: this.relay.docId,
      peerId: this.globalId("relay"),
      bytes: encodePeerIds(peerIds),
    });
    const owner = this.relay.owner;
    this.deps.backplane
      .sendRequest(owner, OwnerRequests.PEERS, payload, this.requestOptions())
      .catch((error: unknown) => {
        this.deps.logger.debug(
          { err: error, docId: this.relay.docId },
          "peer renewal not delivered to the owner",
        );
        if (isOpStreamError(error, ErrorCodes.NODE_GONE)) void this.relay.move({ suspect: owner });
      });
  }

  /** The id of `peerId` cluster-wide: `<nodeId>/<peerId>`. */
  globalId(peerId: string): string {
    return `${this.deps.backplane.nodeId}/${peerId}`;
  }

  /** Stops watching the owner's lease: the relay closed. */
  stop(): void {
    this.leaseWatch.stop();
  }

  /** Waits for the move under way, if any; rejects with NOT_OWNER once the relay relays no more. */
  private async settled(): Promise<void> {
    while (this.relay.moving) await this.relay.moving;
    if (this.relay.closed) throw this.relay.closedError();
  }

  private requestOptions(): { timeoutMs?: number; key: string } {
    const key = this.relay.docId;
    return this.deps.requestTimeoutMs === undefined
      ? { key }
      : { timeoutMs: this.deps.requestTimeoutMs, key };
  }
}
