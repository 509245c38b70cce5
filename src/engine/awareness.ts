import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";

/** Options of the per-document awareness registry. */
export interface AwarenessOptions {
  /** A state not renewed for this long is removed (the y-protocols client timeout). @default 30000 */
  timeoutMs?: number;
  /** Most client states kept per document; further clients' states are dropped. @default 1000 */
  maxStates?: number;
  /**
   * An update that repeats a client's current payload only renews its expiry, and
   * is forwarded at most once per this window (clients renew every 15 s, so
   * renewals still reach the others before their 30 s timeout). @default 5000
   */
  coalesceWindowMs?: number;
}

export const AWARENESS_DEFAULTS = Object.freeze({
  timeoutMs: 30_000,
  maxStates: 1000,
  coalesceWindowMs: 5000,
} satisfies Required<AwarenessOptions>);

interface Entry {
  clock: number;
  json: string;
  peerId: string;
  lastUpdated: number;
  lastForwarded: number;
}

/** One `(clientId, clock, state JSON)` triple of a y-protocols awareness update. */
interface AwarenessRecord {
  clientId: number;
  clock: number;
  json: string;
}

/** The result of applying an update: what to forward, and how many entries were refused. */
export interface AwarenessApplyResult {
  /** The entries that changed (or are due a renewal), re-encoded; null when none. */
  readonly forward: Uint8Array | null;
  /** Entries dropped because the document is at `maxStates`. */
  readonly dropped: number;
  /** Client ids of entries refused because another peer owns that client id (spoofing). */
  readonly foreign: readonly number[];
  /** Client ids in `forward` whose state is new (the others changed, were renewed or removed). */
  readonly added: readonly number[];
}

export function decodeAwarenessUpdate(update: Uint8Array): AwarenessRecord[] {
  const decoder = decoding.createDecoder(update);
  const count = decoding.readVarUint(decoder);
  const records: AwarenessRecord[] = [];
  for (let i = 0; i < count; i++) {
    const clientId = decoding.readVarUint(decoder);
    const clock = decoding.readVarUint(decoder);
    const json = decoding.readVarString(decoder);
    records.push({ clientId, clock, json });
  }
  return records;
}

export function encodeAwarenessUpdate(records: readonly AwarenessRecord[]): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, records.length);
  for (const { clientId, clock, json } of records) {
    encoding.writeVarUint(encoder, clientId);
    encoding.writeVarUint(encoder, clock);
    encoding.writeVarString(encoder, json);
  }
  return encoding.toUint8Array(encoder);
}

/**
 * Awareness (cursors, presence) of one document, in the y-protocols wire format.
 * Ephemeral: never stored. Applies the y-protocols clock rules, coalesces repeated
 * payloads, expires silent clients, and removes a peer's clients when it leaves.
 *
 * A client id belongs to the peer that first set a state for it, until that peer
 * leaves, removes the state or lets it expire. Entries for it from any other peer
 * are refused: each connection's guard already refuses ids the server sent it, but
 * only the document sees every connection (and every node's clients, which relays
 * forward under their own peer ids), so a spoofer whose copy of the victim's id
 * had not reached its connection yet is stopped here.
 */
export class AwarenessRegistry {
  private readonly options: Required<AwarenessOptions>;
  private readonly states = new Map<number, Entry>();

  constructor(options: AwarenessOptions = {}) {
    this.options = { ...AWARENESS_DEFAULTS, ...options };
  }

  get size(): number {
    return this.states.size;
  }

  /** Applies an update from `peerId`; throws on a malformed update (nothing applied). */
  apply(peerId: string, update: Uint8Array, now: number): AwarenessApplyResult {
    const records = decodeAwarenessUpdate(update);
    const forward: AwarenessRecord[] = [];
    const foreign: number[] = [];
    const added: number[] = [];
    let dropped = 0;
    for (const record of records) {
      const entry = this.states.get(record.clientId);
      const removal = record.json === "null";
      if (entry) {
        // y-protocols rule: newer clock wins; an equal clock only counts for a removal.
        if (record.clock < entry.clock || (record.clock === entry.clock && !removal)) continue;
        // Only an entry that would have taken effect is a takeover attempt: a stale
        // one changes nothing whoever sends it.
        if (entry.peerId !== peerId) {
          foreign.push(record.clientId);
          continue;
        }
        if (removal) {
          this.states.delete(record.clientId);
          forward.push(record);
          continue;
        }
        const same = record.json === entry.json;
        Object.assign(entry, { clock: record.clock, json: record.json, lastUpdated: now });
        if (same && now - entry.lastForwarded < this.options.coalesceWindowMs) continue;
        entry.lastForwarded = now;
        forward.push(record);
      } else if (removal) {
        forward.push(record);
      } else if (this.states.size >= this.options.maxStates) {
        dropped += 1;
      } else {
        this.states.set(record.clientId, { ...record, peerId, lastUpdated: now, lastForwarded: now });
        forward.push(record);
        added.push(record.clientId);
      }
    }
    const encoded = forward.length > 0 ? encodeAwarenessUpdate(forward) : null;
    return { forward: encoded, dropped, foreign, added };
  }

  /** Removes every state set through `peerId`; returns the removal update to fan out, or null. */
  removePeer(peerId: string): Uint8Array | null {
    return this.removeWhere((entry) => entry.peerId === peerId);
  }

  /** Removes states not renewed within the timeout; returns the removal update, or null. */
  expire(now: number): Uint8Array | null {
    return this.removeWhere((entry) => now - entry.lastUpdated >= this.options.timeoutMs);
  }

  /** Every current state as one update (for a joining peer or a query), or null when empty. */
  encodeAll(): Uint8Array | null {
    if (this.states.size === 0) return null;
    return encodeAwarenessUpdate(
      [...this.states].map(([clientId, { clock, json }]) => ({ clientId, clock, json })),
    );
  }

  private removeWhere(predicate: (entry: Entry) => boolean): Uint8Array | null {
    const removed: AwarenessRecord[] = [];
    for (const [clientId, entry] of this.states) {
      if (!predicate(entry)) continue;
      this.states.delete(clientId);
      // clock + 1 makes every y-protocols client accept the removal.
      removed.push({ clientId, clock: entry.clock + 1, json: "null" });
    }
    return removed.length > 0 ? encodeAwarenessUpdate(removed) : null;
  }
}
