/** Token numbers of one sender, as a growable bitmap. */
export class TokenSet {
  private bits = new Uint8Array(64);
  size = 0;

  add(n: number): boolean {
    const byte = n >> 3;
    if (byte >= this.bits.length) {
      const grown = new Uint8Array(Math.max(byte + 1, this.bits.length * 2));
      grown.set(this.bits);
      this.bits = grown;
    }
    const mask = 1 << (n & 7);
    if (this.bits[byte]! & mask) return false;
    this.bits[byte]! |= mask;
    this.size++;
    return true;
  }

  has(n: number): boolean {
    return ((this.bits[n >> 3] ?? 0) & (1 << (n & 7))) !== 0;
  }
}
