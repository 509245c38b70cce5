/*
 * Key layout (OPERATIONS.md, "Redis storage"), with <p> the key prefix, on a
 * standalone Redis (on a Redis Cluster each <docId> is a {hash tag}, store-keys.ts):
 *
 *   <p>ops:<docId>       STREAM  one entry per op, id `<seq>-0`, fields `epoch` and `u`
 *                                (the update bytes), so XRANGE by seq needs no index
 *   <p>meta:<docId>      HASH    epoch, last_seq, live, snapshot_seq, snapshot_epoch,
 *                                last_version (the last version id given out)
 *   <p>snapshot:<docId>  STRING  the snapshot bytes (folded through meta.snapshot_seq)
 *   <p>offsets:<docId>   HASH    side-effect consumer -> committed seq
 *   <p>versions:<docId>  HASH    version id -> its description, JSON (store-versions.ts)
 *   <p>version_states:<docId>
 *                        HASH    version id -> its state bytes
 *   <p>docs              ZSET    ids of live documents, every score 0 (so in byte order)
 *
 * `meta` outlives a delete (live = 0): its epoch keeps fencing an ex-owner, and its
 * last_seq and last_version keep sequence numbers and version ids from repeating
 * when the document is re-created. Every write is one fenced Lua script (store-scripts.ts).
 */
import type { Cluster, Redis } from "ioredis";
import { ErrorCodes, OpStreamError, isOpStreamError } from "../../errors.js";
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
import { listClusterDocuments } from "./cluster-list.js";
import { isRedisClusterUrl } from "./cluster-url.js";
import { isClusterClient, openStoreClient, withDeadline } from "./store-client.js";
import { REDIS_STORE_DEFAULTS, type RedisStoreOptions } from "./store-options.js";
import {
  assertClusterKeyPrefix,
  clusterKeys,
  standaloneKeys,
  type ClusterKeys,
  type DocumentKeyKind,
  type StandaloneKeys,
} from "./store-keys.js";
import { decodeEntry, defineStoreCommands, unfence, type StoreCommands } from "./store-scripts.js";
import { RedisVersions } from "./store-versions.js";

export { REDIS_STORE_DEFAULTS, type RedisStoreOptions } from "./store-options.js";

/** XRANGE COUNT per round trip: long logs are read in pages so no reply is huge. */
const PAGE_SIZE = 1000;
/** A load that finds its log changed between pages (a concurrent trim or delete) starts over this often. */
const LOAD_ATTEMPTS = 3;

const toBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/**
 * The op log in Redis streams: for clusters whose nodes already share a Redis,
 * standalone or a Redis Cluster (each document's keys in one slot, see
 * store-keys.ts; list() then scans every master, see cluster-list.ts).
 * Durability is Redis's: run it with AOF (OPERATIONS.md, "Redis storage").
 *
 * A call that fails or times out rejects with STORAGE_UNAVAILABLE, though a write
 * may still have happened (or, queued while disconnected, happen later). That is
 * safe: the session closes, clients resend what was not acknowledged (Yjs updates
 * are idempotent), and a late write from a session that lost its epoch is fenced.
 */
export class RedisDocumentStore implements DocumentStore {
  readonly kind = "redis";
  readonly keyPrefix: string;
  private readonly redis: Redis | Cluster;
  /** How keys are named: today's names and the index, or hash tags and the client as a Cluster. */
  private readonly layout:
    | { readonly keys: StandaloneKeys; readonly cluster?: undefined }
    | { readonly keys: ClusterKeys; readonly cluster: Cluster };
  private readonly commands: StoreCommands;
  private readonly versions: RedisVersions;
  private readonly ownsClient: boolean;
  /**
   * Bounds every call of the store's own Cluster client: its offline queue (while no
   * node answers) has no timer of its own, unlike a Redis client's.
   */
  private readonly deadlineMs: number | undefined;
  /** The latest error of the store's own connection, named in STORAGE_UNAVAILABLE messages. */
  private connectionError: Error | undefined;
  private closing: Promise<void> | undefined;

