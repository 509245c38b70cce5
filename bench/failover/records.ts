/** What the failover bench records (its JSON, bench/results/failover-<time>.json). */
import type { CpuShares } from "./cpu.js";
import type { CloseCounts, Convergence } from "./fleet.js";
import type { BenchMode } from "./options.js";
import type { SteadyRecord } from "./steady.js";

export interface RoundRecord {
  index: number;
  docId: string;
  victim: string;
  /** Seconds since the run started, at t0. */
  atS: number;
  /** t0 → first qualifying delivery on the round's document; null: none within the limit. */
  latencyMs: number | null;
  /**
   * The longest a token typed on the measured document between the signal and the
   * victim's return waited for its first delivery to a client of another surviving
   * node (null: none typed and delivered); see Round.worstWaitMs.
   */
  worstWaitMs: number | null;
  /**
   * t0 → the first 100 ms poll of `<prefix>owner:<doc>` that found no owner, and that named
   * another node (null: not seen before the delivery; Hocuspocus and baseline: not watched).
   */
  ownerGoneMs: number | null;
  ownerMovedMs: number | null;
  /** Documents the victim owned (Hocuspocus: all), and how many saw a qualifying delivery in the round. */
  affectedDocs: number;
  affectedDelivered: number;
  /** The slowest affected document's first delivery, when all had one. */
  affectedMaxMs: number | null;
  relayCloses: number;
  relayCloseCodes: Record<string, number>;
  /** Of relayCloses: clients of the victim, closed again on the node they moved to. */
  movedCloses: number;
  victimCloses: number;
  refusedByVictim: number;
  /** Connection attempts to surviving nodes that never opened. */
  refusedBySurvivors: number;
  /** t0 → the node listening again (restart) or thawed (SIGCONT). */
  downMs: number | null;
  /** Clients sent back to their restarted node. */
  movedBack: number;
  /** Healed → every pair of clients exchanging edits again; null: not within the limit. */
  settleMs: number | null;
  /** The generator's longest event-loop delay in the round: what it may have added to latencyMs. */
  loopDelayMaxMs: number;
  /** When nothing was delivered within the limit: the owner Redis named for the document then. */
  ownerAtLimit: string | null;
  /** Then: how many of the document's clients on surviving nodes were synced ("x/y"). */
  syncedAtLimit: string | null;
}

export interface ModeRecord {
  target: string;
  mode: BenchMode | "baseline";
  /** Fault rounds (none in `steady`). */
  rounds: RoundRecord[];
  /** The `steady` mode's findings. */
  steady?: SteadyRecord;
  /** Tokens first found missing at this mode's checkpoint. */
  lostFromClients: number;
  lostFromStore: number | null;
  lostSample: string[];
  convergence: Convergence;
  /** Changes of the nodes' counters over the mode (opstream). */
  metrics: Record<string, number> | null;
}

export interface GeneratorStats {
  /** Over the whole phase, in % of one core. */
  cpu: CpuShares;
  /** Event-loop delay of the generator over the whole run (checkpoints included). */
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  /** The longest event-loop delay within any round. */
  roundLoopDelayMaxMs: number;
  heapUsedMiB: number;
}

export interface TargetRecord {
  target: string;
  clients: number;
  docs: number;
  modes: ModeRecord[];
  tokensTyped: number;
  sockets: { reconnects: number; errors: number };
  closesOutsideRounds: CloseCounts;
  generator: GeneratorStats;
  /** opstream: the longest remaining TTL of any owner key once the load had settled. */
  ownerKeyPttlMaxMs?: number;
}
