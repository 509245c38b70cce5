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
