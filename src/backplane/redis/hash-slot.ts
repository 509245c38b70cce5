import calculateSlot from "cluster-key-slot";

/**
 * The hash slot of a key or sharded channel, as `CLUSTER KEYSLOT` computes it
 * (CRC16 of the key, or of its `{hash tag}`, mod 16384): cluster-key-slot, the
 * calculator ioredis itself routes with. Used to find which master serves a channel.
 */
export function hashSlot(key: string): number {
  return calculateSlot(key);
}
