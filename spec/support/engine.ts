import * as Y from "yjs";
import {
  HybridSnapshotPolicy,
  MemoryDocumentStore,
  OpStreamMetrics,
  type DisconnectReason,
  type DocumentStore,
} from "../../src/index.js";
import { LocalBackplane } from "../../src/backplane/local/local-backplane.js";
import { LocalOwnership } from "../../src/backplane/local/local-ownership.js";
import { DocumentSession } from "../../src/engine/document-session.js";
import type { SessionPeer } from "../../src/engine/peer.js";
import type { SessionDependencies } from "../../src/engine/session-services.js";
import { testLogger } from "./server.js";

/** A peer that records what the session sends it. */
export class RecordingPeer implements SessionPeer {
  readonly updates: Uint8Array[] = [];
  readonly awareness: Uint8Array[] = [];
  readonly disconnects: DisconnectReason[] = [];
  readonly doc = new Y.Doc();
  constructor(readonly id: string) {}
  sendUpdate(update: Uint8Array): void {
    this.updates.push(update);
    Y.applyUpdate(this.doc, update);
  }
  sendAwareness(update: Uint8Array): void {
    this.awareness.push(update);
  }
  disconnect(reason: DisconnectReason): void {
    this.disconnects.push(reason);
  }
}

/** Everything a session needs, with a real memory store unless one is given. */
export async function sessionDeps(
  docId: string,
  overrides: Partial<SessionDependencies> & { store?: DocumentStore } = {},
): Promise<SessionDependencies> {
  const store = overrides.store ?? new MemoryDocumentStore();
  const backplane = new LocalBackplane();
  const lease = await new LocalOwnership(backplane.bus, backplane.nodeId, store).acquire(docId);
  if (!lease) throw new Error("no lease");
  return {
    store,
    lease,
    backplane,
    snapshotPolicy: new HybridSnapshotPolicy(),
    validators: [],
    seeder: undefined,
    logger: testLogger(),
    metrics: new OpStreamMetrics(),
    ...overrides,
  };
}

export function openSession(
  docId: string,
  overrides: Partial<SessionDependencies> = {},
): Promise<DocumentSession> {
  return sessionDeps(docId, overrides).then((deps) => DocumentSession.open(docId, deps));
}

/** An update inserting `value` at `index` of the "text" type of `doc`. */
export function insertUpdate(doc: Y.Doc, index: number, value: string): Uint8Array {
  const updates: Uint8Array[] = [];
  const listener = (update: Uint8Array) => updates.push(update);
  doc.on("update", listener);
  doc.getText("text").insert(index, value);
  doc.off("update", listener);
  return Y.mergeUpdates(updates);
}

/** A memory store whose appends wait for `release()`, and which records batch sizes and overlap. */
export class GatedStore extends MemoryDocumentStore {
  readonly batches: number[] = [];
  inFlight = 0;
  maxInFlight = 0;
  private gate: Promise<void> = Promise.resolve();
  private open: () => void = () => undefined;

  closeGate(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }
  release(): void {
    this.open();
  }
  override async append(docId: string, epoch: number, updates: readonly Uint8Array[]): Promise<number[]> {
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    this.batches.push(updates.length);
    try {
      await this.gate;
      return await super.append(docId, epoch, updates);
    } finally {
      this.inFlight -= 1;
    }
  }
}
