import { MemoryDocumentStore, type ClaimEpochOptions, type StoredDocument } from "../../src/index.js";

/**
 * A real memory store that counts what the engine asked of it, per document, and
 * can hold loads until `openLoads()` (a document that takes its time to load).
 */
export class CountingStore extends MemoryDocumentStore {
  readonly claims: string[] = [];
  readonly loads: string[] = [];
  readonly appends: string[] = [];
  private loadGate: Promise<void> = Promise.resolve();
  private release: () => void = () => undefined;

  holdLoads(): void {
    this.loadGate = new Promise((resolve) => (this.release = resolve));
  }
  openLoads(): void {
    this.release();
    this.loadGate = Promise.resolve();
  }
  /** Whether anything about `docId` was claimed or loaded. */
  touched(docId: string): boolean {
    return this.claims.includes(docId) || this.loads.includes(docId);
  }
  override async claimEpoch(docId: string, options?: ClaimEpochOptions): Promise<number> {
    this.claims.push(docId);
    return super.claimEpoch(docId, options);
  }
  override async load(docId: string): Promise<StoredDocument> {
    this.loads.push(docId);
    await this.loadGate;
    return super.load(docId);
  }
  override async append(docId: string, epoch: number, updates: readonly Uint8Array[]): Promise<number[]> {
    this.appends.push(docId);
    return super.append(docId, epoch, updates);
  }
}
