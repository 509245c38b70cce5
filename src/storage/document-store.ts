import { ErrorCodes, OpStreamError } from "../errors.js";

/** One entry of a document's op log. */
export interface StoredOp {
  /** Position in the document's log; strictly increasing, never reused. */
  readonly seq: number;
  /** The epoch of the owner that appended it. */
  readonly epoch: number;
  /** A Yjs update (v1 encoding). */
  readonly update: Uint8Array;
}

/** The latest snapshot of a document: its full state up to and including `seq`. */
export interface StoredSnapshot {
  /** The last op sequence number folded into `state` (0 when none). */
  readonly seq: number;
  /** The epoch of the owner that wrote it. */
  readonly epoch: number;
  /** `Y.encodeStateAsUpdate(doc)` at `seq`. */
  readonly state: Uint8Array;
}

/** What a cold load needs: the latest snapshot (if any) and every op after it. */
export interface StoredDocument {
  readonly snapshot: StoredSnapshot | null;
  readonly ops: readonly StoredOp[];
}

/**
 * Why a version exists: taken by the history policy (`auto`), asked for by name
 * (`named`), the state just before a restore (`before-restore`), or the state a
 * restore produced (`restore`). Only `auto` versions are thinned by retention.
 */
export type VersionKind = "auto" | "named" | "before-restore" | "restore";

/** A version as the owner writes it: a durable checkpoint of the document at `seq`. */
export interface NewVersion {
  /** The last op sequence number the version holds. */
  readonly seq: number;
  /** When it was taken, in ms since the Unix epoch. */
  readonly time: number;
  readonly kind: VersionKind;
  /** A name (named and restore versions); "" for automatic ones. */
  readonly name: string;
  /** The Yjs client ids whose ops it covers (the keys of its state vector), ascending. */
  readonly clients: readonly number[];
  /** Who made the ops since the previous version: principals, or peer ids for anonymous clients. */
  readonly authors: readonly string[];
  /** The version a `restore` version brought back; 0 otherwise. */
  readonly restoredFrom: number;
  /** `Y.encodeStateAsUpdate(doc)` at `seq`. */
  readonly state: Uint8Array;
}

/** A stored version's description, without its state. */
export interface VersionInfo extends Omit<NewVersion, "state"> {
  /** Assigned by the store: positive, unique per document, increasing in the order versions were saved. */
  readonly id: number;
  /** The epoch of the owner that wrote it. */
  readonly epoch: number;
  /** The size of its state, in bytes. */
  readonly bytes: number;
}

/** A stored version with its state. */
export interface StoredVersion extends VersionInfo {
  readonly state: Uint8Array;
}

/** The fields of a version a store keeps as one JSON text (stores that have no columns for them). */
export interface VersionMeta {
  readonly kind: VersionKind;
  readonly name: string;
  readonly clients: readonly number[];
  readonly authors: readonly string[];
  readonly restoredFrom: number;
}

/** The JSON text of `version`'s {@link VersionMeta}. */
export function encodeVersionMeta(version: VersionMeta): string {
  const { kind, name, clients, authors, restoredFrom } = version;
  return JSON.stringify({ kind, name, clients, authors, restoredFrom });
}

/** Reads {@link encodeVersionMeta}'s text back. */
export function decodeVersionMeta(text: string): VersionMeta {
  const meta = JSON.parse(text) as Partial<VersionMeta>;
  return {
    kind: meta.kind ?? "auto",
    name: meta.name ?? "",
    clients: meta.clients ?? [],
    authors: meta.authors ?? [],
    restoredFrom: meta.restoredFrom ?? 0,
  };
}

/** Options of {@link DocumentStore.saveSnapshot}. */
export interface SaveSnapshotOptions {
  /**
   * Trim only ops `<= trimThrough` (never more than `uptoSeq`): ops that a side-effect
   * consumer has not committed yet stay in the log. Loading still starts at the
   * snapshot, so ops between `trimThrough` and `uptoSeq` are kept but never replayed.
   * @default uptoSeq
   */
  trimThrough?: number;
}

/** Options of {@link DocumentStore.claimEpoch}. */
export interface ClaimEpochOptions {
  /**
   * The lowest epoch to claim: the claim returns `max(current + 1, atLeast)`. An
   * ownership layer that remembers a higher epoch than storage has (storage was
   * restored from an older backup) passes one above it, so epochs stay monotonic
   * and an ex-owner holding a pre-restore epoch is still fenced.
   * @default 0 (no floor: the next epoch)
   */
  atLeast?: number;
  /**
   * Claim only if the document exists (it was created and not deleted since):
   * otherwise throw `OpStreamError(DOCUMENT_NOT_FOUND)` and create or change
   * nothing. Read-only joins claim this way, in one step with the existence check,
   * so a reader can neither create a document nor resurrect one deleted meanwhile.
   * @default false (create the record when missing)
   */
  mustExist?: boolean;
}

