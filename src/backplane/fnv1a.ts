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
