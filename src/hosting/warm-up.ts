/**
 * What the first client of a freshly started process would otherwise pay, paid
 * once right after the server starts listening. A trace of S4's cold sync (a new
 * process, its first client) showed these on that client's path, besides the
 * document's own load: Node compiling its IPv6 address pattern on first use (3 ms;
 * every upgrade's client-address check uses it), loading and seeding WebCrypto
 * (~5 ms; a `Y.Doc` draws its clientID from it), and the first run of Yjs's
 * encode and apply paths and of ws's SHA-1 handshake hash.
 */
import { createHash } from "node:crypto";
import { isIPv6 } from "node:net";
import * as Y from "yjs";
import { newDocument } from "../engine/session-state.js";

let warmedUp = false;

/** Runs once per process; later calls return at once. */
export function warmUp(): void {
  if (warmedUp) return;
  warmedUp = true;
  isIPv6("::1");
  createHash("sha1").update("warm-up").digest("base64");
  const doc = newDocument("warm-up");
  doc.getText("warm-up").insert(0, "warm-up");
  const replica = newDocument("warm-up");
  Y.applyUpdate(replica, Y.encodeStateAsUpdate(doc, Y.encodeStateVector(replica)));
  doc.destroy();
  replica.destroy();
}
