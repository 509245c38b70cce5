/**
 * 32-bit FNV-1a of `text`'s UTF-16 code units: cheap, and spread well enough for
 * picking among a few nodes or lanes (not for anything adversarial).
 */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** The lane of requests about `key` among `lanes` (FNV-1a of the key); lane 0 without a key or with one lane. */
export function laneOf(key: string | undefined, lanes: number): number {
  return key === undefined || lanes === 1 ? 0 : fnv1a(key) % lanes;
}
