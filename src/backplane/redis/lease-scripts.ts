/**
 * The acquire script redlock runs for ownership leases, in place of its default
 * lock script (`lockScript` option). Same contract as redlock's: KEYS = the
 * resources (here one owner key, `<prefix>owner:<docId>`), ARGV[1] = the lock
 * value (here the node id, see `LeaseLocks`), ARGV[2] = the TTL in ms; returns
 * the number of keys set, 0 when any is taken.
 *
 * The one difference from redlock's default: a key that already holds *this*
 * node's id counts as free. A node that stepped down on its own deadline while
 * Redis still names it can take the document back at once (like
 * `LocalOwnership`) instead of waiting out the TTL, and an acquire that
 * supersedes this node's older lease refreshes the key. Renew and release use
 * redlock's default extend (compare-and-SET PX) and unlock (compare-and-DEL)
 * scripts, which compare the value and so never touch another node's lease.
 */
export const ACQUIRE_SCRIPT = `
for i, key in ipairs(KEYS) do
  local holder = redis.call("GET", key)
  if holder and holder ~= ARGV[1] then
    return 0
  end
end
for i, key in ipairs(KEYS) do
  redis.call("SET", key, ARGV[1], "PX", ARGV[2])
end
return #KEYS
`;

/**
 * Moves a document's progress mark, the hash `<prefix>epoch:<docId>` (KEYS[1]) with
 * fields `epoch` (the highest epoch claimed) and `seq` (the last op seq its owner
 * reported durable). ARGV[1] = epoch, ARGV[2] = seq. A higher epoch replaces both;
 * the same epoch sets the seq (one owner per epoch reports in order, and a delete
 * takes it back to 0); a lower epoch (a slow ex-owner) changes nothing. No TTL: it
 * must outlive leases and node restarts to notice storage restored from a backup.
 */
export const RECORD_MARK_SCRIPT = `
local current = tonumber(redis.call("HGET", KEYS[1], "epoch") or "0")
local epoch = tonumber(ARGV[1])
if epoch < current then
  return 0
end
redis.call("HSET", KEYS[1], "epoch", string.format("%d", epoch), "seq", string.format("%d", tonumber(ARGV[2])))
return 1
`;

/**
 * Breaks a gone node's lease: deletes the owner key KEYS[1] only while it holds
 * ARGV[1] (the node found gone). Returns 1 when it deleted it. Another node that
 * took the key meanwhile keeps it, so racing breakers cannot free a successor.
 */
export const BREAK_SCRIPT = `
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0
`;
