import type { Redis } from "ioredis";
import { loadIoredis } from "../../drivers.js";
import type { DocumentStore } from "../../storage/document-store.js";
import { ClusterBackplane } from "../cluster-backplane.js";
import { resolveRedisBackplaneOptions, type RedisBackplaneOptions } from "./options.js";
import { RedisOwnership } from "./redis-ownership.js";

/**
 * Self-check intervals without an answered check after which the subscriber is
 * reconnected (the checks sent in that window all went unanswered).
 */
const SUBSCRIBER_CHECKS_MISSED = 3;
/** The request type of the subscriber check (answered by this node itself). */
const SELF_CHECK = "opstream.node.self-check";
/** The probe connection reconnects at least this often, so `/readyz` notices recovery quickly. */
const PROBE_MAX_RETRY_DELAY_MS = 1000;
/**
 * The publisher and subscriber reconnect at least this often (ioredis's default
 * backs off to 2 s): after an outage, edits resume within this long of Redis
 * answering again.
 */
const MAX_RETRY_DELAY_MS = 500;
const retryStrategy = (times: number): number => Math.min(times * 50, MAX_RETRY_DELAY_MS);

type Role = "publisher" | "subscriber" | "probe";

/**
 * The cluster backplane over Redis pub/sub: channel `<prefix>doc:<docId>` per
 * document, `<prefix>node:<nodeId>` per node for RPC, binary frames (PROTOCOL.md).
 * Everything but moving bytes lives in {@link ClusterBackplane}.
 *
 * Three connections: the publisher (also used for lease commands; the caller's
 * client when `redis` is given), a subscriber duplicated from it (a subscribed
 * connection can run nothing else), and a probe for `ping()` that never queues.
 *
 * Pub/sub is at-most-once: what is published while the subscriber reconnects is
 * lost. ioredis re-subscribes on reconnect by itself; this class then confirms
 * every channel with a SUBSCRIBE of its own and calls the `onResubscribed`
 * listeners, so relays resync from the owner.
 */
export class RedisBackplane extends ClusterBackplane {
  /** The publisher connection; RedisOwnership runs its lease scripts on it. */
  readonly redis: Redis;
  readonly keyPrefix: string;
  readonly ownershipLeaseTtlMs: number;
  private readonly subscriber: Redis;
  private readonly probe: Redis;
  private readonly ownsPublisher: boolean;
  private readonly pingTimeoutMs: number;
  private readonly hostMetrics: RedisBackplaneOptions["metrics"];
  private readonly channelListeners = new Map<string, (bytes: Uint8Array) => void>();
  private readonly resubscribedListeners = new Set<() => void>();
  private readonly detach: (() => void)[] = [];
  private subscriberWasDown = false;
  /** `performance.now()` when the subscriber last re-subscribed after a loss; undefined before any loss. */
  private recoveredAt: number | undefined;
  /** True from a subscriber loss until every channel is confirmed subscribed again. */
  private linkDown = false;
  /** Counts the subscriber's "ready" events; only the newest one's re-subscription notifies. */
  private subscriberReadies = 0;
  private readonly checkTimer: NodeJS.Timeout | undefined;
  /**
   * `performance.now()` when the newest answered self-check was sent (or when the
   * subscriber last became ready): the subscriber is known to have received then.
   */
  private subscriberProvenAt = performance.now();

  constructor(options: RedisBackplaneOptions = {}) {
    const resolved = resolveRedisBackplaneOptions(options);
    super({
      nodeId: resolved.nodeId,
      channelPrefix: resolved.keyPrefix,
      requestTimeoutMs: resolved.requestTimeoutMs,
      metrics: resolved.metrics,
      logger: resolved.logger,
    });
    this.keyPrefix = resolved.keyPrefix;
    this.ownershipLeaseTtlMs = resolved.ownershipLeaseTtlMs;
    this.pingTimeoutMs = resolved.pingTimeoutMs;
    this.hostMetrics = resolved.metrics;
    this.ownsPublisher = resolved.redis === undefined;
    this.redis = resolved.redis ?? new (loadIoredis().Redis)(resolved.connectionString, { retryStrategy });
    this.subscriber = this.redis.duplicate({ lazyConnect: false, retryStrategy });
    this.probe = this.redis.duplicate({
      lazyConnect: false,
      // Fail at once while disconnected instead of waiting in ioredis's offline queue.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: this.pingTimeoutMs,
      retryStrategy: (times: number) => Math.min(times * 100, PROBE_MAX_RETRY_DELAY_MS),
    });
    this.watch(this.redis, "publisher");
    this.watch(this.subscriber, "subscriber");
    this.watch(this.probe, "probe");
    this.subscriber.on("messageBuffer", (channel: Buffer, message: Buffer) =>
      this.channelListeners.get(channel.toString())?.(message),
    );
    this.subscriber.on("close", () => {
      this.subscriberWasDown = true;
      this.linkDown = true; // recovering from now until re-subscribed, and a lease TTL after
    });
    this.subscriber.on("ready", () => {
      this.subscriberProvenAt = performance.now();
      const ready = ++this.subscriberReadies;
      if (!this.subscriberWasDown) return;
      this.subscriberWasDown = false;
      void this.confirmResubscribed(ready);
    });
    this.listen();
    const interval = resolved.subscriberCheckIntervalMs;
    if (interval > 0) {
      this.registerRequestHandler(SELF_CHECK, () => Promise.resolve(new Uint8Array(0)));
      this.checkTimer = setInterval(() => this.checkSubscriber(interval), interval);
      this.checkTimer.unref();
    }
  }

