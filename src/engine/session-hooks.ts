import type { ChangeOrigin, HookEmitter, UnloadReason } from "../hooks.js";
import { decodeAwarenessUpdate } from "./awareness.js";
import type { Captured } from "./batch.js";
import { SERVER_PEER_PREFIX, type Origin } from "./origin.js";
import type { DisconnectReason } from "./peer.js";

/**
 * What one session tells its node's hooks: `loaded` once it is open, `change` for
 * each durable change, `awareness` for what it fans out, and `unloaded` once it
 * has closed — only if `loaded` was told, so every `unloaded` follows a `loaded`.
 * Payloads are built only for events that have handlers.
 */
export class SessionHooks {
  private loadedTold = false;

  constructor(
    private readonly hooks: HookEmitter,
    private readonly docId: string,
  ) {}

  loaded(epoch: number, seq: number): void {
    this.loadedTold = true;
    this.hooks.emit("loaded", { docId: this.docId, epoch, seq });
  }

  unloaded(epoch: number, reason: DisconnectReason | "unloaded"): void {
    if (!this.loadedTold) return;
    this.hooks.emit("unloaded", { docId: this.docId, epoch, reason: unloadReason(reason) });
  }

  /** Each change of a durable op (`seq`), with its own origin, in the order they were applied. */
  changed(seq: number, captured: readonly Captured[]): void {
    if (!this.hooks.has("change")) return;
    for (const { update, origin } of captured) {
      this.hooks.emit("change", { docId: this.docId, seq, update, origin: this.originOf(origin) });
    }
  }

  /** An awareness update being fanned out; `added`: the client ids in it whose state is new. */
  awareness(update: Uint8Array, added: readonly number[]): void {
    if (!this.hooks.has("awareness")) return;
    const updated: number[] = [];
    const removed: number[] = [];
    for (const { clientId, json } of decodeAwarenessUpdate(update)) {
      if (json === "null") removed.push(clientId);
      else if (!added.includes(clientId)) updated.push(clientId);
    }
    this.hooks.emit("awareness", { docId: this.docId, update, added, updated, removed });
  }

  /**
   * The connection or server document a change came from, named as its own node
   * names it: a client of another node reaches the owner as `<nodeId>/<peerId>`.
   */
  private originOf(origin: Origin): ChangeOrigin {
    if (origin.kind !== "peer") return { kind: "server", peerId: "", nodeId: this.hooks.nodeId };
    let nodeId = this.hooks.nodeId;
    let peerId = origin.peerId;
    // The relay's node id is the prefix: peer ids may hold a "/" themselves (Hocuspocus documents').
    const slash = origin.remote ? peerId.indexOf("/") : -1;
    if (slash > 0) {
      nodeId = peerId.slice(0, slash);
      peerId = peerId.slice(slash + 1);
    }
    return { kind: peerId.startsWith(SERVER_PEER_PREFIX) ? "server" : "client", peerId, nodeId };
  }
}

/** The session's own word for an idle unload is "unloaded"; in an `unloaded` event, "idle" says why. */
function unloadReason(reason: DisconnectReason | "unloaded"): UnloadReason {
  return reason === "unloaded" ? "idle" : reason;
}
