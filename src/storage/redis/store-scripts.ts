import type { Cluster, Redis } from "ioredis";
import type { StoredOp } from "../document-store.js";
import { fencedError } from "../fencing.js";

/*
 * The Lua scripts of RedisDocumentStore. Each runs atomically on the Redis server,
 * so the epoch check and the writes it guards cannot interleave with another
 * node's claim. Every fenced script checks the epoch before its first write: Redis
 * does not roll a script back when a command fails halfway, so nothing may be
 * written until the script knows it will finish.
 *
 * Keys (KEYS[n]) are passed in, never built in Lua, so a client-side ioredis
 * `keyPrefix` applies to them as well. Numbers going back to Redis are formatted
 * with "%d": Lua 5.1 would print 1e+15 for large doubles.
 */

/** First element of a fenced script's reply when the write was refused; the second is the current epoch. */
export const FENCED_MARKER = "fenced";
/** First element of a fenced script's reply when the write happened. */
export const OK_MARKER = "ok";

/**
 * Claims the next epoch (or ARGV[2] when higher: see `ClaimEpochOptions.atLeast`)
 * and marks the document live.
 * KEYS: meta, docs (standalone only). ARGV: docId, atLeast, mustExist ("1" or "0").
 * Returns the new epoch, or 0 (no epoch is 0) when ARGV[3] is "1" and the
 * document is missing or deleted: then nothing is written (see `ClaimEpochOptions.mustExist`).
 * `docs` is a sorted set with every score 0, so ZRANGE lists ids in byte order. On
 * a Redis Cluster it lives in another slot than the document, so the cluster
 * variant passes meta alone and the index step is skipped (cluster-list.ts).
 */
export const CLAIM_SCRIPT = `
if ARGV[3] == "1" and redis.call("HGET", KEYS[1], "live") ~= "1" then
  return 0
end
local epoch = tonumber(redis.call("HGET", KEYS[1], "epoch") or "0") + 1
local atLeast = tonumber(ARGV[2]) or 0
if atLeast > epoch then
  epoch = atLeast
end
redis.call("HSET", KEYS[1], "epoch", string.format("%d", epoch))
redis.call("HSET", KEYS[1], "live", "1")
redis.call("HSETNX", KEYS[1], "last_seq", "0")
redis.call("HSETNX", KEYS[1], "snapshot_seq", "0")
redis.call("HSETNX", KEYS[1], "snapshot_epoch", "0")
if #KEYS >= 2 then
  redis.call("ZADD", KEYS[2], 0, ARGV[1])
end
return epoch
`;

// Shared head of the fenced scripts (store-versions.ts's too): ARGV[1] is the writer's
// epoch. A document that was never claimed has epoch 0, which no writer can hold.
export const FENCE = `
local current = tonumber(redis.call("HGET", KEYS[1], "epoch") or "0")
if current == 0 or current ~= tonumber(ARGV[1]) then
  return {"${FENCED_MARKER}", current}
end
`;

/**
 * Appends a batch of updates as stream entries `<seq>-0` {epoch, u}.
 * KEYS: meta, ops. ARGV: epoch, update... Returns {"ok", seq...} or {"fenced", current}.
 * The ids are above every id the stream has held (`last_seq` survives trims and
 * deletes), so XADD cannot refuse them after the first one was written.
 */
export const APPEND_SCRIPT = `${FENCE}
local seq = tonumber(redis.call("HGET", KEYS[1], "last_seq") or "0")
local reply = {"${OK_MARKER}"}
for i = 2, #ARGV do
  seq = seq + 1
  redis.call("XADD", KEYS[2], string.format("%d-0", seq), "epoch", ARGV[1], "u", ARGV[i])
  reply[#reply + 1] = seq
end
redis.call("HSET", KEYS[1], "last_seq", string.format("%d", seq))
return reply
`;

