import type {
  ClaimEpochOptions,
  DocumentStore,
  NewVersion,
  SaveSnapshotOptions,
  StoredDocument,
  StoredOp,
  StoredSnapshot,
  StoredVersion,
  VersionInfo,
} from "../document-store.js";
import { documentNotFound, trimPoint } from "../document-store.js";
import { assertEpoch } from "../fencing.js";

interface MemoryDocument {
  epoch: number;
  lastSeq: number;
  live: boolean;
  ops: StoredOp[];
  snapshot: StoredSnapshot | null;
  offsets: Map<string, number>;
  /** The last version id given out (it outlives a delete, like the epoch). */
  lastVersionId: number;
  versions: StoredVersion[];
}

/**
 * Keeps everything in process memory: for tests and throwaway servers. Nothing
 * survives a restart (the builder logs a warning when this is the default).
 */
export class MemoryDocumentStore implements DocumentStore {
  readonly kind = "memory";
  private readonly docs = new Map<string, MemoryDocument>();

  private record(docId: string): MemoryDocument {
    let doc = this.docs.get(docId);
    if (!doc) {
      doc = {
        epoch: 0,
        lastSeq: 0,
        live: false,
        ops: [],
        snapshot: null,
        offsets: new Map(),
        lastVersionId: 0,
        versions: [],
      };
      this.docs.set(docId, doc);
    }
    return doc;
  }

  claimEpoch(docId: string, options: ClaimEpochOptions = {}): Promise<number> {
    if (options.mustExist && !this.docs.get(docId)?.live) return Promise.reject(documentNotFound(docId));
    const doc = this.record(docId);
    doc.epoch = Math.max(doc.epoch + 1, options.atLeast ?? 0);
    doc.live = true;
    return Promise.resolve(doc.epoch);
  }

  async append(docId: string, epoch: number, updates: readonly Uint8Array[]): Promise<number[]> {
    await Promise.resolve();
    const doc = this.record(docId);
    assertEpoch(docId, epoch, doc.epoch);
    const seqs = updates.map((update) => {
      doc.lastSeq += 1;
      doc.ops.push({ seq: doc.lastSeq, epoch, update: Uint8Array.from(update) });
      return doc.lastSeq;
    });
    return seqs;
  }

  readOps(docId: string, afterSeq: number): Promise<StoredOp[]> {
    const doc = this.docs.get(docId);
    return Promise.resolve(doc ? doc.ops.filter((op) => op.seq > afterSeq) : []);
  }

  loadSnapshot(docId: string): Promise<StoredSnapshot | null> {
    return Promise.resolve(this.docs.get(docId)?.snapshot ?? null);
  }

  async load(docId: string): Promise<StoredDocument> {
    const snapshot = await this.loadSnapshot(docId);
    return { snapshot, ops: await this.readOps(docId, snapshot?.seq ?? 0) };
  }

  async saveSnapshot(
    docId: string,
    epoch: number,
    state: Uint8Array,
    uptoSeq: number,
    options: SaveSnapshotOptions = {},
  ): Promise<void> {
    await Promise.resolve();
    const doc = this.record(docId);
    assertEpoch(docId, epoch, doc.epoch);
    doc.snapshot = { seq: uptoSeq, epoch, state: Uint8Array.from(state) };
    const trimThrough = trimPoint(uptoSeq, options);
    doc.ops = doc.ops.filter((op) => op.seq > trimThrough);
  }

  async commitOffset(docId: string, epoch: number, consumer: string, seq: number): Promise<void> {
    await Promise.resolve();
    const doc = this.record(docId);
    assertEpoch(docId, epoch, doc.epoch);
    doc.offsets.set(consumer, Math.max(seq, doc.offsets.get(consumer) ?? 0));
  }

  readOffsets(docId: string): Promise<Map<string, number>> {
    return Promise.resolve(new Map(this.docs.get(docId)?.offsets ?? []));
  }

  async saveVersion(docId: string, epoch: number, version: NewVersion): Promise<VersionInfo> {
    await Promise.resolve();
    const doc = this.record(docId);
    assertEpoch(docId, epoch, doc.epoch);
    doc.lastVersionId += 1;
    const stored: StoredVersion = {
      ...version,
      clients: [...version.clients],
      authors: [...version.authors],
      id: doc.lastVersionId,
      epoch,
      bytes: version.state.byteLength,
      state: Uint8Array.from(version.state),
    };
    doc.versions.push(stored);
    return withoutState(stored);
  }

  listVersions(docId: string): Promise<VersionInfo[]> {
    return Promise.resolve((this.docs.get(docId)?.versions ?? []).map(withoutState));
  }

  loadVersion(docId: string, id: number): Promise<StoredVersion | null> {
    const version = this.docs.get(docId)?.versions.find((v) => v.id === id);
    return Promise.resolve(version ? { ...version, state: Uint8Array.from(version.state) } : null);
  }

  async dropVersions(docId: string, epoch: number, ids: readonly number[]): Promise<void> {
    await Promise.resolve();
    const doc = this.record(docId);
    assertEpoch(docId, epoch, doc.epoch);
    const dropped = new Set(ids);
    doc.versions = doc.versions.filter((v) => !dropped.has(v.id));
  }

  delete(docId: string): Promise<void> {
    // The epoch and sequence counters outlive the content, so a fenced-off
    // ex-owner stays fenced even after the document is deleted and re-created.
    const doc = this.docs.get(docId);
    if (doc) Object.assign(doc, { live: false, ops: [], snapshot: null, offsets: new Map(), versions: [] });
    return Promise.resolve();
  }

  list(): Promise<string[]> {
    const ids = [...this.docs].filter(([, doc]) => doc.live).map(([id]) => id);
    return Promise.resolve(ids.sort());
  }

  ping(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

function withoutState({ state: _state, ...info }: StoredVersion): VersionInfo {
  return info;
}
