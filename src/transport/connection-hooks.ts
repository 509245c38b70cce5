import { ForwardingPeer, type DisconnectReason, type SessionPeer } from "../engine/peer.js";
import type { ConnectEvent, DisconnectEvent, HookEmitter } from "../hooks.js";
import { ForwardingHandle, type DocumentHandle } from "../router/document-handle.js";
import type { Dialect } from "./socket-wiring.js";
import type { DocumentJoiner } from "./tenancy.js";

/**
 * `joiner` with `connect` and `disconnect` hooks: `connect` once a join has
 * attached the connection to its document (locally or through a relay), and
 * `disconnect` once, when either side lets go: its handle leaves (the socket
 * closed, the client closed the document) or the session or relay disconnects
 * the peer. Without such hooks it is `joiner` itself, at no cost per connection.
 */
export function observedJoiner(
  joiner: DocumentJoiner,
  hooks: HookEmitter | undefined,
  dialect: Dialect,
): DocumentJoiner {
  if (!hooks || !(hooks.has("connect") || hooks.has("disconnect"))) return joiner;
  return {
    join: async (docId, peer, options) => {
      // Both dialects join with create = (the grant is read-write): only writers may create.
      const access = options.create ? "read-write" : "readonly";
      const observed = new ObservedPeer(peer, hooks, dialect, access);
      const handle = await joiner.join(docId, observed, options);
      observed.connected(handle.docId);
      return new ObservedHandle(handle, observed);
    },
    broadcastStateless: (docId, payload) => joiner.broadcastStateless(docId, payload),
  };
}

/** The peer as the session (or relay) sees it: its disconnect is told to the hooks. */
class ObservedPeer extends ForwardingPeer {
  private event: Omit<ConnectEvent, "nodeId"> | undefined;
  /** Why it was let go of before its join returned, if it was. */
  private early: DisconnectEvent["reason"] | undefined;
  private gone = false;

  constructor(
    peer: SessionPeer,
    private readonly hooks: HookEmitter,
    private readonly dialect: Dialect,
    private readonly access: ConnectEvent["access"],
  ) {
    super(peer);
  }

  override disconnect(reason: DisconnectReason): void {
    super.disconnect(reason);
    this.left(reason);
  }

  /** The join returned: `connect`, and at once `disconnect` if it was let go of meanwhile. */
  connected(docId: string): void {
    this.event = { docId, peerId: this.id, dialect: this.dialect, access: this.access };
    this.hooks.emit("connect", this.event);
    if (this.early !== undefined) this.left(this.early);
  }

  /** `disconnect`, once, and only after `connect`. */
  left(reason: DisconnectEvent["reason"]): void {
    if (!this.event) {
      this.early ??= reason;
      return;
    }
    if (this.gone) return;
    this.gone = true;
    this.hooks.emit("disconnect", { ...this.event, reason });
  }
}

/** The handle as the connection sees it: leaving is told to the hooks. */
class ObservedHandle extends ForwardingHandle {
  constructor(
    handle: DocumentHandle,
    private readonly peer: ObservedPeer,
  ) {
    super(handle);
  }

  override leave(): void {
    super.leave();
    this.peer.left("closed");
  }
}