/**
 * Saves the snapshot and trims the op log through ARGV[4], in one step.
 * KEYS: meta, snapshot, ops. ARGV: epoch, state, uptoSeq, trimThrough.
 * XTRIM MINID keeps ids >= its argument, hence trimThrough + 1.
 */
export const SNAPSHOT_SCRIPT = `${FENCE}
redis.call("SET", KEYS[2], ARGV[2])
redis.call("HSET", KEYS[1], "snapshot_seq", ARGV[3], "snapshot_epoch", ARGV[1])
local trim = tonumber(ARGV[4])
if trim >= 1 then
  redis.call("XTRIM", KEYS[3], "MINID", string.format("%d-0", trim + 1))
end
return {"${OK_MARKER}"}
`;

/**
 * Moves a consumer's offset forward (never back).
 * KEYS: meta, offsets. ARGV: epoch, consumer, seq.
 */
export const COMMIT_OFFSET_SCRIPT = `${FENCE}
local old = redis.call("HGET", KEYS[2], ARGV[2])
if not old or tonumber(ARGV[3]) > tonumber(old) then
  redis.call("HSET", KEYS[2], ARGV[2], ARGV[3])
end
return {"${OK_MARKER}"}
`;

/**
 * Drops ops, snapshot, offsets and versions but keeps `epoch`, `last_seq` and
 * `last_version`, so an ex-owner stays fenced and neither sequence numbers nor
 * version ids repeat after re-creation.
 * KEYS: meta, ops, snapshot, offsets, versions, version_states, docs (standalone only). ARGV: docId.
 */
export const DELETE_SCRIPT = `
redis.call("DEL", KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
if redis.call("EXISTS", KEYS[1]) == 1 then
  redis.call("HSET", KEYS[1], "live", "0", "snapshot_seq", "0", "snapshot_epoch", "0")
end
if #KEYS >= 7 then
  redis.call("ZREM", KEYS[7], ARGV[1])
end
return 1
`;

/**
 * Reads the snapshot, `last_seq` and the first page of ops after the snapshot
 * as of one moment. KEYS: meta, snapshot, ops. ARGV: page size (0: no ops).
 * Returns {hasSnapshot, snapshotSeq, snapshotEpoch, lastSeq, entries, state?};
 * the state comes last because a Lua nil would cut the array short.
 */
export const LOAD_SCRIPT = `
local meta = redis.call("HMGET", KEYS[1], "snapshot_seq", "snapshot_epoch", "last_seq")
local state = redis.call("GET", KEYS[2])
local lastSeq = tonumber(meta[3] or "0")
local snapshotSeq = 0
local snapshotEpoch = 0
if state then
  snapshotSeq = tonumber(meta[1] or "0")
  snapshotEpoch = tonumber(meta[2] or "0")
end
local entries = {}
local count = tonumber(ARGV[1])
if count > 0 then
  entries = redis.call("XRANGE", KEYS[3], string.format("%d-0", snapshotSeq + 1), "+", "COUNT", count)
end
if state then
  return {1, snapshotSeq, snapshotEpoch, lastSeq, entries, state}
end
return {0, 0, 0, lastSeq, entries}
`;

/** A stream entry as the *Buffer ioredis variants return it: id and flat field/value list. */
export type StreamEntry = [id: Buffer, fields: Buffer[]];

/** The reply of a fenced script: `["ok", ...seqs]` or `["fenced", currentEpoch]`. */
export type FencedReply = [marker: string, ...values: number[]];

/** The reply of LOAD_SCRIPT (Buffer variant). */
export type LoadReply =
  | [
      hasSnapshot: 1,
      snapshotSeq: number,
      snapshotEpoch: number,
      lastSeq: number,
      entries: StreamEntry[],
      state: Buffer,
    ]
  | [hasSnapshot: 0, snapshotSeq: number, snapshotEpoch: number, lastSeq: number, entries: StreamEntry[]];

