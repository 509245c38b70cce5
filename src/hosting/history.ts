import { sharedTypesAsJson } from "../engine/shared-json.js";
import type { ResolvedHistoryOptions } from "../engine/history/history-options.js";
import { historyDisabled, versionNotFound, type RestoreResult } from "../engine/history/session-history.js";
import { diffStates, type VersionDiff } from "../engine/history/version-diff.js";
import { ErrorCodes, OpStreamError } from "../errors.js";
import type { DocumentRouter } from "../router/document-router.js";
import { OwnerRequests } from "../router/rpc.js";
import type { DocumentStore, StoredVersion, VersionInfo } from "../storage/document-store.js";
import { assertDocumentName } from "./document-name.js";

export type { RestoreResult } from "../engine/history/session-history.js";
export type { DiffChange, DiffDeltaOp, TypeDiff, VersionDiff } from "../engine/history/version-diff.js";

/** One side of a diff: a version id, or `"now"` (the document's current durable state). */
export type VersionRef = number | "now";

/** A version's content: its description and the JSON of its shared types. */
export interface VersionContent {
  readonly version: VersionInfo;
  /** Every root type as JSON, as `GET /api/documents/:id` answers it. */
  readonly content: Record<string, unknown>;
}

/** What {@link DocumentHistory.diff} answers. */
export interface VersionComparison {
  /** The older side: a version id, or "now". */
  readonly from: VersionRef;
  readonly to: VersionRef;
  /** The seq each side holds. */
  readonly fromSeq: number;
  readonly toSeq: number;
  readonly types: VersionDiff;
}

/**
 * Document history from your own code, on any node: `host.history`. The
 * management API, the clients' history endpoint and the Hocuspocus `version`
 * stateless message all call it.
 *
 * Writes (a named version, a restore) run on the document's owner, asked
 * through the backplane when another node owns it, under its apply lock and
 * fenced by its epoch. Reads of stored versions read storage, the system of
 * record, from whichever node is asked; a diff against `"now"` asks the owner for
 * the current state.
 */
export class DocumentHistory {
  /** @internal Created by the host. */
  constructor(
    private readonly store: DocumentStore,
    private readonly router: DocumentRouter,
    private readonly options: ResolvedHistoryOptions | undefined,
    private readonly maxDocumentNameLength: number,
  ) {}

  /** Whether this node keeps history (`history` option not `false`). */
  get enabled(): boolean {
    return this.options !== undefined;
  }

  /** Every retained version of `docId`, oldest first. Rejects with DOCUMENT_NOT_FOUND. */
  async list(docId: string): Promise<VersionInfo[]> {
    this.assertEnabled(docId);
    const versions = await this.store.listVersions(docId);
    // Versions go with their document, so only an empty answer needs the (costlier) existence check.
    if (versions.length === 0) await this.existing(docId);
    return versions;
  }

  /** One version with its state (`state` is a Yjs update of the whole document at its seq). */
  async get(docId: string, versionId: number): Promise<StoredVersion> {
    this.assertEnabled(docId);
    const version = await this.store.loadVersion(docId, versionId);
    if (version) return version;
    await this.existing(docId); // DOCUMENT_NOT_FOUND first, when that is why
    throw versionNotFound(docId, versionId);
  }

  /** One version as JSON of its shared types. */
  async content(docId: string, versionId: number): Promise<VersionContent> {
    const { state, ...version } = await this.get(docId, versionId);
    return { version, content: sharedTypesAsJson(state) };
  }

  /**
   * What changed from `from` to `to` (version ids, or "now"): inserted and
   * deleted ranges of each text and XML root, with the Yjs client id that wrote
   * them. See {@link diffStates} for how it is computed and what it costs.
   */
  async diff(docId: string, from: VersionRef, to: VersionRef): Promise<VersionComparison> {
    const [a, b] = await Promise.all([this.stateOf(docId, from), this.stateOf(docId, to)]);
    return { from, to, fromSeq: a.seq, toSeq: b.seq, types: diffStates(a.state, b.state) };
  }

  /**
   * Saves a named version of `docId` now, on its owner, once every edit it has
   * acknowledged is durable. Rejects with DOCUMENT_NOT_FOUND (it never creates a
   * document) and INVALID_OPTION for a name longer than `history.maxNameLength`.
   */
  async create(docId: string, name: string): Promise<VersionInfo> {
    const options = this.assertEnabled(docId);
    if (typeof name !== "string" || name.length > options.maxNameLength) {
      throw new OpStreamError(
        ErrorCodes.BAD_REQUEST,
        `A version name is a string of at most ${options.maxNameLength} characters.`,
        { docId },
      );
    }
    const { bytes } = await this.router.manage(docId, OwnerRequests.VERSION, json({ name }));
    return parse<VersionInfo>(bytes);
  }

  /**
   * Restores `docId` to version `versionId` on its owner, as new ops (nothing is
   * rewritten): it saves a `before-restore` version, applies the change like an
   * edit (durable, then sent to every client on every node, who keep their
   * connections), and saves a `restore` version. Undo it by restoring `before`.
   */
  async restore(docId: string, versionId: number): Promise<RestoreResult> {
    this.assertEnabled(docId);
    await this.get(docId, versionId); // 404 before any owner work
    const { bytes } = await this.router.manage(docId, OwnerRequests.RESTORE, json({ versionId }));
    return parse<RestoreResult>(bytes);
  }

  private async stateOf(docId: string, ref: VersionRef): Promise<{ seq: number; state: Uint8Array }> {
    if (ref !== "now") return this.get(docId, ref);
    this.assertEnabled(docId);
    // The owner's answer: DOCUMENT_NOT_FOUND for a missing document (nothing is created).
    const { seq, bytes } = await this.router.manage(docId, OwnerRequests.STATE);
    return { seq, state: bytes };
  }

  private assertEnabled(docId: string): ResolvedHistoryOptions {
    assertDocumentName(docId, this.maxDocumentNameLength);
    if (!this.options) throw historyDisabled();
    return this.options;
  }

  private async existing(docId: string): Promise<void> {
    if (!(await this.store.list()).includes(docId)) {
      throw new OpStreamError(ErrorCodes.DOCUMENT_NOT_FOUND, `No document "${docId}".`, { docId });
    }
  }
}

function json(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

function parse<T>(bytes: Uint8Array): T {
  return JSON.parse(new TextDecoder().decode(bytes)) as T;
}
