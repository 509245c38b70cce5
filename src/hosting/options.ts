import type { AwarenessOptions } from "../engine/awareness.js";
import { AWARENESS_DEFAULTS } from "../engine/awareness.js";
import { DEFAULT_MAX_PENDING_BYTES } from "../engine/pending-budget.js";
import {
  resolveHistoryOptions,
  type HistoryOptions,
  type ResolvedHistoryOptions,
} from "../engine/history/history-options.js";
import { ErrorCodes, OpStreamError } from "../errors.js";
import { resolveLogLevel, type LogLevel } from "../logging/logger.js";
import { checkAdmissionOptions } from "../transport/limits.js";
import {
  TRANSPORT_DEFAULTS,
  type ResolvedTransportOptions,
  type TransportOptions,
} from "../transport/transport-options.js";

/** Options of document sessions. */
export interface SessionOptions {
  /** Unload a document this long after its last client left (a final snapshot is written first). @default 300000 (5 min) */
  idleTimeoutMs?: number;
  /** Most queued updates merged into one op, appended and broadcast as one batch. @default 256 */
  maxBatch?: number;
  /**
   * How often an owner publishes its latest (epoch, seq) on the document's channel
   * while ops are appended (every 10th interval when quiet), so relays notice a lost
   * op within about this long. Must be above 0. @default 1000
   */
  heartbeatIntervalMs?: number;
  /**
   * How often a relay tells a document's owner which of its clients are still
   * attached. The owner forgets another node's client that no renewal named for 3
   * periods (its node crashed, or lost its link while the client left), so such a
   * document still unloads when idle. Use one value on every node. Must be above 0.
   * @default 10000
   */
  remotePeerRenewalMs?: number;
  /**
   * Most documents this node holds at once: sessions it owns, relays to other
   * nodes' sessions, and documents opening. When full, an idle session (no
   * clients, waiting for `idleTimeoutMs`) is unloaded to make room; if none is
   * idle, a join that would open another document fails with LIMIT_REACHED
   * (close 1013, retryable: room frees up as clients leave, and another node may
   * have it). Joining a document already open always works. 0 = no limit.
   * @default 10000
   */
  maxDocuments?: number;
  /**
   * Most bytes of updates a document holds back because their dependencies never
   * arrived (Yjs's pending store: in memory, in no op). The update that
   * passes it is refused, its sender closed with 4009 PENDING_BUDGET_EXCEEDED, and
   * the document's pending updates dropped (their senders still hold them and
   * resend them when they sync). 0 = no pending updates at all; there is no
   * "unlimited". @default 4194304 (4 MiB)
   */
  maxPendingBytes?: number;
}

/** Options of `services.addOpStream(options)`. */
export interface OpStreamOptions {
  /** This node's id in a cluster. @default a random UUID */
  nodeId?: string;
  sessions?: SessionOptions;
  transport?: TransportOptions;
  awareness?: AwarenessOptions;
  /**
   * Document history: automatic and named versions, diffs and restore (see
   * HistoryOptions). `false` turns it off: no versions are written and history
   * requests answer HISTORY_DISABLED. @default true (on, with HistoryOptions' defaults)
   */
  history?: HistoryOptions | boolean;
  /** Collect Node.js process metrics (CPU, memory, event loop) on `/metrics`. @default true */
  processMetrics?: boolean;
  /**
   * Level of the default logger: `fatal`, `error`, `warn`, `info`, `debug`,
   * `trace` or `silent`. A logger given to `useLogger()` keeps its own level.
   * @default process.env.OPSTREAM_LOG_LEVEL, else "info"
   */
  logLevel?: LogLevel;
}

export const SESSION_DEFAULTS = Object.freeze({
  idleTimeoutMs: 300_000,
  maxBatch: 256,
  heartbeatIntervalMs: 1000,
  remotePeerRenewalMs: 10_000,
  maxDocuments: 10_000,
  maxPendingBytes: DEFAULT_MAX_PENDING_BYTES,
} satisfies Required<SessionOptions>);

/** Options with every default filled in. */
export interface ResolvedOptions {
  readonly nodeId: string | undefined;
  readonly sessions: Required<SessionOptions>;
  readonly transport: ResolvedTransportOptions;
  readonly awareness: Required<AwarenessOptions>;
  /** undefined when history is off. */
  readonly history: ResolvedHistoryOptions | undefined;
  readonly processMetrics: boolean;
  /** As given (checked); the default logger falls back to `OPSTREAM_LOG_LEVEL`, then "info". */
  readonly logLevel: LogLevel | undefined;
}

function nonNegative(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new OpStreamError(
      ErrorCodes.INVALID_OPTION,
      `Option ${name} must be a non-negative number; got ${value}.`,
      {
        option: name,
        value,
      },
    );
  }
  return value;
}

export function resolveOptions(options: OpStreamOptions): ResolvedOptions {
  const resolved: ResolvedOptions = {
    nodeId: options.nodeId,
    sessions: { ...SESSION_DEFAULTS, ...options.sessions },
    transport: { ...TRANSPORT_DEFAULTS, ...options.transport },
    awareness: { ...AWARENESS_DEFAULTS, ...options.awareness },
    history: resolveHistoryOptions(options.history),
    processMetrics: options.processMetrics ?? true,
    // Only a given level is checked here: OPSTREAM_LOG_LEVEL concerns the default
    // logger alone, and is checked when that logger is built.
    logLevel: options.logLevel === undefined ? undefined : resolveLogLevel(options.logLevel),
  };
  for (const [section, values] of Object.entries({
    sessions: resolved.sessions,
    transport: resolved.transport,
    awareness: resolved.awareness,
    history: resolved.history ?? {},
    "history.retention": resolved.history?.retention ?? {},
  })) {
    for (const [key, value] of Object.entries(values)) {
      if (typeof value === "number") nonNegative(`${section}.${key}`, value);
    }
  }
  if (resolved.sessions.heartbeatIntervalMs <= 0) {
    throw new OpStreamError(
      ErrorCodes.INVALID_OPTION,
      "sessions.heartbeatIntervalMs must be above 0: it is the period of each owner's heartbeat timer.",
      { option: "sessions.heartbeatIntervalMs", value: resolved.sessions.heartbeatIntervalMs },
    );
  }
  if (resolved.sessions.remotePeerRenewalMs <= 0) {
    throw new OpStreamError(
      ErrorCodes.INVALID_OPTION,
      "sessions.remotePeerRenewalMs must be above 0: it is the period of each relay's renewal timer.",
      { option: "sessions.remotePeerRenewalMs", value: resolved.sessions.remotePeerRenewalMs },
    );
  }
  checkAdmissionOptions(resolved.transport);
  if (resolved.transport.keepAliveIntervalMs <= 0 || resolved.transport.keepAliveIntervalMs >= 30_000) {
    throw new OpStreamError(
      ErrorCodes.INVALID_OPTION,
      "transport.keepAliveIntervalMs must be between 0 and 30000 ms exclusive: stock clients drop a socket after 30 s of silence.",
      { option: "transport.keepAliveIntervalMs", value: resolved.transport.keepAliveIntervalMs },
    );
  }
  return resolved;
}
