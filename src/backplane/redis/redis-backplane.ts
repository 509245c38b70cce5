import type { Cluster, Redis } from "ioredis";
import type { DocumentStore } from "../../storage/document-store.js";
import { ClusterBackplane } from "../cluster-backplane.js";
import { CLUSTER_NODE_LANES, redisKeyNames, type RedisKeyNames } from "./key-names.js";
import { resolveRedisBackplaneOptions, type RedisBackplaneOptions } from "./options.js";
import type { LinkEvents, PubSubLinks } from "./pubsub-links.js";
import { RedisOwnership } from "./redis-ownership.js";
import { ShardedLinks } from "./sharded-links.js";
import { StandaloneLinks } from "./standalone-links.js";
import { SubscriberCheck } from "./subscriber-check.js";

/** The request type of the subscriber check (answered by this node itself). */
const SELF_CHECK = "opstream.node.self-check";

/**
 * The cluster backplane over Redis pub/sub: a channel per document and one per
 * node for RPC, binary frames (PROTOCOL.md). Everything but moving bytes lives in
 * {@link ClusterBackplane}; the bytes move over one Redis (`StandaloneLinks`:
 * PUBLISH/SUBSCRIBE) or, with the `cluster` option, a Redis Cluster
 * (`ShardedLinks`: sharded pub/sub, names hash-tagged by id, see key-names.ts).
 *
 * Pub/sub is at-most-once: what is published while a subscriber reconnects (or
 * while a shard fails over) is lost. Once the links have every channel subscribed
 * again, this class calls the `onResubscribed` listeners, so relays resync.
 */
export class RedisBackplane extends ClusterBackplane {
  /** The client lease commands run on (RedisOwnership): one Redis, or the Cluster. */
  readonly redis: Redis | Cluster;
  readonly keyPrefix: string;
  readonly ownershipLeaseTtlMs: number;
  /** The key and channel names of this backplane's topology. */
  readonly names: RedisKeyNames;
  private readonly links: PubSubLinks;
  private readonly hostMetrics: RedisBackplaneOptions["metrics"];
  private readonly channelListeners = new Map<string, (bytes: Uint8Array) => void>();
  private readonly resubscribedListeners = new Set<() => void>();
  private readonly check: SubscriberCheck | undefined;
  /** True from a subscriber loss until every channel is confirmed subscribed again. */
  private linkDown = false;
  /** `performance.now()` when the subscriptions were last confirmed back after a loss. */
  private recoveredAt: number | undefined;

  constructor(options: RedisBackplaneOptions = {}) {
    const resolved = resolveRedisBackplaneOptions(options);
    super({
      nodeId: resolved.nodeId,
      channelPrefix: resolved.keyPrefix,
      requestTimeoutMs: resolved.requestTimeoutMs,
      metrics: resolved.metrics,
      logger: resolved.logger,
      nodeLanes: resolved.cluster ? CLUSTER_NODE_LANES : 1,
    });
    this.keyPrefix = resolved.keyPrefix;
    this.ownershipLeaseTtlMs = resolved.ownershipLeaseTtlMs;
    this.hostMetrics = resolved.metrics;
    this.names = redisKeyNames(resolved.keyPrefix, resolved.cluster ? "cluster" : "standalone");
    const events: LinkEvents = {
      message: (channel, bytes) => this.channelListeners.get(channel)?.(bytes),
      channels: () => [...this.channelListeners.keys()],
      subscriberReady: () => this.check?.proven(),
      subscriberLost: () => (this.linkDown = true),
      resubscribed: (channels) => this.notifyResubscribed(channels),
    };
    const context = {
      nodeId: this.nodeId,
      logger: this.logger,
      pingTimeoutMs: resolved.pingTimeoutMs,
      events,
    };
    this.links = resolved.cluster
      ? new ShardedLinks(context, resolved.cluster, resolved.clusterOptions)
      : new StandaloneLinks(context, resolved.connectionString, resolved.redis);
    this.redis = this.links.commands;
    this.listen();
    const interval = resolved.subscriberCheckIntervalMs;
    if (interval > 0) {
      this.registerRequestHandler(SELF_CHECK, () => Promise.resolve(new Uint8Array(0)));
      this.check = new SubscriberCheck(interval, {
        linksReady: () => this.links.isReady(),
        send: (timeoutMs) => this.sendRequest(this.nodeId, SELF_CHECK, new Uint8Array(0), { timeoutMs }),
        reconnect: (silentMs, why) => {
          // While Redis is down (refused connections) this repeats: warn once per outage.
          const level = why === "stuck" && this.linkDown ? "debug" : "warn";
          this.logger[level](
            { nodeId: this.nodeId, silentMs: Math.round(silentMs), intervalMs: interval },
            why === "silent"
              ? "redis subscriber stopped receiving; reconnecting it"
              : "redis links did not get ready; reconnecting them",
          );
          this.links.reconnectSubscriber(interval);
        },
      });
    }
  }

