import type { SessionPeer } from "../engine/peer.js";
import type { DocumentHandle } from "./document-handle.js";

/** A state vector of an empty document (no clients): a sync step 1 answered with everything. */
export const EMPTY_STATE_VECTOR: Uint8Array = Uint8Array.of(0);

/** What a relay does for one of its clients' handles; the relay implements it. */
export interface RelayCalls {
  /** The client's sync step 1 answered by the owner. */
  syncStep1(member: RelayMember, stateVector: Uint8Array): Promise<Uint8Array>;
  /** The client's update applied by the owner: its seq, or null when it changed nothing. */
  applyUpdate(member: RelayMember, update: Uint8Array): Promise<number | null>;
  /** Whether the owner's durable document holds all of `update`. */
  contains(member: RelayMember, update: Uint8Array): Promise<boolean>;
  /** Sends the client's awareness update to the owner (best effort). */
  applyAwareness(member: RelayMember, update: Uint8Array): void;
  /** The owner's awareness states as the relay knows them. */
  awarenessStates(): Uint8Array | null;
  /** The client left while the document was remote. */
  detach(member: RelayMember): void;
}

/**
 * One client of a relay, and the {@link DocumentHandle} its transport holds. The
 * handle outlives owner changes: while the owner is another node its calls go
 * through the relay (which follows each new owner); once this node becomes the
 * owner, the relay hands the client to the local session and every later call goes
 * to its local handle, without the transport noticing.
 */
export class RelayMember implements DocumentHandle {
  /** The client's latest awareness update, re-announced to each new owner. */
  awareness: Uint8Array | undefined;
  /** Set once the client was handed to a session this node owns. */
  private local: DocumentHandle | undefined;
  private left = false;

  constructor(
    readonly docId: string,
    readonly peer: SessionPeer,
    /** The client's id cluster-wide: `<nodeId>/<peerId>`. */
    readonly globalId: string,
    private joinedStateVector: Uint8Array,
    private readonly relay: RelayCalls,
  ) {}

  get gone(): boolean {
    return this.left;
  }

  /** Moves the client onto a session owned by this node (its handle there). */
  handOver(local: DocumentHandle): void {
    this.local = local;
    if (this.left) local.leave();
  }

  /** The state vector the owner reported when the client (re)joined. */
  rejoined(stateVector: Uint8Array): void {
    this.joinedStateVector = stateVector;
  }

  stateVector(): Promise<Uint8Array> {
    return this.local ? this.local.stateVector() : Promise.resolve(this.joinedStateVector);
  }

  syncStep1(stateVector: Uint8Array): Promise<Uint8Array> {
    return this.route(
      (local) => local.syncStep1(stateVector),
      () => this.relay.syncStep1(this, stateVector),
    );
  }

  apply(update: Uint8Array): Promise<number | null> {
    return this.route(
      (local) => local.apply(update),
      () => this.relay.applyUpdate(this, update),
    );
  }

  contains(update: Uint8Array): Promise<boolean> {
    return this.route(
      (local) => local.contains(update),
      () => this.relay.contains(this, update),
    );
  }

  applyAwareness(update: Uint8Array): void {
    this.awareness = update;
    if (this.local) this.local.applyAwareness(update);
    else this.relay.applyAwareness(this, update);
  }

  awarenessStates(): Uint8Array | null {
    return this.local ? this.local.awarenessStates() : this.relay.awarenessStates();
  }

  leave(): void {
    if (this.left) return;
    this.left = true;
    if (this.local) this.local.leave();
    else this.relay.detach(this);
  }

  /**
   * Runs a call on the local session once the client is on it, else through the
   * relay. A relay call that fails because the client was handed over meanwhile
   * (the relay closed for it) runs again locally: nothing is lost in the move.
   */
  private async route<T>(
    local: (handle: DocumentHandle) => Promise<T>,
    remote: () => Promise<T>,
  ): Promise<T> {
    if (this.local) return local(this.local);
    try {
      return await remote();
    } catch (error) {
      if (this.local) return local(this.local);
      throw error;
    }
  }
}