/** The error of a `mustExist` claim of a document that does not exist. */
export function documentNotFound(docId: string): OpStreamError {
  return new OpStreamError(
    ErrorCodes.DOCUMENT_NOT_FOUND,
    `No document "${docId}" (readers never create one).`,
    {
      docId,
    },
  );
}

/** How far a snapshot up to `uptoSeq` trims: `options.trimThrough`, never past `uptoSeq`. */
export function trimPoint(uptoSeq: number, options: SaveSnapshotOptions = {}): number {
  return Math.min(uptoSeq, options.trimThrough ?? uptoSeq);
}

/**
 * The system of record. Each document has an append-only op log, an optional
 * snapshot, and an **epoch**: the fencing token of its current owner.
 *
 * Fencing: a node that becomes owner calls `claimEpoch()` before it loads; every
 * write (`append`, `saveSnapshot`) names that epoch and fails with
 * `OpStreamError(FENCED)` when a later epoch has been claimed since, so a paused
 * ex-owner can never append to, overwrite or trim its successor's document.
 *
 * Implementations: memory (tests), SQLite (embedded default), Redis, Postgres. The contract in
 * `spec/contracts/store.contract.ts` runs against every one of them.
 */
export interface DocumentStore {
  /** A short name for logs and metrics, e.g. `"sqlite"`. */
  readonly kind: string;
  /**
   * Claims the next epoch for `docId` (creating the document record if needed,
   * unless `options.mustExist`), or `options.atLeast` when that is higher, and
   * returns it.
   */
  claimEpoch(docId: string, options?: ClaimEpochOptions): Promise<number>;
  /**
   * Appends `updates` in order as one atomic batch, fenced by `epoch`.
   * Resolves with their sequence numbers once they are durable.
   */
  append(docId: string, epoch: number, updates: readonly Uint8Array[]): Promise<number[]>;
  /** Ops with `seq > afterSeq`, in sequence order. */
  readOps(docId: string, afterSeq: number): Promise<StoredOp[]>;
  /** The latest snapshot, or null. */
  loadSnapshot(docId: string): Promise<StoredSnapshot | null>;
  /** The latest snapshot and every op after it, read consistently. */
  load(docId: string): Promise<StoredDocument>;
  /**
   * Saves `state` as the snapshot up to `uptoSeq` and trims ops `<= uptoSeq` (or
   * `<= options.trimThrough` when lower), as one fenced operation (both happen or
   * neither).
   */
  saveSnapshot(
    docId: string,
    epoch: number,
    state: Uint8Array,
    uptoSeq: number,
    options?: SaveSnapshotOptions,
  ): Promise<void>;
  /**
   * Records that side-effect consumer `consumer` has handled every op of `docId`
   * up to and including `seq`. Fenced by `epoch` like every write; never moves an
   * offset backwards (a lower `seq` leaves it as it is).
   */
  commitOffset(docId: string, epoch: number, consumer: string, seq: number): Promise<void>;
  /** The committed offset of each consumer of `docId` (consumers that never committed are absent). */
  readOffsets(docId: string): Promise<Map<string, number>>;
  /**
   * Saves a version of `docId`, fenced by `epoch` like every write, and returns its
   * description with the id the store gave it. Versions are kept apart from the
   * log and the snapshot: compaction never touches them.
   */
  saveVersion(docId: string, epoch: number, version: NewVersion): Promise<VersionInfo>;
  /** Every version of `docId` (without states), by id ascending; `[]` when none. */
  listVersions(docId: string): Promise<VersionInfo[]>;
  /** One version with its state, or null when there is no such version. */
  loadVersion(docId: string, id: number): Promise<StoredVersion | null>;
  /** Removes the versions `ids` of `docId` (unknown ids are ignored), fenced by `epoch`, as one operation. */
  dropVersions(docId: string, epoch: number, ids: readonly number[]): Promise<void>;
  /** Removes the document, its ops, snapshot, versions and consumer offsets. Idempotent. */
  delete(docId: string): Promise<void>;
  /** Ids of every stored document, sorted. */
  list(): Promise<string[]>;
  /** Resolves when the store answers; rejects with STORAGE_UNAVAILABLE otherwise. */
  ping(): Promise<void>;
  /**
   * Resolves once the store can take its first write without a start-up delay (the
   * SQLite store's writer thread has opened the file). Hosts await it before they
   * listen. @default none: ready at once
   */
  whenReady?(): Promise<void>;
  /** Releases connections and file handles. */
  close(): Promise<void>;
}