  /** A RedisOwnership for this node: same connection, key names and lease TTL. */
  createOwnership(store: Pick<DocumentStore, "claimEpoch">): RedisOwnership {
    return new RedisOwnership({
      redis: this.redis,
      nodeId: this.nodeId,
      store,
      names: this.names,
      leaseTtlMs: this.ownershipLeaseTtlMs,
      metrics: this.hostMetrics,
      logger: this.logger,
    });
  }

  /**
   * Calls `listener` each time the subscriber is back after a disconnect (or, on a
   * Redis Cluster, after subscriptions moved to another master) with every channel
   * subscribed again. Messages published while it was away are lost, so relays
   * should resync. Returns a function that removes the listener.
   */
  override onResubscribed(listener: () => void): () => void {
    this.resubscribedListeners.add(listener);
    return () => void this.resubscribedListeners.delete(listener);
  }

  /**
   * True while the links are not ready, a subscriber was lost and its channels are
   * not confirmed back, or they came back less than a lease TTL ago (see
   * `IBackplane.isRecovering`).
   */
  isRecovering(): boolean {
    if (!this.isReady() || this.linkDown) return true;
    const recoveredAt = this.recoveredAt;
    return recoveredAt !== undefined && performance.now() - recoveredAt < this.ownershipLeaseTtlMs;
  }

  /** True when the connections are up and every subscription is in place. */
  isReady(): boolean {
    return this.links.isReady();
  }

  /**
   * For `/readyz`: resolves when Redis answers a PING within `pingTimeoutMs` (on a
   * Redis Cluster, every master) and the connections are ready; rejects at once
   * while they are not.
   */
  async ping(): Promise<void> {
    if (!this.isReady()) throw unavailable(this.links.describe(), undefined);
    try {
      await this.links.ping();
    } catch (error) {
      throw unavailable(`PING failed: ${error instanceof Error ? error.message : String(error)}`, error);
    }
  }

  protected override documentChannel(docId: string): string {
    return this.names.documentChannel(docId);
  }

  protected override nodeChannel(nodeId: string, lane = 0): string {
    return this.names.nodeChannel(nodeId, lane);
  }

  protected publishBytes(channel: string, bytes: Uint8Array): Promise<number> {
    return this.links.publish(channel, bytes);
  }

  /** A node's subscriber leaves its channel the moment its connection closes. */
  protected countListeners(channel: string): Promise<number> {
    return this.links.countListeners(channel);
  }

  protected async subscribeChannel(channel: string, onBytes: (bytes: Uint8Array) => void): Promise<void> {
    this.channelListeners.set(channel, onBytes);
    try {
      await this.links.subscribe(channel);
    } catch (error) {
      if (this.channelListeners.get(channel) === onBytes) this.channelListeners.delete(channel);
      throw error;
    }
  }

  protected async unsubscribeChannel(channel: string): Promise<void> {
    this.channelListeners.delete(channel);
    await this.links.unsubscribe(channel);
  }

  protected async closeTransport(): Promise<void> {
    this.check?.stop();
    this.resubscribedListeners.clear();
    this.channelListeners.clear();
    await this.links.close();
  }

  private notifyResubscribed(channels: number): void {
    this.recoveredAt = performance.now();
    this.linkDown = false;
    this.hostMetrics?.backplaneResubscribes.inc();
    this.logger.info({ nodeId: this.nodeId, channels }, "redis subscriber re-subscribed");
    for (const listener of [...this.resubscribedListeners]) {
      try {
        listener();
      } catch (error) {
        this.logger.error({ err: error, nodeId: this.nodeId }, "onResubscribed listener threw");
      }
    }
  }
}

function unavailable(reason: string, cause: unknown): Error {
  return new Error(
    `The Redis backplane is not reachable (${reason}); check Redis and the connection string (or cluster nodes).`,
    { cause },
  );
}
