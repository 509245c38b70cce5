import type { DocumentSession } from "../engine/document-session.js";
import type { Origin } from "../engine/origin.js";
import type { DocumentHandle } from "./document-handle.js";
import { sessionContains } from "./owner-endpoint.js";

/** A handle onto a session owned by this node. */
export class LocalDocumentHandle implements DocumentHandle {
  private left = false;

  constructor(
    private readonly session: DocumentSession,
    private readonly peerId: string,
    private readonly origin: Origin,
    private readonly onLeave: () => void,
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
    return sessionContains(this.session, update);
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
    this.onLeave();
  }
}