  /**
   * Sends a request to this node through Redis every interval. An answer proves
   * the subscriber received when the check was sent; once no check sent in the
   * last {@link SUBSCRIBER_CHECKS_MISSED} intervals was answered while the
   * publisher is ready, the subscriber is reconnected (its resubscription makes
   * relays resync). A half-open link is otherwise invisible: no error, no close.
   *
   * The decision is taken on the tick, against the send time of the newest
   * answered check, not by counting timeouts: counting would add the wait for
   * the first check after the failure, so a link that died just after a check
   * would be noticed only after 4 intervals.
   */
  private checkSubscriber(intervalMs: number): void {
    if (this.subscriber.status !== "ready" || this.redis.status !== "ready") {
      // Reconnecting already: its "ready" restarts the clock.
      this.subscriberProvenAt = performance.now();
      return;
    }
    const now = performance.now();
    // Half an interval of slack for timer jitter: the ticks are `intervalMs` apart
    // only on average, and the silent window must not need a fourth tick.
    if (now - this.subscriberProvenAt >= (SUBSCRIBER_CHECKS_MISSED - 0.5) * intervalMs) {
      this.reconnectSubscriber(intervalMs, now - this.subscriberProvenAt);
      return;
    }
    // One check per tick, even while older ones wait: a late answer still proves the
    // link worked when its check was sent, and a tick never depends on whether the
    // previous check's timeout fired just before or just after it.
    this.sendRequest(this.nodeId, SELF_CHECK, new Uint8Array(0), {
      timeoutMs: SUBSCRIBER_CHECKS_MISSED * intervalMs,
    }).then(
      () => (this.subscriberProvenAt = Math.max(this.subscriberProvenAt, now)),
      () => undefined, // unanswered: the ticks decide, by the time since the last proof
    );
  }

  private reconnectSubscriber(intervalMs: number, silentMs: number): void {
    this.subscriberProvenAt = performance.now();
    this.logger.warn(
      { nodeId: this.nodeId, silentMs: Math.round(silentMs), intervalMs },
      "redis subscriber stopped receiving; reconnecting it",
    );
    this.subscriber.disconnect(true);
    // The request may have died on the way out instead: a publisher that does
    // not answer a PING in time is reconnected too (if it is ours to reconnect).
    if (this.ownsPublisher) {
      void withTimeout(this.redis.ping(), intervalMs).catch(() => {
        this.logger.warn({ nodeId: this.nodeId }, "redis publisher does not answer; reconnecting it");
        this.redis.disconnect(true);
      });
    }
  }

  /** A RedisOwnership for this node: same connection, key prefix and lease TTL. */
  createOwnership(store: Pick<DocumentStore, "claimEpoch">): RedisOwnership {
    return new RedisOwnership({
      redis: this.redis,
      nodeId: this.nodeId,
      store,
      keyPrefix: this.keyPrefix,
      leaseTtlMs: this.ownershipLeaseTtlMs,
      metrics: this.hostMetrics,
      logger: this.logger,
    });
  }

  /**
   * Calls `listener` each time the subscriber is back after a disconnect with every
   * channel subscribed again. Messages published while it was away are lost, so
   * relays should resync. Returns a function that removes the listener.
   */
  override onResubscribed(listener: () => void): () => void {
    this.resubscribedListeners.add(listener);
    return () => void this.resubscribedListeners.delete(listener);
  }

  /**
   * True while the publisher or the subscriber is not ready, or the subscriber
   * re-subscribed less than a lease TTL ago (see {@link IBackplane.isRecovering}).
   */
  isRecovering(): boolean {
    if (!this.isReady() || this.linkDown) return true;
    const recoveredAt = this.recoveredAt;
    return recoveredAt !== undefined && performance.now() - recoveredAt < this.ownershipLeaseTtlMs;
  }

  /** True when both the publisher and the subscriber are connected and ready. */
  isReady(): boolean {
    return this.redis.status === "ready" && this.subscriber.status === "ready";
  }

  /**
   * For `/readyz`: resolves when Redis answers a PING within `pingTimeoutMs` and
   * both connections are ready; rejects at once while they are not.
   */
  async ping(): Promise<void> {
    if (!this.isReady()) {
      throw unavailable(
        `publisher is ${this.redis.status}, subscriber is ${this.subscriber.status}`,
        undefined,
      );
    }
    try {
      // Right after start (or a reconnect) the probe may still be connecting, and it
      // never queues: give it the same budget to get ready.
      if (this.probe.status !== "ready") await readyWithin(this.probe, this.pingTimeoutMs);
      await this.probe.ping();
    } catch (error) {
      throw unavailable(`PING failed: ${error instanceof Error ? error.message : String(error)}`, error);
    }
  }

