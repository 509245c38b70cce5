import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** Options of {@link OpStreamMetrics}. */
export interface OpStreamMetricsOptions {
  /** Also collect Node.js process metrics (CPU, memory, event loop lag, GC). @default false */
  defaultMetrics?: boolean;
}

/**
 * The host's Prometheus metrics, on a registry of its own (so several hosts in one
 * process, as in specs, do not collide). Served at `/metrics`; listed with alert
 * hints in OPERATIONS.md. `useMetrics(metrics)` plugs in an instance of your own:
 * serve it together with your application's metrics with prom-client's
 * `Registry.merge([metrics.registry, appRegistry])`, or subclass it to forward
 * elsewhere (every member is a prom-client metric).
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
    help: "Updates refused by a validator, by Yjs or by the pending budget, or sent by a read-only connection.",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  readonly appendBatchSize = new Histogram({
    name: "opstream_append_batch_size",
    help: "Updates per durable append (merged into one op).",
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
  readonly versionsSaved = new Counter({
    name: "opstream_versions_saved_total",
    help: "Document versions written, by kind (auto, named, before-restore, restore).",
    labelNames: ["kind"] as const,
    registers: [this.registry],
  });
  readonly versionsDropped = new Counter({
    name: "opstream_versions_dropped_total",
    help: "Automatic versions dropped by the retention policy.",
    registers: [this.registry],
  });
  readonly restores = new Counter({
    name: "opstream_restores_total",
    help: "Documents restored to an earlier version.",
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
    labelNames: ["dialect", "reason"] as const,
    registers: [this.registry],
  });
  readonly closes = new Counter({
    name: "opstream_connection_closes_total",
    help: "Connections closed by the server, by close code.",
    labelNames: ["dialect", "code"] as const,
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
  readonly backplaneResubscribes = new Counter({
    name: "opstream_backplane_resubscribes_total",
    help: "Times the backplane's subscriber came back after a disconnect with every channel subscribed again (messages published meanwhile were lost; relays resync).",
    registers: [this.registry],
  });

  readonly leasesAcquired = new Counter({
    name: "opstream_leases_acquired_total",
    help: "Ownership leases acquired by this node.",
    registers: [this.registry],
  });
  readonly leasesLost = new Counter({
    name: "opstream_leases_lost_total",
    help: "Ownership leases lost: another node holds the key or claimed a newer epoch.",
    registers: [this.registry],
  });
  readonly leasesSuspended = new Gauge({
    name: "opstream_leases_suspended",
    help: "Leases Redis has not confirmed within their renewal deadline (Redis unreachable or slow): their sessions serve on, fenced by storage.",
    registers: [this.registry],
  });
  readonly leasesRetaken = new Counter({
    name: "opstream_leases_retaken_total",
    help: "Leases whose key was gone (expired during a Redis outage, Redis restarted empty) and that this node took again with the same epoch after the progress-mark check.",
    registers: [this.registry],
  });
  readonly leasesBroken = new Counter({
    name: "opstream_leases_broken_total",
    help: "Leases of nodes found gone from the backplane that this node freed (compare-and-delete) to take over at once.",
    registers: [this.registry],
  });
  readonly relayMoves = new Counter({
    name: "opstream_relay_moves_total",
    help: "Owner changes a relay followed keeping its clients connected, by outcome: took-over (this node became the owner), followed (another node did), failed (its clients were closed to rejoin).",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });
  readonly handoffPrepares = new Counter({
    name: "opstream_handoff_prepares_total",
    help: "Documents this node loaded ahead of a graceful handoff because their draining owner named it successor, by outcome: used (it took the document over with them), unused (dropped unused after 5 s), failed (the load failed or this node was draining too).",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });
  readonly leaseRenewFailures = new Counter({
    name: "opstream_lease_renew_failures_total",
    help: "Lease renewals that failed or were late.",
    registers: [this.registry],
  });
  readonly storageRollbacks = new Counter({
    name: "opstream_storage_rollbacks_total",
    help: "Documents whose storage an owner found behind their progress mark in Redis (restored from an older backup).",
    registers: [this.registry],
  });
  readonly fencedWrites = new Counter({
    name: "opstream_fenced_writes_total",
    help: "Store writes rejected because a newer epoch had been claimed.",
    registers: [this.registry],
  });
  readonly gaps = new Counter({
    name: "opstream_relay_gaps_total",
    help: "Gaps or epoch changes a relay noticed in a document's (epoch, seq) stream.",
    registers: [this.registry],
  });
  readonly resyncs = new Counter({
    name: "opstream_relay_resyncs_total",
    help: "Resyncs a relay requested from a document's owner.",
    registers: [this.registry],
  });
  readonly rpcTimeouts = new Counter({
    name: "opstream_rpc_timeouts_total",
    help: "Backplane requests that got no answer within their timeout.",
    registers: [this.registry],
  });
  readonly remotePeersExpired = new Counter({
    name: "opstream_remote_peers_expired_total",
    help: "Clients of other nodes an owner forgot because no renewal from their relay named them for 3 periods.",
    registers: [this.registry],
  });
  readonly rpcRetries = new Counter({
    name: "opstream_rpc_retries_total",
    help: "Proxied requests retried after re-resolving a document's owner.",
    registers: [this.registry],
  });
  readonly consumerDelivered = new Counter({
    name: "opstream_consumer_records_total",
    help: "Op-log records a side-effect consumer handled successfully.",
    labelNames: ["consumer"] as const,
    registers: [this.registry],
  });
  readonly consumerFailures = new Counter({
    name: "opstream_consumer_failures_total",
    help: "Failed consumer attempts (stage: handler or dead-letter); each is retried with backoff.",
    labelNames: ["consumer", "stage"] as const,
    registers: [this.registry],
  });
  readonly consumerDeadLettered = new Counter({
    name: "opstream_consumer_dead_lettered_total",
    help: "Records skipped after maxAttempts, once their dead-letter sink succeeded.",
    labelNames: ["consumer"] as const,
    registers: [this.registry],
  });

  readonly applySeconds = new Histogram({
    name: "opstream_apply_seconds",
    help: "From an update's arrival at its document's session to its acknowledgement (durable and fanned out).",
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly fanOutPeers = new Histogram({
    name: "opstream_fanout_peers",
    help: "Local peers each durable op was sent to.",
    buckets: [0, 1, 2, 5, 10, 25, 50, 100, 250],
    registers: [this.registry],
  });
  readonly backplanePublishSeconds = new Histogram({
    name: "opstream_backplane_publish_seconds",
    help: "Duration of backplane publishes (document channels and requests).",
    buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1],
    registers: [this.registry],
  });
  readonly rpcSeconds = new Histogram({
    name: "opstream_rpc_seconds",
    help: "Round trip of requests to other nodes, by request type (failed ones included).",
    labelNames: ["type"] as const,
    // 2.5 and 5 s sit past the default-ish request timeouts, so a request that waited
    // longer than its timeout (it must not) shows up in a bucket of its own.
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2, 2.5, 5],
    registers: [this.registry],
  });
  readonly rpcInFlight = new Gauge({
    name: "opstream_rpc_in_flight",
    help: "Requests to other nodes sent and not yet settled (answered, failed or timed out).",
    registers: [this.registry],
  });
  readonly consumerLag = new Gauge({
    name: "opstream_consumer_lag",
    help: "Ops stored but not yet committed by a consumer, summed over this node's documents.",
    labelNames: ["consumer"] as const,
    registers: [this.registry],
  });

  // Transport admission and limits: refused upgrades, throttled frames, refused awareness.
  readonly upgradesRefused = new Counter({
    name: "opstream_upgrades_refused_total",
    help: "WebSocket upgrades refused before any document work (reason: unauthenticated, forbidden, origin, node-limit, ip-limit, principal-limit, draining, not-found, no-document, name-too-long, error); each is logged at warn, at most one line per reason per 10 s.",
    labelNames: ["dialect", "reason"] as const,
    registers: [this.registry],
  });
  readonly joinsRefused = new Counter({
    name: "opstream_joins_refused_total",
    help: "Documents refused to a connection (reason: unauthenticated, forbidden, invalid-name for a Hocuspocus Auth; document-not-found for a reader, socket-limit, principal-limit, node-limit after authorization); each is logged at warn, at most one line per reason per 10 s.",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  readonly messagesThrottled = new Counter({
    name: "opstream_messages_throttled_total",
    help: "Client frames delayed because their connection sent faster than transport.messageRate.",
    labelNames: ["dialect"] as const,
    registers: [this.registry],
  });
  readonly awarenessRefused = new Counter({
    name: "opstream_awareness_refused_total",
    help: "Awareness entries dropped by the transport or the document (reason: too-large, invalid-json, foreign-client).",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  readonly httpErrors = new Counter({
    name: "opstream_http_errors_total",
    help: "HTTP requests answered with an error or refused, by status and error code (/healthz?doc without the management credential: status 200, OPS_ERR_FORBIDDEN).",
    labelNames: ["status", "code"] as const,
    registers: [this.registry],
  });
  readonly hookErrors = new Counter({
    name: "opstream_hook_errors_total",
    help: "Lifecycle hook handlers (builder.on) that threw or rejected, by event; each was logged at warn and nothing else was affected.",
    labelNames: ["event"] as const,
    registers: [this.registry],
  });

  constructor(options: OpStreamMetricsOptions = {}) {
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }
}
