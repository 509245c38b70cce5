/**
 * The three lease operations, each one atomic Lua script on the key
 * `<prefix>owner:<docId>` whose value is the owner's node id (so `ownerOf` is a
 * plain GET). Every script takes KEYS[1] = the key and ARGV[1] = this node's id.
 *
 * Why not redlock (v4.2.0, as DESIGN.md first planned): it stores a random
 * 16-byte token as the value, with no option to choose it, so the value could not
 * be the node id without overriding its private `_random`; it reports "held by
 * another node" and "Redis unreachable" as the same `LockError` (the cause only
 * goes to a `clientError` event); it retries by default (`retryCount` 10, and a
 * per-call `retryCount: 0` is ignored because it reads `options.retryCount ||
 * default`); and it judges expiry with `Date.now()`, where a lease must use the
 * monotonic clock. Against one Redis its algorithm is exactly these scripts.
 */

/**
 * Acquire. ARGV[2] = TTL in ms. Takes a free key (SET PX), or refreshes it when
 * this node already holds it: a node that lost a lease on its own deadline, while
 * Redis still shows it as owner, can take the document back at once (like
 * `LocalOwnership`) instead of waiting out the TTL. Returns 1 when held, 0 when
 * another node holds it.
 */
export const ACQUIRE_SCRIPT = `
local holder = redis.call("GET", KEYS[1])
if holder and holder ~= ARGV[1] then
  return 0
end
redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
return 1
`;

/**
 * Renew. ARGV[2] = TTL in ms. Compare-and-PEXPIRE: extends the key only while it
 * still holds this node's id. Returns 1 when extended, 0 when the key is gone or
 * belongs to another node (the lease is lost).
 */
export const RENEW_SCRIPT = `
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0
`;

/**
 * Release. Compare-and-DEL: deletes the key only while it still holds this node's
 * id, so a late release never frees a successor's lease. Returns 1 when deleted.
 */
export const RELEASE_SCRIPT = `
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0
`;
