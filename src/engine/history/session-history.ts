import * as Y from "yjs";
import { ErrorCodes, OpStreamError, isOpStreamError } from "../../errors.js";
import type { Logger } from "../../logging/logger.js";
import type { OpStreamMetrics } from "../../metrics.js";
import type { DocumentStore, VersionInfo, VersionKind } from "../../storage/document-store.js";
import type { Origin } from "../origin.js";
import type { ResolvedHistoryOptions } from "./history-options.js";
import { revertUpdate } from "./restore.js";
import { versionsToDrop } from "./retention.js";

/** What a session's history needs of its session. */
export interface HistoryHost {
  readonly docId: string;
  readonly epoch: number;
  /** Runs `work` under the apply lock, once every change queued before it is durable. */
  exclusive(work: () => Promise<void>): Promise<void>;
  /** The durable document now: its full state, its seq and its clients (only under the lock). */
  current(): { readonly seq: number; readonly state: Uint8Array; readonly clients: number[] };
  /** Runs `read` under the apply lock (as {@link current} needs). */
  read<T>(read: () => T): Promise<T>;
  /** Applies a server-side update like a client's: durable and fanned out when this resolves. */
  apply(update: Uint8Array): Promise<number | null>;
}

/** The services a session's history uses. */
export interface HistoryServices {
  readonly store: DocumentStore;
  readonly logger: Logger;
  readonly metrics: OpStreamMetrics;
  readonly options: ResolvedHistoryOptions;
}

/** What a restore did: the version it saved first, the op it applied, and the version it made. */
export interface RestoreResult {
  /** The document just before the restore (restore to it to undo the restore). */
  readonly before: VersionInfo;
  /** The version the document now holds the content of. */
  readonly restored: VersionInfo;
  /** The version recorded after the restore. */
  readonly after: VersionInfo;
  /** The seq of the restoring op, or null when the document already had that content. */
  readonly seq: number | null;
}

/** Most distinct authors a version records; the rest are counted as "+N more". */
const MAX_AUTHORS = 50;

/**
 * The history of one owned document: it records who edits, takes automatic
 * versions by the policy (after `quietMs` without an edit, at most one per
 * `minIntervalMs`, and at the latest `maxIntervalMs` after the first unversioned
 * edit), saves named versions and restores. Every version write is fenced by
 * the session's epoch. A session that unloads with unversioned edits saves one
 * last automatic version with its final snapshot.
 */