  constructor(options: RedisStoreOptions = {}) {
    const d = REDIS_STORE_DEFAULTS;
    const commandTimeoutMs = options.commandTimeoutMs ?? d.commandTimeoutMs;
    if (!Number.isFinite(commandTimeoutMs) || commandTimeoutMs <= 0) {
      throw new OpStreamError(
        ErrorCodes.INVALID_OPTION,
        `RedisStoreOptions.commandTimeoutMs must be a positive number of milliseconds, got ${String(commandTimeoutMs)}.`,
        { option: "commandTimeoutMs", value: commandTimeoutMs },
      );
    }
    this.keyPrefix = options.keyPrefix ?? d.keyPrefix;
    if (options.cluster?.length === 0) {
      throw new OpStreamError(
        ErrorCodes.INVALID_OPTION,
        "RedisStoreOptions.cluster must name at least one node of the Redis Cluster.",
        { option: "cluster" },
      );
    }
    const connectionString = options.connectionString ?? d.connectionString;
    const clusterMode = options.redis
      ? isClusterClient(options.redis)
      : options.cluster !== undefined || isRedisClusterUrl(connectionString);
    // Checked before a client exists, so a bad prefix leaves nothing to close.
    if (clusterMode) assertClusterKeyPrefix(this.keyPrefix);
    const opened = openStoreClient({
      connectionString,
      cluster: options.cluster,
      redis: options.redis,
      commandTimeoutMs,
    });
    this.redis = opened.client;
    this.layout = opened.cluster
      ? { keys: clusterKeys(this.keyPrefix), cluster: opened.cluster }
      : { keys: standaloneKeys(this.keyPrefix) };
    this.ownsClient = opened.owned;
    this.deadlineMs = opened.owned && opened.cluster ? commandTimeoutMs : undefined;
    if (this.ownsClient) {
      this.redis.on("error", (error: Error) => (this.connectionError = error));
      this.redis.on("ready", () => (this.connectionError = undefined));
    }
    this.commands = defineStoreCommands(this.redis);
    this.versions = new RedisVersions(this.redis, (kind, docId) => this.key(kind, docId));
  }

  /** Whether the store runs on a Redis Cluster (hash-tagged keys, no index). */
  get clusterMode(): boolean {
    return this.layout.cluster !== undefined;
  }

  private key(kind: DocumentKeyKind, docId: string): string {
    return this.layout.keys.key(kind, docId);
  }

  /**
   * Runs `work` and turns ioredis failures into STORAGE_UNAVAILABLE (FENCED and
   * other coded errors pass). `bounded: false` leaves the deadline to `work`.
   */
  private async run<T>(
    operation: string,
    docId: string | undefined,
    work: () => Promise<T>,
    bounded = true,
  ): Promise<T> {
    try {
      return await (bounded ? this.bounded(work()) : work());
    } catch (error) {
      if (isOpStreamError(error)) throw error;
      const reason = (error instanceof Error ? error.message : String(error)).replace(/\.$/, "");
      const connection = this.connectionError ? ` (connection: ${this.connectionError.message})` : "";
      throw new OpStreamError(
        ErrorCodes.STORAGE_UNAVAILABLE,
        `Redis ${operation} failed${docId === undefined ? "" : ` for document "${docId}"`}: ` +
          `${reason}${connection}. ` +
          `Check that Redis is reachable and the connection string is right.`,
        { operation, docId, connectionError: this.connectionError?.message },
        error,
      );
    }
  }

  /** `pending`, or a rejection once `deadlineMs` passed without its answer. */
  private bounded<T>(pending: Promise<T>): Promise<T> {
    return this.deadlineMs === undefined ? pending : withDeadline(pending, this.deadlineMs);
  }

