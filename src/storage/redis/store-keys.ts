import { ErrorCodes, OpStreamError } from "../../errors.js";

/** The per-document keys of RedisDocumentStore (OPERATIONS.md, "Redis storage"). */
export type DocumentKeyKind = "ops" | "meta" | "snapshot" | "offsets" | "versions" | "version_states";

/** How the store names a document's keys. */
export interface StoreKeys {
  /** `<prefix><kind>:<docId>`, or `<prefix><kind>:{<docId>}` on a cluster. */
  key(kind: DocumentKeyKind, docId: string): string;
}

/** Today's names, on a standalone Redis. */
export interface StandaloneKeys extends StoreKeys {
  /** The index of live documents, `<prefix>docs`. */
  readonly docsKey: string;
}

/** Hash-tagged names, on a Redis Cluster: no index (see cluster-list.ts). */
export interface ClusterKeys extends StoreKeys {
  /** A SCAN MATCH pattern for every meta key under the prefix. */
  readonly metaPattern: string;
  /** The document id of a meta key the pattern matched, or undefined when it is not one of ours. */
  docIdOfMetaKey(key: string): string | undefined;
}

/** Standalone layout: the names every existing deployment has, unchanged. */
export function standaloneKeys(keyPrefix: string): StandaloneKeys {
  return {
    key: (kind, docId) => `${keyPrefix}${kind}:${docId}`,
    docsKey: `${keyPrefix}docs`,
  };
}

/*
 * Cluster layout. Redis Cluster hashes only the part of a key between the first
 * `{` and the first `}` after it (the hash tag), so `<prefix>ops:{<docId>}`,
 * `<prefix>meta:{<docId>}`… share one slot and one script may touch them all. A
 * prefix with a brace would move that first `{`, hence the check below.
 *
 * An empty tag (`{}`) counts as none, and then each key would hash whole, to
 * different slots. That happens for the empty id and for ids that start with `}`,
 * so those (and, to keep decoding unambiguous, ids starting with `=`) are tagged
 * `{=<docId>}`: the tag is then at least "=". Any other `}` inside an id only
 * shortens the tag, the same way in every key of the document.
 */
const ESCAPE = "=";
const needsEscape = (docId: string): boolean =>
  docId === "" || docId.startsWith("}") || docId.startsWith(ESCAPE);

/** Throws INVALID_OPTION for a key prefix that would break the cluster layout's hash tags. */
export function assertClusterKeyPrefix(keyPrefix: string): void {
  if (keyPrefix.includes("{") || keyPrefix.includes("}")) {
    throw new OpStreamError(
      ErrorCodes.INVALID_OPTION,
      `RedisStoreOptions.keyPrefix must not contain "{" or "}" on a Redis Cluster, got ${JSON.stringify(keyPrefix)}: ` +
        `the store puts each document id in a {hash tag} so that its keys share one slot.`,
      { option: "keyPrefix", value: keyPrefix },
    );
  }
}

/** The cluster layout (the prefix checked by {@link assertClusterKeyPrefix}). */
export function clusterKeys(keyPrefix: string): ClusterKeys {
  assertClusterKeyPrefix(keyPrefix);
  const key = (kind: DocumentKeyKind, docId: string): string =>
    `${keyPrefix}${kind}:{${needsEscape(docId) ? ESCAPE : ""}${docId}}`;
  const metaStart = `${keyPrefix}meta:{`;
  return {
    key,
    // SCAN MATCH is a glob: the prefix's own *, ?, [, ] and \ are escaped.
    metaPattern: `${metaStart.replace(/[*?[\]\\]/g, "\\$&")}*}`,
    docIdOfMetaKey(metaKey) {
      if (!metaKey.startsWith(metaStart) || !metaKey.endsWith("}")) return undefined;
      const inner = metaKey.slice(metaStart.length, -1);
      const docId = inner.startsWith(ESCAPE) ? inner.slice(ESCAPE.length) : inner;
      // A key of another layout that happens to match the glob is not a document.
      return key("meta", docId) === metaKey ? docId : undefined;
    },
  };
}
