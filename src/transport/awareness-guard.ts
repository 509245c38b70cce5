import { decodeAwarenessUpdate, encodeAwarenessUpdate } from "../engine/awareness.js";

/** Why an awareness entry from a client was dropped (`opstream_awareness_refused_total{reason}`). */
export type AwarenessRefusal = "too-large" | "invalid-json" | "foreign-client";

type AwarenessRecord = ReturnType<typeof decodeAwarenessUpdate>[number];

/** One fan-out hands the same bytes to every peer: decode them once. */
const decodedUpdates = new WeakMap<Uint8Array, AwarenessRecord[]>();

function decodeOnce(update: Uint8Array): AwarenessRecord[] {
  let records = decodedUpdates.get(update);
  if (!records) {
    records = decodeAwarenessUpdate(update);
    decodedUpdates.set(update, records);
  }
  return records;
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false; // refused and counted by the caller
  }
}

/**
 * What one connection (one Hocuspocus document key) may do with awareness: set
 * states of at most `maxStateBytes` of valid JSON, for its own client id only.
 *
 * Its own id is the first one it sets a state for that the server had not sent
 * it: an id the server sent is another connection's (the document's registry
 * knows it), so claiming it, whatever the clock, is spoofing. Stock providers pass
 * on every awareness change they receive (y-websocket and Hocuspocus alike send
 * their Awareness `update` events, remote ones included), so an entry for another
 * client that carries nothing newer than what the server sent — or removes a
 * state — is such an echo: dropped, not counted. Anything else for another id is
 * spoofing: dropped and counted. Entries are dropped rather than the socket
 * closed, so a stock client caught by a race (a state that changed while its echo
 * was on the way) keeps editing.
 *
 * A client that reconnects before the server noticed its old connection is gone
 * is sent its own stale state: its renewals are refused (and counted) until that
 * state is removed — when the old connection is detected dead, or after the
 * registry's timeout at the latest — and the removal frees the id: the stock
 * client answers it by re-announcing its state, which then binds.
 */
/** Who hears of a dropped entry: the connection, which counts and logs it. */
export interface AwarenessRefusalListener {
  awarenessRefused(reason: AwarenessRefusal, clientId: number): void;
}

export class AwarenessGuard {
  private ownId: number | undefined;
  /** Client ids the server sent this connection, with the highest clock sent. */
  private readonly sentClocks = new Map<number, number>();

  constructor(
    private readonly maxStateBytes: number,
    // An object rather than a callback: a closure per connection would also keep
    // the scope it was made in.
    private readonly listener: AwarenessRefusalListener,
  ) {}

  /** Records an awareness update the server sends this connection. */
  sent(update: Uint8Array): void {
    for (const { clientId, clock, json } of decodeOnce(update)) {
      if (clientId === this.ownId) continue;
      if (json === "null") this.sentClocks.delete(clientId);
      else this.sentClocks.set(clientId, Math.max(clock, this.sentClocks.get(clientId) ?? 0));
    }
  }

  /**
   * The part of a client's awareness update it may make: the update itself when
   * all of it, null when none. Throws on a malformed update, like the registry.
   */
  filter(update: Uint8Array): Uint8Array | null {
    const records = decodeAwarenessUpdate(update);
    const kept = records.filter((record) => this.allows(record));
    if (kept.length === records.length) return records.length > 0 ? update : null;
    return kept.length > 0 ? encodeAwarenessUpdate(kept) : null;
  }

  private allows({ clientId, clock, json }: AwarenessRecord): boolean {
    const removal = json === "null";
    if (!removal && Buffer.byteLength(json) > this.maxStateBytes) return this.refuse("too-large", clientId);
    if (!removal && !isJson(json)) return this.refuse("invalid-json", clientId);
    if (clientId === this.ownId) return true;
    const sentClock = this.sentClocks.get(clientId);
    if (removal || (sentClock !== undefined && clock <= sentClock)) return false; // an echo
    if (this.ownId !== undefined || sentClock !== undefined) return this.refuse("foreign-client", clientId);
    this.ownId = clientId;
    return true;
  }

  private refuse(reason: AwarenessRefusal, clientId: number): false {
    this.listener.awarenessRefused(reason, clientId);
    return false;
  }
}
