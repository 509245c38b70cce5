import * as Y from "yjs";
import { pendingBytes } from "../engine/pending-budget.js";
import { restoreDocument } from "../engine/session-state.js";
import { checkUpdate } from "../engine/update-check.js";
import { ErrorCodes, OpStreamError, isOpStreamError } from "../errors.js";
import { TRANSPORT_DEFAULTS } from "../transport/transport-options.js";
import { TENANT_ID, tenantDocId } from "../transport/tenancy.js";
import type { DocumentStore, StoredDocument } from "./document-store.js";

/** One document of an import source: its name and its whole Yjs state (v1 update). */
export interface ImportEntry {
  /** The name clients open it by (without any tenant). */
  readonly name: string;
  /** `Y.encodeStateAsUpdate(doc)`, or any v1 update that holds the document. */
  readonly state: Uint8Array;
  /**
   * Set by a source that could not read this entry (e.g. a row whose data is not a
   * blob): the import reports it as invalid with this reason and `state` is ignored.
   * @default undefined: the entry was read
   */
  readonly unreadable?: string;
}

/**
 * Where imported documents come from: anything that lists `name → Yjs state`.
 * `hocuspocusSqliteSource()` and `directorySource()` are the built-in ones.
 */
export interface ImportSource {
  /** Says where the documents come from, for the summary (e.g. the file). */
  readonly description: string;
  /** The documents, one at a time (a source need not hold them all in memory). */
  entries(): AsyncIterable<ImportEntry>;
  /** Releases files or connections. @default nothing to release */
  close?(): void | Promise<void>;
}

/** Options of {@link importDocuments}. */
export interface ImportOptions {
  /**
   * What happens to a document that already has content in the store which the
   * imported state would change: `"refuse"` leaves it untouched and reports it;
   * `"merge"` applies the imported state to it as one more Yjs update (what the
   * store lacks is added, nothing it holds is lost). A document that already holds
   * everything imported is reported as unchanged either way, so a rerun is harmless.
   * @default "refuse"
   */
  existing?: "refuse" | "merge";
  /**
   * Stores each document as `<tenant>/<name>`, the id a `useTenantResolver` server
   * gives the tenant's document `name`. Tenant ids are 1–64 of `A–Z a–z 0–9 _ . -`.
   * @default none: names are stored as they are
   */
  tenant?: string;
  /**
   * Longest name imported; longer ones are reported as invalid, since clients of a
   * server with this `transport.maxDocumentNameLength` could never open them.
   * @default 512 (the transport's default)
   */
  maxDocumentNameLength?: number;
  /** Reads and checks everything, and reports what would happen, without writing. @default false */
  dryRun?: boolean;
  /** Documents handled at the same time. @default 4 */
  concurrency?: number;
  /** Called once per document with what happened to it (the CLI prints refusals as they come). @default none */
  onResult?: (result: ImportResult) => void;
}

/** {@link ImportOptions} with every default filled in. */
type ImportSettings = Required<Omit<ImportOptions, "tenant" | "onResult">> &
  Pick<ImportOptions, "tenant" | "onResult">;

/** The defaults of {@link ImportOptions}. */
export const IMPORT_DEFAULTS: Readonly<Omit<ImportSettings, "tenant" | "onResult">> = Object.freeze({
  existing: "refuse",
  maxDocumentNameLength: TRANSPORT_DEFAULTS.maxDocumentNameLength,
  dryRun: false,
  concurrency: 4,
});

/**
 * What happened to one document:
 * - `imported`: it had no content in the store and now holds the imported state;
 * - `merged`: it had content, and what the imported state adds was appended (`existing: "merge"`);
 * - `unchanged`: the store already held everything the state contains (a rerun, or an empty state);
 * - `refused`: it had other content, left untouched (`existing: "refuse"`);
 * - `invalid`: the entry cannot be imported (see `reason`);
 * - `failed`: the store failed, or the document was taken over while it was written (see `reason`).
 */
export type ImportOutcome = "imported" | "merged" | "unchanged" | "refused" | "invalid" | "failed";

/** One document's outcome. */
export interface ImportResult {
  /** The name in the source. */
  readonly name: string;
  /** The id in the store (`<tenant>/<name>` with a tenant). */
  readonly docId: string;
  readonly outcome: ImportOutcome;
  /** Bytes appended to the store (0 unless imported or merged). */
  readonly bytes: number;
  /** Why, for `refused`, `invalid` and `failed`. */
  readonly reason?: string;
}

/** The totals of an import. */
export interface ImportSummary {
  readonly source: string;
  readonly dryRun: boolean;
  /** Documents per outcome. */
  readonly counts: Readonly<Record<ImportOutcome, number>>;
  /** Bytes appended to the store. */
  readonly bytes: number;
  /** Every document that was refused, invalid or failed, in the order they finished. */
  readonly problems: readonly ImportResult[];
}

/** What the store would get for one document: nothing, or one update. */
type Plan = { readonly kind: "unchanged" } | { readonly kind: "invalid"; readonly reason: string } | Write;
/** A plan that writes: the update to append to a document without (new) or with (conflict) content. */
type Write = { readonly kind: "new" | "conflict"; readonly update: Uint8Array };

/**
 * Loads every document of `source` into `store`, each through the path the
 * server's own writes take: the importer claims the document's next epoch (as a
 * new owner does, which fences any node that still holds it: its next write fails
 * and its clients reconnect to a session that loads the import), checks the
 * document again under that epoch, and appends the state as one op, durable when
 * the promise settles. Documents that need no write are decided before any
 * claim, so a rerun disturbs no open document.
 *
 * Per-document problems are reported in the summary, not thrown; what is thrown
 * is a failure of the source itself.
 */
