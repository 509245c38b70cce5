/** Redis Cluster's slot count: a key's slot is CRC16(key or its hash tag) mod 16384. */
export const HASH_SLOTS = 16_384;

/** CRC16/XMODEM (polynomial 0x1021, initial 0), the checksum Redis Cluster hashes with. */
function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++)
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/**
 * The hash slot of a key or sharded channel, as `CLUSTER KEYSLOT` computes it: only
 * the part between the first `{` and the first `}` after it counts, if that part
 * is not empty (the hash tag). Used to find which master serves a channel.
 */
export function hashSlot(key: string): number {
  const bytes = Buffer.from(key);
  const open = bytes.indexOf(0x7b); // "{"
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1); // "}"
    if (close > open + 1) return crc16(bytes.subarray(open + 1, close)) % HASH_SLOTS;
  }
  return crc16(bytes) % HASH_SLOTS;
}
