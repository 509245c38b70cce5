import type { DocumentStore } from "../../storage/document-store.js";
import type { AcquireOptions, IOwnership, Lease } from "../ownership.js";
import type { LocalBus } from "./local-bus.js";

/**
 * Ownership among in-process nodes sharing a `LocalBus`. A lease never expires on
 * its own (there is no clock to disagree with in one process); it ends on release.
 */
export class LocalOwnership implements IOwnership {
  constructor(
    private readonly bus: LocalBus,
    private readonly nodeId: string,
    private readonly store: DocumentStore,
  ) {}

  async acquire(docId: string, options: AcquireOptions = {}): Promise<Lease | null> {
    const owner = this.bus.owners.get(docId);
    if (owner !== undefined && owner !== this.nodeId) return null;
    this.bus.owners.set(docId, this.nodeId);
    let epoch: number;
    try {
      epoch = await this.store.claimEpoch(docId, { mustExist: options.mustExist ?? false });
    } catch (error) {
      if (this.bus.owners.get(docId) === this.nodeId) this.bus.owners.delete(docId);
      throw error;
    }
    const controller = new AbortController();
    const release = (): Promise<void> => {
      if (this.bus.owners.get(docId) === this.nodeId) this.bus.owners.delete(docId);
      controller.abort();
      return Promise.resolve();
    };
    return {
      docId,
      epoch,
      signal: controller.signal,
      renew: () => Promise.resolve(),
      release,
    };
  }

  breakLease(docId: string, holder: string): Promise<boolean> {
    if (holder === this.nodeId || this.bus.owners.get(docId) !== holder) return Promise.resolve(false);
    this.bus.owners.delete(docId);
    return Promise.resolve(true);
  }

  ownerOf(docId: string): Promise<string | null> {
    return Promise.resolve(this.bus.owners.get(docId) ?? null);
  }
}
