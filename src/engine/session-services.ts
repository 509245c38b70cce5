import type { IBackplane } from "../backplane/backplane.js";
import type { Lease } from "../backplane/ownership.js";
import type { HookEmitter } from "../hooks.js";
import type { Logger } from "../logging/logger.js";
import type { OpStreamMetrics } from "../metrics.js";
import type { DocumentStore } from "../storage/document-store.js";
import type { AwarenessOptions } from "./awareness.js";
import type { ConsumerRegistration } from "./consumers.js";
import type { ResolvedHistoryOptions } from "./history/history-options.js";
import type { DocumentSession } from "./document-session.js";
import type { SnapshotPolicy } from "./snapshot-policy.js";
import type { Seeder, Validator } from "./validation.js";

/** The services every session of a node shares (the router passes them on). */
export interface SessionServices {
  readonly store: DocumentStore;
  readonly backplane: IBackplane;
  readonly snapshotPolicy: SnapshotPolicy;
  readonly validators: readonly Validator[];
  readonly seeder: Seeder | undefined;
  readonly logger: Logger;
  readonly metrics: OpStreamMetrics;
  readonly awareness?: AwarenessOptions;
  /** The node's lifecycle hooks: sessions emit `loaded`, `unloaded`, `change` and `awareness`. @default none */
  readonly hooks?: HookEmitter;
  /** Side-effect consumers, run on each document's owner. @default none */
  readonly consumers?: readonly ConsumerRegistration[];
  /** Document history (versions, restore); undefined: off. @default off (the host passes its `history` option) */
  readonly history?: ResolvedHistoryOptions | undefined;
  /** Most queued updates merged into one op and appended as one batch. @default 256 */
  readonly maxBatch?: number;
  /**
   * Most bytes of updates held back for missing dependencies per document; the
   * update that passes it is refused with PENDING_BUDGET_EXCEEDED and the pending
   * updates are dropped. @default 4194304 (4 MiB)
   */
  readonly maxPendingBytes?: number;
  /** How often expired awareness states are swept. @default 5000 */
  readonly awarenessSweepMs?: number;
  /**
   * How often a session that appended ops since its last heartbeat publishes its
   * latest (epoch, seq), so relays notice a lost channel message. @default 1000
   */
  readonly heartbeatIntervalMs?: number;
}

/** What one session needs: the shared services and its own lease. */
export interface SessionDependencies extends SessionServices {
  readonly lease: Lease;
  /** Called once when the session has closed, for whatever reason. */
  readonly onClosed?: (session: DocumentSession) => void;
}