  /** Ops with seq > afterSeq, a page per round trip. */
  private async readOpsPaged(docId: string, afterSeq: number): Promise<StoredOp[]> {
    const ops: StoredOp[] = [];
    let cursor = Math.max(0, Math.floor(afterSeq));
    for (;;) {
      const page = await this.redis.xrangeBuffer(
        this.key("ops", docId),
        `${cursor + 1}-0`,
        "+",
        "COUNT",
        PAGE_SIZE,
      );
      for (const entry of page) ops.push(decodeEntry(entry));
      const last = ops.at(-1);
      if (page.length < PAGE_SIZE || !last) return ops;
      cursor = last.seq;
    }
  }

  claimEpoch(docId: string, options: ClaimEpochOptions = {}): Promise<number> {
    return this.run("claimEpoch", docId, async () => {
      const atLeast = options.atLeast ?? 0;
      const mustExist = options.mustExist ? "1" : "0";
      const meta = this.key("meta", docId);
      const { layout } = this;
      const epoch = layout.cluster
        ? await this.commands.opstreamStoreClaimCluster(meta, docId, atLeast, mustExist)
        : await this.commands.opstreamStoreClaim(meta, layout.keys.docsKey, docId, atLeast, mustExist);
      if (epoch === 0) throw documentNotFound(docId);
      return epoch;
    });
  }

  append(docId: string, epoch: number, updates: readonly Uint8Array[]): Promise<number[]> {
    return this.run("append", docId, async () => {
      const reply = await this.commands.opstreamStoreAppend(
        this.key("meta", docId),
        this.key("ops", docId),
        epoch,
        ...updates.map(toBuffer),
      );
      return unfence(docId, epoch, reply);
    });
  }

  readOps(docId: string, afterSeq: number): Promise<StoredOp[]> {
    return this.run("readOps", docId, () => this.readOpsPaged(docId, afterSeq));
  }

  loadSnapshot(docId: string): Promise<StoredSnapshot | null> {
    return this.run("loadSnapshot", docId, async () => (await this.loadFirstPage(docId, 0)).snapshot);
  }

  /**
   * The snapshot and the first page of ops come from one script (one moment).
   * Later pages are read after it; the stream always holds one contiguous run of
   * seqs (appends add at the end, trims cut the front), so a gap or a short end
   * means a concurrent trim or delete, and the load starts over.
   */
  load(docId: string): Promise<StoredDocument> {
    return this.run("load", docId, async () => {
      for (let attempt = 1; ; attempt++) {
        const first = await this.loadFirstPage(docId, PAGE_SIZE);
        const last = first.ops.at(-1);
        if (first.ops.length < PAGE_SIZE || !last) return { snapshot: first.snapshot, ops: first.ops };
        const ops = first.ops.concat(await this.readOpsPaged(docId, last.seq));
        const start = ops[0]?.seq ?? 0;
        const contiguous = ops.every((op, i) => op.seq === start + i);
        if (contiguous && (ops.at(-1)?.seq ?? 0) >= first.lastSeq) return { snapshot: first.snapshot, ops };
        if (attempt >= LOAD_ATTEMPTS) {
          throw new Error(
            `the op log changed under ${LOAD_ATTEMPTS} loads in a row (concurrent snapshots or deletes)`,
          );
        }
      }
    });
  }

  private async loadFirstPage(
    docId: string,
    pageSize: number,
  ): Promise<StoredDocument & { lastSeq: number; ops: StoredOp[] }> {
    const reply = await this.commands.opstreamStoreLoadBuffer(
      this.key("meta", docId),
      this.key("snapshot", docId),
      this.key("ops", docId),
      pageSize,
    );
    const [hasSnapshot, seq, epoch, lastSeq, entries] = reply;
    const snapshot = hasSnapshot === 1 ? { seq, epoch, state: new Uint8Array(reply[5]) } : null;
    return { snapshot, ops: entries.map(decodeEntry), lastSeq };
  }

