/** How long each tier of {@link HistoryOptions.retention} keeps automatic versions. */
export interface RetentionOptions {
  /** Every automatic version younger than this is kept. @default 86400000 (1 day) */
  keepAllMs?: number;
  /** After `keepAllMs`, the latest automatic version of each hour is kept until this age. @default 604800000 (7 days) */
  hourlyForMs?: number;
  /**
   * After `hourlyForMs`, the latest automatic version of each day (UTC) is kept until
   * this age; older automatic versions are dropped. 0 = never drop one for its age
   * (thin to daily and keep those forever). @default 2592000000 (30 days)
   */
  dailyForMs?: number;
}

/**
 * Document history: durable versions of each document, read, compared and
 * restored through the management API, the server-side API (`host.history`) and
 * the clients' history endpoint. Named versions, the version before a restore and
 * the version a restore made are kept until the document is deleted; automatic
 * ones follow `retention`. `history: false` turns the whole feature off.
 */
export interface HistoryOptions {
  /** Take automatic versions (named versions and restores work either way). @default true */
  auto?: boolean;
  /** An automatic version is taken once a document has had no edit for this long. @default 120000 (2 min) */
  quietMs?: number;
  /** At most one automatic version per document per this long. @default 600000 (10 min) */
  minIntervalMs?: number;
  /**
   * A document edited without a quiet pause gets an automatic version anyway once its
   * oldest unversioned edit is this old. @default 3600000 (1 h)
   */
  maxIntervalMs?: number;
  /** Which automatic versions are kept. */
  retention?: RetentionOptions;
  /** Longest name of a named version, in characters. @default 200 */
  maxNameLength?: number;
}

/** History options with every default filled in. */
export interface ResolvedHistoryOptions {
  readonly auto: boolean;
  readonly quietMs: number;
  readonly minIntervalMs: number;
  readonly maxIntervalMs: number;
  readonly retention: Required<RetentionOptions>;
  readonly maxNameLength: number;
}

export const RETENTION_DEFAULTS = Object.freeze({
  keepAllMs: 86_400_000,
  hourlyForMs: 604_800_000,
  dailyForMs: 2_592_000_000,
} satisfies Required<RetentionOptions>);

export const HISTORY_DEFAULTS: ResolvedHistoryOptions = Object.freeze({
  auto: true,
  quietMs: 120_000,
  minIntervalMs: 600_000,
  maxIntervalMs: 3_600_000,
  retention: RETENTION_DEFAULTS,
  maxNameLength: 200,
});

/** `options` with its defaults; undefined when history is off (`false`). */
export function resolveHistoryOptions(
  options: HistoryOptions | boolean | undefined,
): ResolvedHistoryOptions | undefined {
  if (options === false) return undefined;
  if (options === true || options === undefined) return HISTORY_DEFAULTS;
  return {
    auto: options.auto ?? HISTORY_DEFAULTS.auto,
    quietMs: options.quietMs ?? HISTORY_DEFAULTS.quietMs,
    minIntervalMs: options.minIntervalMs ?? HISTORY_DEFAULTS.minIntervalMs,
    maxIntervalMs: options.maxIntervalMs ?? HISTORY_DEFAULTS.maxIntervalMs,
    retention: { ...RETENTION_DEFAULTS, ...options.retention },
    maxNameLength: options.maxNameLength ?? HISTORY_DEFAULTS.maxNameLength,
  };
}
