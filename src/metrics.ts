import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/**
 * The host's Prometheus metrics, on a registry of its own (so several hosts in one
 * process, as in specs, do not collide). Served at `/metrics`; listed in OPERATIONS.md.
 */
export class OpStreamMetrics {
  readonly registry = new Registry();

  readonly connections = new Gauge({
    name: "opstream_connections",
    help: "Open client connections.",
    labelNames: ["dialect"] as const,
    registers: [this.registry],
  });
  readonly sessions = new Gauge({
    name: "opstream_sessions",
    help: "Document sessions loaded on this node.",
    registers: [this.registry],
  });
  readonly updatesApplied = new Counter({
    name: "opstream_updates_applied_total",
    help: "Updates that changed a document and were stored.",
    registers: [this.registry],
  });
  readonly updatesNoop = new Counter({
    name: "opstream_updates_noop_total",
    help: "Updates that changed nothing (neither stored nor broadcast).",
    registers: [this.registry],
  });
  readonly updatesRejected = new Counter({
    name: "opstream_updates_rejected_total",
    help: "Updates refused by a validator or by Yjs, or sent by a read-only connection.",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  readonly appendBatchSize = new Histogram({
    name: "opstream_append_batch_size",
    help: "Ops per durable append.",
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [this.registry],
  });
  readonly appendSeconds = new Histogram({
    name: "opstream_append_seconds",
    help: "Duration of durable appends.",
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly snapshots = new Counter({
    name: "opstream_snapshots_total",
    help: "Snapshots written (with the log trimmed up to them).",
    registers: [this.registry],
  });
  readonly storageErrors = new Counter({
    name: "opstream_storage_errors_total",
    help: "Failed store operations.",
    labelNames: ["operation", "code"] as const,
    registers: [this.registry],
  });
  readonly badFrames = new Counter({
    name: "opstream_bad_frames_total",
    help: "Frames refused by a transport dialect, by reason; each closed its socket.",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  readonly closes = new Counter({
    name: "opstream_connection_closes_total",
    help: "Connections closed by the server, by close code.",
    labelNames: ["code"] as const,
    registers: [this.registry],
  });
  readonly awarenessDropped = new Counter({
    name: "opstream_awareness_dropped_total",
    help: "Awareness states dropped because a document reached its state cap.",
    registers: [this.registry],
  });
  readonly backplaneErrors = new Counter({
    name: "opstream_backplane_errors_total",
    help: "Failed backplane publishes.",
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }
}