export async function importDocuments(
  store: DocumentStore,
  source: ImportSource,
  options: ImportOptions = {},
): Promise<ImportSummary> {
  const settings: ImportSettings = { ...IMPORT_DEFAULTS, ...options };
  if (settings.tenant !== undefined && !TENANT_ID.test(settings.tenant)) {
    throw new OpStreamError(
      ErrorCodes.INVALID_OPTION,
      `A tenant id is 1–64 of A–Z a–z 0–9 _ . - (no "/"); got "${settings.tenant}".`,
      { option: "tenant" },
    );
  }
  const counts: Record<ImportOutcome, number> = {
    imported: 0,
    merged: 0,
    unchanged: 0,
    refused: 0,
    invalid: 0,
    failed: 0,
  };
  const problems: ImportResult[] = [];
  let bytes = 0;
  const entries = source.entries()[Symbol.asyncIterator]();
  // Workers share one iterator: an async generator queues concurrent next() calls.
  const worker = async (): Promise<void> => {
    for (let next = await entries.next(); next.done !== true; next = await entries.next()) {
      const result = await importOne(store, next.value, settings);
      counts[result.outcome]++;
      bytes += result.bytes;
      if (result.reason !== undefined) problems.push(result);
      settings.onResult?.(result);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, settings.concurrency) }, worker));
  return { source: source.description, dryRun: settings.dryRun, counts, bytes, problems };
}

async function importOne(
  store: DocumentStore,
  entry: ImportEntry,
  settings: ImportSettings,
): Promise<ImportResult> {
  const docId = settings.tenant === undefined ? entry.name : tenantDocId(settings.tenant, entry.name);
  const result = (outcome: ImportOutcome, bytes = 0, reason?: string): ImportResult =>
    reason === undefined
      ? { name: entry.name, docId, outcome, bytes }
      : { name: entry.name, docId, outcome, bytes, reason };
  const invalid = invalidReason(entry, settings.maxDocumentNameLength);
  if (invalid !== undefined) return result("invalid", 0, invalid);
  try {
    const decide = (plan: Plan): ImportResult | Write => {
      if (plan.kind === "invalid") return result("invalid", 0, plan.reason);
      if (plan.kind === "unchanged") return result("unchanged");
      if (plan.kind === "conflict" && settings.existing === "refuse") return result("refused", 0, REFUSED);
      return plan;
    };
    const first = decide(planImport(docId, await store.load(docId), entry.state));
    if (!("kind" in first)) return first;
    if (settings.dryRun) return result(first.kind === "new" ? "imported" : "merged", first.update.byteLength);
    const epoch = await store.claimEpoch(docId);
    // Under our epoch nobody else can write: decide again on what is there now.
    const plan = decide(planImport(docId, await store.load(docId), entry.state));
    if (!("kind" in plan)) return plan;
    await store.append(docId, epoch, [plan.update]);
    return result(plan.kind === "new" ? "imported" : "merged", plan.update.byteLength);
  } catch (error) {
    const reason = isOpStreamError(error) ? `${error.code}: ${error.message}` : String(error);
    return result("failed", 0, reason);
  }
}

const REFUSED =
  "the store already holds other content for this document; rerun with --merge (existing: " +
  '"merge") to add the imported state to it, or delete it first (DELETE /api/documents/<name>)';
const MISSING_DEPENDENCIES =
  "the state refers to content it does not hold (Yjs keeps it pending): it is not a whole document";

/** Why `entry` cannot be imported at all, before the store is asked; undefined when it can. */
function invalidReason(entry: ImportEntry, maxDocumentNameLength: number): string | undefined {
  if (entry.unreadable !== undefined) return entry.unreadable;
  if (entry.name === "") return "an empty name cannot be opened by any client";
  if (entry.name.length > maxDocumentNameLength)
    return `the name has ${entry.name.length} characters; clients may open at most ${maxDocumentNameLength} (transport.maxDocumentNameLength)`;
  try {
    checkUpdate(entry.state);
  } catch (error) {
    return `the state is not a Yjs update (${error instanceof Error ? error.message : String(error)})`;
  }
  return undefined;
}

/**
 * Applies `state` to the stored document and says what the store would get: the
 * changes it makes (one update), or "unchanged" when Yjs integrates nothing new.
 * Invalid when Yjs cannot apply it, or part of it stays pending (it refers to
 * content it does not hold: not a whole document).
 */
function planImport(docId: string, stored: StoredDocument, state: Uint8Array): Plan {
  const doc = restoreDocument(docId, stored);
  try {
    const empty = doc.store.clients.size === 0;
    const changes: Uint8Array[] = [];
    doc.on("update", (update: Uint8Array) => changes.push(update));
    try {
      Y.applyUpdate(doc, state);
    } catch (error) {
      // checkUpdate bounds the decoder's work; it does not find every error Yjs does.
      return { kind: "invalid", reason: `Yjs could not apply the state: ${String(error)}` };
    }
    if (pendingBytes(doc) > 0) return { kind: "invalid", reason: MISSING_DEPENDENCIES };
    if (changes.length === 0) return { kind: "unchanged" };
    const update = changes.length === 1 ? (changes[0] as Uint8Array) : Y.mergeUpdates(changes);
    return { kind: empty ? "new" : "conflict", update };
  } finally {
    doc.destroy();
  }
}