export class SessionHistory {
  /** When the oldest edit no version holds yet was made (0: none). */
  private unversionedSince = 0;
  private lastEditAt = 0;
  private readonly authors = new Set<string>();
  private extraAuthors = 0;
  /** When the latest version was taken; undefined until read from the store. */
  private lastVersionAt: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Restores run one at a time. */
  private restoring: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly host: HistoryHost,
    private readonly services: HistoryServices,
  ) {}

  /** Records ops durably appended by `origins`' producers (cheap: no timer work per op). */
  recordEdit(changes: Iterable<{ readonly origin: Origin }>, now = Date.now()): void {
    if (this.unversionedSince === 0) this.unversionedSince = now;
    this.lastEditAt = now;
    for (const change of changes) this.addAuthor(authorOf(change.origin));
    this.arm(this.services.options.quietMs);
  }

  /**
   * The document held ops when the session opened: a version may be missing for
   * them (the last session crashed, perhaps right after a snapshot trimmed the log).
   * The next check compares the latest version's seq with the document's.
   */
  recordLoadedOps(): void {
    this.recordEdit([], Date.now());
  }

  /** Saves a version now (`named`, or an automatic one), under the apply lock. */
  async save(kind: VersionKind, name = "", restoredFrom = 0): Promise<VersionInfo> {
    let saved: VersionInfo | undefined;
    await this.host.exclusive(async () => {
      saved = await this.write(kind, name, restoredFrom);
    });
    return saved!;
  }

  /**
   * Brings the document back to version `versionId` with new ops (see
   * {@link revertUpdate}): saves a `before-restore` version, applies the change
   * like any edit (durable, then fanned out to every client on every node), and
   * saves a `restore` version. Rejects with VERSION_NOT_FOUND.
   */
  restore(versionId: number): Promise<RestoreResult> {
    const run = this.restoring.then(() => this.restoreNow(versionId));
    this.restoring = run.catch(() => undefined);
    return run;
  }

  /** Called under the lock of the session's graceful close: saves a last automatic version when edits lack one. */
  async onClose(): Promise<void> {
    this.disarm();
    if (this.unversionedSince === 0 || !this.services.options.auto) return;
    try {
      const latest = await this.latest();
      if (latest?.seq === this.host.current().seq) return;
      await this.write("auto", "", 0);
    } catch (error) {
      this.services.logger.warn({ err: error, docId: this.host.docId }, "final version failed");
    }
  }

  stop(): void {
    this.stopped = true;
    this.disarm();
  }

  private async restoreNow(versionId: number): Promise<RestoreResult> {
    const target = await this.services.store.loadVersion(this.host.docId, versionId);
    if (!target) throw versionNotFound(this.host.docId, versionId);
    // One lock for both: an edit applied between them would be in neither `before`
    // nor the restored document, and restoring `before` could not bring it back.
    let before: VersionInfo | undefined;
    let update: Uint8Array | null = null;
    await this.host.exclusive(async () => {
      before = await this.write("before-restore", `Before restoring ${describe(target)}`, 0);
      update = revertUpdate(this.host.current().state, target.state);
    });
    const seq = update ? await this.host.apply(update) : null;
    const after = await this.save("restore", target.name || `Version of ${isoTime(target)}`, versionId);
    this.services.metrics.restores.inc();
    const { state, ...restored } = target;
    void state; // the answer describes the version; its state stays in storage
    return { before: before!, restored, after, seq };
  }

  /** Writes a version of the durable document (the caller holds the apply lock). */
  private async write(kind: VersionKind, name: string, restoredFrom: number): Promise<VersionInfo> {
    const { seq, state, clients } = this.host.current();
    const authors = [...this.authors];
    if (this.extraAuthors > 0) authors.push(`+${this.extraAuthors} more`);
    const time = Date.now();
    const saved = await this.services.store.saveVersion(this.host.docId, this.host.epoch, {
      seq,
      time,
      kind,
      name,
      clients,
      authors,
      restoredFrom,
      state,
    });
    this.unversionedSince = 0;
    this.authors.clear();
    this.extraAuthors = 0;
    this.lastVersionAt = time;
    this.disarm();
    this.services.metrics.versionsSaved.inc({ kind });
    if (kind === "auto") await this.prune(time);
    return saved;
  }

  /** Drops what retention says, in the same lock as the version that made it due. */
  private async prune(now: number): Promise<void> {
    const versions = await this.services.store.listVersions(this.host.docId);
    const drop = versionsToDrop(versions, now, this.services.options.retention);
    if (drop.length === 0) return;
    await this.services.store.dropVersions(this.host.docId, this.host.epoch, drop);
    this.services.metrics.versionsDropped.inc(drop.length);
  }

  private async latest(): Promise<VersionInfo | undefined> {
    const latest = (await this.services.store.listVersions(this.host.docId)).at(-1);
    this.lastVersionAt = latest?.time ?? 0;
    return latest;
  }

  /** The next time an automatic version may be due, from `now`. */
  private dueIn(now: number): number {
    const { quietMs, minIntervalMs, maxIntervalMs } = this.services.options;
    const due = Math.min(this.lastEditAt + quietMs, this.unversionedSince + maxIntervalMs);
    return Math.max(due, (this.lastVersionAt ?? 0) + minIntervalMs) - now;
  }

  private arm(delayMs: number): void {
    if (this.timer || this.stopped || !this.services.options.auto) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        void this.tick();
      },
      Math.max(0, delayMs),
    );
    this.timer.unref();
  }

  private disarm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async tick(): Promise<void> {
    if (this.stopped || this.unversionedSince === 0) return;
    try {
      if (this.lastVersionAt === undefined) await this.latest();
      const wait = this.dueIn(Date.now());
      if (wait > 0) return this.arm(wait);
      await this.host.exclusive(async () => {
        if (this.unversionedSince === 0) return;
        const latest = await this.latest();
        if (latest?.seq === this.host.current().seq) {
          this.unversionedSince = 0; // a version already holds every op
          return;
        }
        await this.write("auto", "", 0);
      });
    } catch (error) {
      if (isOpStreamError(error, ErrorCodes.SESSION_CLOSED)) return;
      this.services.logger.warn({ err: error, docId: this.host.docId }, "automatic version failed");
      this.arm(this.services.options.quietMs);
    }
  }

  private addAuthor(author: string): void {
    if (this.authors.has(author)) return;
    if (this.authors.size < MAX_AUTHORS) this.authors.add(author);
    else this.extraAuthors += 1;
  }
}