  saveSnapshot(
    docId: string,
    epoch: number,
    state: Uint8Array,
    uptoSeq: number,
    options: SaveSnapshotOptions = {},
  ): Promise<void> {
    const trimThrough = trimPoint(uptoSeq, options);
    return this.run("saveSnapshot", docId, async () => {
      const reply = await this.commands.opstreamStoreSnapshot(
        this.key("meta", docId),
        this.key("snapshot", docId),
        this.key("ops", docId),
        epoch,
        toBuffer(state),
        uptoSeq,
        trimThrough,
      );
      unfence(docId, epoch, reply);
    });
  }

  commitOffset(docId: string, epoch: number, consumer: string, seq: number): Promise<void> {
    return this.run("commitOffset", docId, async () => {
      const reply = await this.commands.opstreamStoreCommitOffset(
        this.key("meta", docId),
        this.key("offsets", docId),
        epoch,
        consumer,
        seq,
      );
      unfence(docId, epoch, reply);
    });
  }

  readOffsets(docId: string): Promise<Map<string, number>> {
    return this.run("readOffsets", docId, async () => {
      const offsets = await this.redis.hgetall(this.key("offsets", docId));
      return new Map(Object.entries(offsets).map(([consumer, seq]) => [consumer, Number(seq)]));
    });
  }

  saveVersion(docId: string, epoch: number, version: NewVersion): Promise<VersionInfo> {
    return this.run("saveVersion", docId, () => this.versions.save(docId, epoch, version));
  }

  listVersions(docId: string): Promise<VersionInfo[]> {
    return this.run("listVersions", docId, () => this.versions.list(docId));
  }

  loadVersion(docId: string, id: number): Promise<StoredVersion | null> {
    return this.run("loadVersion", docId, () => this.versions.load(docId, id));
  }

  dropVersions(docId: string, epoch: number, ids: readonly number[]): Promise<void> {
    return this.run("dropVersions", docId, () => this.versions.drop(docId, epoch, ids));
  }

  delete(docId: string): Promise<void> {
    return this.run("delete", docId, async () => {
      const kinds = ["meta", "ops", "snapshot", "offsets", "versions", "version_states"] as const;
      const [meta = "", ops = "", snapshot = "", offsets = "", versions = "", states = ""] = kinds.map(
        (kind) => this.key(kind, docId),
      );
      const { commands, layout } = this;
      if (layout.cluster) {
        await commands.opstreamStoreDeleteCluster(meta, ops, snapshot, offsets, versions, states, docId);
      } else {
        const { docsKey } = layout.keys;
        await commands.opstreamStoreDelete(meta, ops, snapshot, offsets, versions, states, docsKey, docId);
      }
    });
  }

  list(): Promise<string[]> {
    const { layout } = this;
    if (!layout.cluster) {
      const { docsKey } = layout.keys;
      return this.run("list", undefined, () => this.redis.zrange(docsKey, 0, "-1"));
    }
    const { cluster, keys } = layout;
    // Only the wait for a connected cluster is bounded: a scan of a large cluster
    // takes as many round trips as it needs, each under the nodes' commandTimeout.
    return this.run(
      "list",
      undefined,
      async () => {
        await this.bounded(cluster.ping());
        return listClusterDocuments(cluster, keys.metaPattern, (key) => keys.docIdOfMetaKey(key));
      },
      false,
    );
  }

  ping(): Promise<void> {
    return this.run("ping", undefined, async () => {
      await this.redis.ping();
    });
  }

  /** Quits the store's own client; a caller-owned client stays open. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.run("close", undefined, async () => {
      if (!this.ownsClient || this.redis.status === "end") return;
      if (this.redis.status !== "ready") {
        this.redis.disconnect();
        return;
      }
      try {
        // QUIT lets commands already sent get their replies.
        await this.redis.quit();
      } catch (error) {
        this.redis.disconnect();
        throw error;
      }
    });
    return this.closing;
  }
}
