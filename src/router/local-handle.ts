import type { DocumentSession } from "../engine/document-session.js";
import type { Origin } from "../engine/origin.js";
import type { DocumentHandle } from "./document-handle.js";

/** Told when a handle leaves: the router, which unloads a session nobody uses. */
export interface LeaveListener {
  peerLeft(session: DocumentSession, peerId: string): void;
}

/** A handle onto a session owned by this node. */
export class LocalDocumentHandle implements DocumentHandle {
  private left = false;

  constructor(
    private readonly session: DocumentSession,
    private readonly peerId: string,
    private readonly origin: Origin,
    // An object rather than a callback: a closure per client would also keep its scope.
    private readonly listener: LeaveListener,
  ) {}

  get docId(): string {
    return this.session.docId;
  }

  stateVector(): Promise<Uint8Array> {
    return Promise.resolve(this.session.stateVector());
  }

  syncStep1(clientStateVector: Uint8Array): Promise<Uint8Array> {
    return this.session.syncStep1(clientStateVector);
  }

  apply(update: Uint8Array): Promise<number | null> {
    return this.session.apply(update, this.origin);
  }

  contains(update: Uint8Array): Promise<boolean> {
    return this.session.contains(update);
  }

  applyAwareness(update: Uint8Array): void {
    this.session.applyAwareness(this.peerId, update);
  }

  awarenessStates(): Uint8Array | null {
    return this.session.awarenessStates();
  }

  leave(): void {
    if (this.left) return;
    this.left = true;
    this.listener.peerLeft(this.session, this.peerId);
  }
}
