/*
 * The versions (document history) of RedisDocumentStore. Keys, named by
 * StoreKeys.key() (so on a Redis Cluster they carry the {<docId>} hash tag and
 * share the document's slot, and one script may touch them with its meta key):
 *
 *   <p>versions:<docId>        HASH  version id -> its description, JSON: seq, time,
 *                                    epoch, bytes, kind, name, clients, authors, restoredFrom
 *   <p>version_states:<docId>  HASH  version id -> its state bytes
 *   <p>meta:<docId>            the field `last_version`: the last id given out
 *
 * Descriptions and states live apart so that listing reads no state. `last_version`
 * is in the meta hash, which outlives a delete (like `epoch` and `last_seq`), so
 * ids are never reused for a document. Writes are fenced Lua scripts, like every
 * write of the store (store-scripts.ts).
 */
import type { Cluster, Redis } from "ioredis";
import {
  decodeVersionMeta,
  type NewVersion,
  type StoredVersion,
  type VersionInfo,
} from "../document-store.js";
import { versionInfo } from "../version-info.js";
import type { DocumentKeyKind } from "./store-keys.js";
import { FENCE, OK_MARKER, unfence, type FencedReply } from "./store-scripts.js";

/**
 * Saves a version under the next id of the document.
 * KEYS: meta, versions, version_states. ARGV: epoch, description, state.
 * Returns {"ok", id} or {"fenced", current}.
 */
export const SAVE_VERSION_SCRIPT = `${FENCE}
local id = string.format("%d", redis.call("HINCRBY", KEYS[1], "last_version", 1))
redis.call("HSET", KEYS[2], id, ARGV[2])
redis.call("HSET", KEYS[3], id, ARGV[3])
return {"${OK_MARKER}", tonumber(id)}
`;

/**
 * Removes the versions ARGV[2..] (unknown ids are no-ops), all or none.
 * KEYS: meta, versions, version_states. ARGV: epoch, id... Returns {"ok"} or {"fenced", current}.
 */
export const DROP_VERSIONS_SCRIPT = `${FENCE}
for i = 2, #ARGV do
  redis.call("HDEL", KEYS[2], ARGV[i])
  redis.call("HDEL", KEYS[3], ARGV[i])
end
return {"${OK_MARKER}"}
`;

/**
 * Reads one version's description and state as of one moment.
 * KEYS: versions, version_states. ARGV: id. Returns {description, state}, or {} when there is none.
 */
export const LOAD_VERSION_SCRIPT = `
local info = redis.call("HGET", KEYS[1], ARGV[1])
local state = redis.call("HGET", KEYS[2], ARGV[1])
if not info or not state then
  return {}
end
return {info, state}
`;

interface VersionCommands {
  opstreamStoreSaveVersion(
    meta: string,
    versions: string,
    versionStates: string,
    epoch: number,
    description: string,
    state: Buffer,
  ): Promise<FencedReply>;
  opstreamStoreDropVersions(
    meta: string,
    versions: string,
    versionStates: string,
    epoch: number,
    ...ids: number[]
  ): Promise<FencedReply>;
  opstreamStoreLoadVersionBuffer(versions: string, versionStates: string, id: number): Promise<Buffer[]>;
}

const DEFINITIONS: readonly [name: string, numberOfKeys: number, lua: string][] = [
  ["opstreamStoreSaveVersion", 3, SAVE_VERSION_SCRIPT],
  ["opstreamStoreDropVersions", 3, DROP_VERSIONS_SCRIPT],
  ["opstreamStoreLoadVersion", 2, LOAD_VERSION_SCRIPT],
];

/** A description as stored in the versions hash. */
interface Description {
  seq: number;
  time: number;
  epoch: number;
  bytes: number;
}

function describe(epoch: number, version: NewVersion): string {
  const { seq, time, kind, name, clients, authors, restoredFrom } = version;
  const bytes = version.state.byteLength;
  return JSON.stringify({ seq, time, epoch, bytes, kind, name, clients, authors, restoredFrom });
}

function decodeDescription(id: number, text: string): VersionInfo {
  const { seq, time, epoch, bytes } = JSON.parse(text) as Description;
  return { id, seq, time, epoch, bytes, ...decodeVersionMeta(text) };
}

/** Ids the store hands out; any other (fractional, negative) names no version. */
const isId = (id: number): boolean => Number.isSafeInteger(id) && id > 0;

const toBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** The version part of RedisDocumentStore, on its client and key names. */
export class RedisVersions {
  private readonly commands: VersionCommands;

  constructor(
    private readonly redis: Redis | Cluster,
    private readonly key: (kind: DocumentKeyKind, docId: string) => string,
  ) {
    for (const [name, numberOfKeys, lua] of DEFINITIONS) redis.defineCommand(name, { numberOfKeys, lua });
    this.commands = redis as unknown as VersionCommands;
  }

  async save(docId: string, epoch: number, version: NewVersion): Promise<VersionInfo> {
    const reply = await this.commands.opstreamStoreSaveVersion(
      this.key("meta", docId),
      this.key("versions", docId),
      this.key("version_states", docId),
      epoch,
      describe(epoch, version),
      toBuffer(version.state),
    );
    const [id] = unfence(docId, epoch, reply);
    if (id === undefined) throw new Error("the version script returned no id");
    return versionInfo(id, epoch, version);
  }

  async list(docId: string): Promise<VersionInfo[]> {
    const descriptions = await this.redis.hgetall(this.key("versions", docId));
    return Object.entries(descriptions)
      .map(([id, text]) => decodeDescription(Number(id), text))
      .sort((a, b) => a.id - b.id);
  }

  async load(docId: string, id: number): Promise<StoredVersion | null> {
    if (!isId(id)) return null;
    const [description, state] = await this.commands.opstreamStoreLoadVersionBuffer(
      this.key("versions", docId),
      this.key("version_states", docId),
      id,
    );
    if (!description || !state) return null;
    return { ...decodeDescription(id, description.toString("utf8")), state: new Uint8Array(state) };
  }

  async drop(docId: string, epoch: number, ids: readonly number[]): Promise<void> {
    const reply = await this.commands.opstreamStoreDropVersions(
      this.key("meta", docId),
      this.key("versions", docId),
      this.key("version_states", docId),
      epoch,
      ...ids.filter(isId),
    );
    unfence(docId, epoch, reply);
  }
}