  protected publishBytes(channel: string, bytes: Uint8Array): Promise<number> {
    return this.redis.publish(channel, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }

  /** `PUBSUB NUMSUB`: a node's subscriber leaves its channel the moment its connection closes. */
  protected async countListeners(channel: string): Promise<number> {
    const reply = await this.redis.pubsub("NUMSUB", channel);
    return Number(reply[1] ?? 0);
  }

  protected async subscribeChannel(channel: string, onBytes: (bytes: Uint8Array) => void): Promise<void> {
    this.channelListeners.set(channel, onBytes);
    try {
      await this.subscriber.subscribe(channel);
    } catch (error) {
      if (this.channelListeners.get(channel) === onBytes) this.channelListeners.delete(channel);
      throw error;
    }
  }

  protected async unsubscribeChannel(channel: string): Promise<void> {
    this.channelListeners.delete(channel);
    await this.subscriber.unsubscribe(channel);
  }

  protected async closeTransport(): Promise<void> {
    clearInterval(this.checkTimer);
    this.resubscribedListeners.clear();
    this.channelListeners.clear();
    this.subscriber.disconnect();
    this.probe.disconnect();
    if (this.ownsPublisher) await this.closePublisher();
    // Last, so errors while closing are still reported; a caller-owned client stays
    // open and must not keep our listeners.
    for (const off of this.detach) off();
  }

  private async closePublisher(): Promise<void> {
    if (this.redis.status !== "ready") {
      this.redis.disconnect();
      return;
    }
    try {
      // QUIT lets publishes already sent reach Redis.
      await this.redis.quit();
    } catch (error) {
      this.logger.warn({ err: error, nodeId: this.nodeId }, "redis publisher did not quit cleanly");
      this.redis.disconnect();
    }
  }

  /**
   * Re-issues SUBSCRIBE for every channel this node listens to. ioredis has sent its
   * own re-subscription already; this one's reply proves the channels are live
   * before the listeners resync (resyncing earlier could miss what follows).
   *
   * `ready` is the "ready" event it answers. A link that flaps (e.g. reset at each
   * SUBSCRIBE) makes one call per "ready", and ioredis keeps their SUBSCRIBEs
   * queued until one connection holds, so they all succeed together: only the
   * newest notifies, or every relay would resync once per flap.
   */
  private async confirmResubscribed(ready: number): Promise<void> {
    const channels = [...this.channelListeners.keys()];
    try {
      if (channels.length > 0) await this.subscriber.subscribe(...channels);
    } catch (error) {
      // The connection dropped again; its next "ready" retries.
      this.logger.warn({ err: error, nodeId: this.nodeId }, "redis subscriber could not re-subscribe");
      return;
    }
    if (ready !== this.subscriberReadies) return;
    this.recoveredAt = performance.now();
    this.linkDown = false;
    this.hostMetrics?.backplaneResubscribes.inc();
    this.logger.info({ nodeId: this.nodeId, channels: channels.length }, "redis subscriber re-subscribed");
    for (const listener of [...this.resubscribedListeners]) {
      try {
        listener();
      } catch (error) {
        this.logger.error({ err: error, nodeId: this.nodeId }, "onResubscribed listener threw");
      }
    }
  }

  /**
   * Reports a connection's errors: the first of an outage as an error, the rest
   * (ioredis repeats one per reconnect attempt) at debug, and the recovery once.
   */
  private watch(connection: Redis, role: Role): void {
    let failures = 0;
    const onError = (error: Error): void => {
      failures += 1;
      const context = { err: error, nodeId: this.nodeId, connection: role };
      if (failures === 1) this.logger.error(context, `redis ${role} connection failed; reconnecting`);
      else this.logger.debug(context, `redis ${role} connection still failing`);
    };
    const onReady = (): void => {
      if (failures === 0) return;
      this.logger.info(
        { nodeId: this.nodeId, connection: role, failures },
        `redis ${role} connection is back`,
      );
      failures = 0;
    };
    connection.on("error", onError);
    connection.on("ready", onReady);
    this.detach.push(() => {
      connection.off("error", onError);
      connection.off("ready", onReady);
    });
  }
}

/** `promise`, or a rejection after `timeoutMs`. */
function withTimeout<T>(promise: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves when `connection` emits "ready", rejects after `timeoutMs`. */
function readyWithin(connection: Redis, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onReady = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      connection.off("ready", onReady);
      reject(new Error(`the probe connection is ${connection.status} after ${timeoutMs} ms`));
    }, timeoutMs);
    connection.once("ready", onReady);
  });
}

function unavailable(reason: string, cause: unknown): Error {
  return new Error(
    `The Redis backplane is not reachable (${reason}); check Redis and the connection string.`,
    {
      cause,
    },
  );
}
