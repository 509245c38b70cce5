import type { Logger } from "../logging/logger.js";
import type { OpStreamMetrics } from "../metrics.js";
import { AwarenessRegistry } from "./awareness.js";
import { everyPeriod } from "./shared-ticker.js";
import type { FanOut } from "./fan-out.js";
import type { SessionServices } from "./session-services.js";

/**
 * The presence (awareness) of one session's document: the registry, what changes
 * fanned out through the session's peers, and a sweep of expired states.
 */
export class SessionPresence {
  private readonly registry: AwarenessRegistry;
  private readonly stopSweeping: () => void;
  private readonly metrics: OpStreamMetrics;
  private readonly logger: Logger;

  constructor(
    private readonly docId: string,
    private readonly peers: FanOut,
    deps: Pick<SessionServices, "metrics" | "logger" | "awareness" | "awarenessSweepMs">,
  ) {
    this.metrics = deps.metrics;
    this.logger = deps.logger;
    this.registry = new AwarenessRegistry(deps.awareness);
    // One timer for every session's sweep (see shared-ticker.ts).
    this.stopSweeping = everyPeriod(
      deps.awarenessSweepMs ?? 5000,
      () => this.sweep(),
      (error) => this.logger.error({ err: error, docId }, "awareness sweep failed"),
    );
  }

  /**
   * Applies an awareness update from `peerId` and fans out what changed; entries for
   * a client id another peer owns are refused and counted. Throws on malformed input.
   */
  apply(peerId: string, update: Uint8Array): void {
    const { forward, dropped, foreign, added } = this.registry.apply(peerId, update, Date.now());
    if (dropped > 0) this.metrics.awarenessDropped.inc(dropped);
    if (foreign.length > 0) {
      this.metrics.awarenessRefused.inc({ reason: "foreign-client" }, foreign.length);
      this.logger.debug(
        { docId: this.docId, peerId, clientIds: foreign },
        "awareness entries for another peer's client refused",
      );
    }
    if (forward) this.peers.awareness(forward, peerId, added);
  }

  /** Removes the states of a peer that left, and fans out their removal. */
  removePeer(peerId: string): void {
    const removal = this.registry.removePeer(peerId);
    if (removal) this.peers.awareness(removal, peerId);
  }

  /** Every current awareness state as one update, or null. */
  encodeAll(): Uint8Array | null {
    return this.registry.encodeAll();
  }

  stop(): void {
    this.stopSweeping();
  }

  private sweep(): void {
    if (this.registry.size === 0) return; // nobody present: nothing can expire
    const removal = this.registry.expire(Date.now());
    if (removal) this.peers.awareness(removal, undefined);
  }
}
