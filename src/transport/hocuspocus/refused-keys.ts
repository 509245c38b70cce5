/**
 * The routing keys a Hocuspocus socket was refused (denied) or closed (deleted),
 * whose frames are dropped until a new Auth. Each key is attacker input, so the
 * set is bounded by count and by bytes (UTF-8, as on the wire); past either
 * bound the oldest keys are forgotten. A forgotten key is harmless: its frames
 * then wait for an Auth like a new key's, against the socket's pending caps.
 */
export class RefusedKeys {
  /** Each key with its size in bytes, oldest first (a Map keeps insertion order). */
  private readonly keys = new Map<string, number>();
  private totalBytes = 0;

  constructor(
    private readonly maxKeys: number,
    private readonly maxBytes: number,
  ) {}

  /** Keys held. */
  get size(): number {
    return this.keys.size;
  }

  /** Bytes of the keys held, at most `maxBytes`. */
  get bytes(): number {
    return this.totalBytes;
  }

  has(key: string): boolean {
    return this.keys.has(key);
  }

  /** Adds `key` as the newest, evicting the oldest past the bounds (a key over `maxBytes` alone is not kept). */
  add(key: string): void {
    this.delete(key);
    const bytes = Buffer.byteLength(key, "utf8");
    this.keys.set(key, bytes);
    this.totalBytes += bytes;
    for (const [oldest, oldestBytes] of this.keys) {
      if (this.keys.size <= this.maxKeys && this.totalBytes <= this.maxBytes) break;
      this.keys.delete(oldest);
      this.totalBytes -= oldestBytes;
    }
  }

  delete(key: string): void {
    const bytes = this.keys.get(key);
    if (bytes === undefined) return;
    this.keys.delete(key);
    this.totalBytes -= bytes;
  }

  clear(): void {
    this.keys.clear();
    this.totalBytes = 0;
  }
}