/** How a restore's versions name the version restored: its name, else its time (ids mean nothing to people). */
function describe(version: VersionInfo): string {
  return version.name ? `"${version.name}"` : `the version of ${isoTime(version)}`;
}

function isoTime(version: VersionInfo): string {
  return new Date(version.time).toISOString().replace(/\.\d+Z$/, "Z");
}

function authorOf(origin: Origin): string {
  if (origin.kind === "peer") return origin.peerId;
  return origin.kind; // "server", "seed"
}

/** The error of a history request about a version `docId` does not have. */
export function versionNotFound(docId: string, versionId: number): OpStreamError {
  return new OpStreamError(ErrorCodes.VERSION_NOT_FOUND, `Document "${docId}" has no version ${versionId}.`, {
    docId,
    versionId,
  });
}

/** The durable document as a version holds it (call under the apply lock). */
export function stateOf(doc: Y.Doc, seq: number): { seq: number; state: Uint8Array; clients: number[] } {
  const clients = [...doc.store.clients.keys()].sort((a, b) => a - b);
  return { seq, state: Y.encodeStateAsUpdate(doc), clients };
}

/** The payload of a `version` management action: the version's name. */
export interface VersionRequest {
  readonly name: string;
}

/** The payload of a `restore` management action: the version to restore. */
export interface RestoreRequest {
  readonly versionId: number;
}

/**
 * Runs a `version` or `restore` management action on an owned document: the
 * payload and the answer's bytes are UTF-8 JSON ({@link VersionRequest} →
 * VersionInfo, {@link RestoreRequest} → {@link RestoreResult}), so a relay can
 * carry both to the owner unchanged. Rejects with HISTORY_DISABLED when the
 * node runs without history.
 */
export async function historyAction(
  docId: string,
  history: SessionHistory | undefined,
  action: "version" | "restore",
  payload: Uint8Array,
): Promise<{ seq: number; bytes: Uint8Array }> {
  if (!history) throw historyDisabled();
  const request = JSON.parse(new TextDecoder().decode(payload)) as Partial<VersionRequest & RestoreRequest>;
  if (action === "version") {
    const version = await history.save("named", String(request.name ?? ""));
    return { seq: version.seq, bytes: new TextEncoder().encode(JSON.stringify(version)) };
  }
  const versionId = Number(request.versionId);
  if (!Number.isSafeInteger(versionId) || versionId <= 0) throw versionNotFound(docId, versionId);
  const result = await history.restore(versionId);
  return { seq: result.after.seq, bytes: new TextEncoder().encode(JSON.stringify(result)) };
}

/** The error of a history request on a node without history. */
export function historyDisabled(): OpStreamError {
  return new OpStreamError(
    ErrorCodes.HISTORY_DISABLED,
    "Document history is off on this node (history: false / --no-history).",
  );
}
