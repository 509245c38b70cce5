/**
 * Where an applied update came from. Every `Y.applyUpdate` in the engine is tagged
 * with one, and the session only stores and fans out updates whose origin is a
 * producer (`peer`, `seed`, `server`): what came from storage or the backplane is
 * already durable and already fanned out, so it is never stored or published again.
 */
export type Origin =
  | {
      readonly kind: "peer";
      readonly peerId: string;
      /** A client of another node: `peerId` is `<nodeId>/<its peerId there>`. @default false */
      readonly remote?: boolean;
    }
  | { readonly kind: "seed" }
  | { readonly kind: "server" }
  | { readonly kind: "storage" }
  | { readonly kind: "backplane"; readonly nodeId: string };

export const STORAGE_ORIGIN: Origin = Object.freeze({ kind: "storage" });
export const SEED_ORIGIN: Origin = Object.freeze({ kind: "seed" });
export const SERVER_ORIGIN: Origin = Object.freeze({ kind: "server" });

/** Whether updates with this origin are new content that must be stored and fanned out. */
export function isProducer(origin: Origin): boolean {
  return origin.kind === "peer" || origin.kind === "seed" || origin.kind === "server";
}

export function peerOrigin(peerId: string, remote = false): Origin {
  return { kind: "peer", peerId, remote };
}

/** How server-side documents' peer ids start (`ServerDocument.id`): their changes have a "server" origin in hooks. */
export const SERVER_PEER_PREFIX = "server:";