/** The scripts as ioredis commands (evalsha, with a fallback to eval on NOSCRIPT): keys first, then ARGV. */
export interface StoreCommands {
  opstreamStoreClaim(
    meta: string,
    docs: string,
    docId: string,
    atLeast: number,
    mustExist: "1" | "0",
  ): Promise<number>;
  /** CLAIM_SCRIPT without the index: for a Redis Cluster. */
  opstreamStoreClaimCluster(
    meta: string,
    docId: string,
    atLeast: number,
    mustExist: "1" | "0",
  ): Promise<number>;
  opstreamStoreAppend(meta: string, ops: string, epoch: number, ...updates: Buffer[]): Promise<FencedReply>;
  opstreamStoreSnapshot(
    meta: string,
    snapshot: string,
    ops: string,
    epoch: number,
    state: Buffer,
    uptoSeq: number,
    trimThrough: number,
  ): Promise<FencedReply>;
  opstreamStoreCommitOffset(
    meta: string,
    offsets: string,
    epoch: number,
    consumer: string,
    seq: number,
  ): Promise<FencedReply>;
  opstreamStoreDelete(
    meta: string,
    ops: string,
    snapshot: string,
    offsets: string,
    versions: string,
    versionStates: string,
    docs: string,
    docId: string,
  ): Promise<number>;
  /** DELETE_SCRIPT without the index: for a Redis Cluster. */
  opstreamStoreDeleteCluster(
    meta: string,
    ops: string,
    snapshot: string,
    offsets: string,
    versions: string,
    versionStates: string,
    docId: string,
  ): Promise<number>;
  opstreamStoreLoadBuffer(meta: string, snapshot: string, ops: string, pageSize: number): Promise<LoadReply>;
}

const DEFINITIONS: readonly [name: string, numberOfKeys: number, lua: string][] = [
  ["opstreamStoreClaim", 2, CLAIM_SCRIPT],
  ["opstreamStoreClaimCluster", 1, CLAIM_SCRIPT],
  ["opstreamStoreAppend", 2, APPEND_SCRIPT],
  ["opstreamStoreSnapshot", 3, SNAPSHOT_SCRIPT],
  ["opstreamStoreCommitOffset", 2, COMMIT_OFFSET_SCRIPT],
  ["opstreamStoreDelete", 7, DELETE_SCRIPT],
  ["opstreamStoreDeleteCluster", 6, DELETE_SCRIPT],
  ["opstreamStoreLoad", 3, LOAD_SCRIPT],
];

/**
 * Defines the scripts on `redis`, a Redis or a Cluster client (idempotent: the same
 * names and bodies on every call, so two stores may share one client) and returns
 * them typed. ioredis adds defined commands at run time, hence the one cast; their
 * reply shapes are fixed by the scripts above.
 */
export function defineStoreCommands(redis: Redis | Cluster): StoreCommands {
  for (const [name, numberOfKeys, lua] of DEFINITIONS) redis.defineCommand(name, { numberOfKeys, lua });
  return redis as unknown as StoreCommands;
}

/** The values of an "ok" reply of a fenced script; throws FENCED for a "fenced" one. */
export function unfence(docId: string, epoch: number, reply: FencedReply): number[] {
  const [marker, ...values] = reply;
  if (marker === FENCED_MARKER) throw fencedError(docId, epoch, values[0] ?? 0);
  return values;
}

/** Decodes one `<seq>-0` {epoch, u} entry, copying the bytes out of ioredis's buffer. */
export function decodeEntry([id, fields]: StreamEntry): StoredOp {
  const seq = Number(id.toString("latin1").split("-", 1)[0]);
  let epoch: number | undefined;
  let update: Uint8Array | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]?.toString("latin1");
    const value = fields[i + 1];
    if (value === undefined) continue;
    if (name === "epoch") epoch = Number(value.toString("latin1"));
    else if (name === "u") update = new Uint8Array(value);
  }
  if (!Number.isSafeInteger(seq) || epoch === undefined || update === undefined) {
    throw new Error(`malformed op entry ${id.toString("latin1")}: expected id <seq>-0 and fields epoch, u`);
  }
  return { seq, epoch, update };
}
