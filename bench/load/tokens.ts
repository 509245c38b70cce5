/**
 * The latency tokens of the lean generator. A sending client inserts
 * `§<sender>:<seq>:<sentAtMs>;` at the end of its own view of the Y.Text `t` (it never
 * applies anyone else's updates, so its view holds only its own tokens). That is an
 * ordinary Yjs update; Yjs writes string content as UTF-8 inside it, so a receiving
 * client finds the token by searching the frame's bytes for the marker `§`
 * (`C2 A7`), without decoding the update or keeping a Y.Doc.
 *
 * Why a token stays one contiguous run of bytes through a server: a sender's inserts
 * all go right after its own previous one, so no item is ever split inside a token.
 * A server that merges updates (`Y.mergeUpdates`, or applying them to a Y.Doc and
 * encoding the transaction or the state) writes a string item whole or from an
 * offset that is a transaction boundary, that is a token boundary. Checked on
 * yjs 13.6 for merges of one client, of several clients, of overlapping updates,
 * a server Y.Doc's update events, `encodeStateAsUpdate` (v1 and v2) and state-vector
 * diffs.
 *
 * `seq` counts a sender's tokens from 0: receivers drop repeats by it, S2's closed
 * loop acknowledges by it, and the convergence check knows every token that was sent
 * from each sender's count.
 */

/** The Y.Text the tokens go into. */
export const TEXT = "t";

const MARKER = Buffer.from("§", "utf8");
const COLON = 0x3a;
const DOT = 0x2e;
const SEMICOLON = 0x3b;
const ZERO = 0x30;
/** More digits than any field of a real token has: a longer run is not a token. */
const MAX_DIGITS = 17;

/** The text a sender inserts: `sentAt` is wall-clock ms (`performance.timeOrigin + performance.now()`). */
export function token(sender: number, seq: number, sentAt: number): string {
  return `§${sender}:${seq}:${sentAt.toFixed(3)};`;
}

/** Receives each token found by {@link scanTokens}. */
export type TokenVisitor = (sender: number, seq: number, sentAt: number) => void;

/**
 * Calls `visit` for every well-formed token in `bytes` from index `from` on and
 * returns how many it found. A marker whose bytes happen to occur in binary data
 * (a client id, a clock) is not followed by `digits:digits:digits[.digits];` and is
 * skipped.
 */
export function scanTokens(bytes: Buffer, from: number, visit: TokenVisitor): number {
  let found = 0;
  for (let at = bytes.indexOf(MARKER, from); at !== -1; at = bytes.indexOf(MARKER, at + 1)) {
    const sender = digits(bytes, at + MARKER.length);
    if (!sender || bytes[sender.end] !== COLON) continue;
    const seq = digits(bytes, sender.end + 1);
    if (!seq || bytes[seq.end] !== COLON) continue;
    const whole = digits(bytes, seq.end + 1);
    if (!whole) continue;
    let sentAt = whole.value;
    let end = whole.end;
    if (bytes[end] === DOT) {
      const fraction = digits(bytes, end + 1);
      if (!fraction) continue;
      sentAt += fraction.value / 10 ** (fraction.end - end - 1);
      end = fraction.end;
    }
    if (bytes[end] !== SEMICOLON) continue;
    visit(sender.value, seq.value, sentAt);
    found += 1;
  }
  return found;
}

/** The decimal number written at `start` (1 to MAX_DIGITS digits) and the index after it. */
function digits(bytes: Buffer, start: number): { value: number; end: number } | undefined {
  let value = 0;
  let end = start;
  for (; end < bytes.length && end - start < MAX_DIGITS; end++) {
    const digit = (bytes[end] ?? 0) - ZERO;
    if (digit < 0 || digit > 9) break;
    value = value * 10 + digit;
  }
  return end === start ? undefined : { value, end };
}

/** Every token of `text` (a full replica's Y.Text): the seqs seen, by sender. */
export function tokensOf(text: string): Map<number, Set<number>> {
  const seen = new Map<number, Set<number>>();
  for (const match of text.matchAll(/§(\d+):(\d+):\d+(?:\.\d+)?;/g)) {
    const sender = Number(match[1]);
    let seqs = seen.get(sender);
    if (!seqs) seen.set(sender, (seqs = new Set()));
    seqs.add(Number(match[2]));
  }
  return seen;
}
