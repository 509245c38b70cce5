import type { Cluster, ClusterOptions } from "ioredis";
import { loadIoredis } from "../../drivers.js";
import { hashSlot } from "./hash-slot.js";
import {
  asBuffer,
  quitConnection,
  retryStrategy,
  watchConnection,
  withTimeout,
  type LinkContext,
  type PubSubLinks,
} from "./pubsub-links.js";

/** A Redis Cluster node to start from (the rest of the cluster is discovered). */
export interface ClusterNodeAddress {
  host: string;
  port: number;
}

/**
 * The slot map is refreshed at least this often even when nothing fails; a slot
 * migration or a failover is normally noticed at once (a closed subscriber, a
 * MOVED reply, or the `sunsubscribe` Redis sends when a slot leaves a node).
 */
const SLOTS_REFRESH_INTERVAL_MS = 5000;

/**
 * Links to a Redis Cluster (Redis ≥ 7) with sharded pub/sub: SPUBLISH/SSUBSCRIBE,
 * `PUBSUB SHARDNUMSUB`. One ioredis `Cluster` with `shardedSubscribers`: commands
 * (publishes, leases) go to the master of each key's slot; ioredis keeps one
 * subscriber connection per master that serves a subscribed channel
 * (`ClusterSubscriberGroup`), moves subscriptions when slots move or a replica is
 * promoted, and emits "subscribersReady" after each such reset.
 *
 * Losses: a reset means a subscriber closed or slots moved, so messages may have
 * been missed. After each "subscribersReady" (once the links were up), these
 * links send one SSUBSCRIBE per master that serves a subscribed channel: it
 * travels on that master's subscriber connection after ioredis's own
 * re-subscriptions, so its reply proves them done before `resubscribed` tells the
 * relays to resync. (One channel per master, not every channel: ioredis records
 * each SSUBSCRIBE's channels again, and would re-send the copies on every reset.)
 */
export class ShardedLinks implements PubSubLinks {
  readonly commands: Cluster;
  private readonly detach: (() => void)[] = [];
  /** True once a subscription was confirmed: the "subscribersReady" of the start do not notify. */
  private established = false;
  /** A subscriber was dropped and its channels are not confirmed back yet. */
  private resubscribing = false;
  /** Counts "subscribersReady"; only the newest confirmation notifies. */
  private resets = 0;

  constructor(
    private readonly context: LinkContext,
    nodes: readonly ClusterNodeAddress[],
    options: ClusterOptions = {},
  ) {
    this.commands = new (loadIoredis().Cluster)(
      nodes.map(({ host, port }) => ({ host, port })),
      {
        ...options,
        shardedSubscribers: true,
        slotsRefreshInterval: SLOTS_REFRESH_INTERVAL_MS,
        clusterRetryStrategy: retryStrategy,
      },
    );
    this.detach.push(watchConnection(this.commands, "cluster", context));
    const { events } = context;
    const onMessage = (channel: Buffer, message: Buffer): void => events.message(channel.toString(), message);
    const onDropped = (): void => {
      this.resubscribing = true;
      events.subscriberLost();
    };
    const onReset = (): void => void this.confirmResubscribed(++this.resets);
    this.commands.on("smessageBuffer", onMessage);
    this.commands.on("-subscriber", onDropped);
    this.commands.on("subscribersReady", onReset);
    this.detach.push(() => {
      this.commands.off("smessageBuffer", onMessage);
      this.commands.off("-subscriber", onDropped);
      this.commands.off("subscribersReady", onReset);
    });
  }

  async publish(channel: string, bytes: Uint8Array): Promise<number> {
    return Number(await this.commands.spublish(channel, asBuffer(bytes)));
  }

  /**
   * `PUBSUB SHARDNUMSUB` on the master serving the channel's slot: shard channel
   * subscriptions are counted per node, and ioredis subscribes on masters.
   */
  async countListeners(channel: string): Promise<number> {
    const slot = hashSlot(channel);
    const nodeKey = this.commands.slots[slot]?.[0];
    const master = this.commands
      .nodes("master")
      .find((node) => `${node.options.host}:${node.options.port}` === nodeKey);
    if (!master) throw new Error(`no known master serves slot ${slot} of ${channel} yet`);
    const reply = (await master.call("PUBSUB", "SHARDNUMSUB", channel)) as [string, number];
    return Number(reply[1] ?? 0);
  }

  async subscribe(channel: string): Promise<void> {
    await this.commands.ssubscribe(channel);
    this.established = true;
  }

  async unsubscribe(channel: string): Promise<void> {
    await this.commands.sunsubscribe(channel);
  }

  isReady(): boolean {
    return this.commands.status === "ready" && !this.resubscribing;
  }

  describe(): string {
    return `cluster client is ${this.commands.status}${this.resubscribing ? ", re-subscribing" : ""}`;
  }

  /** Every master the client knows answers PING (a failed master fails it until its replica is promoted). */
  async ping(): Promise<void> {
    const masters = this.commands.nodes("master");
    if (masters.length === 0) throw new Error("no master of the cluster is known yet");
    await Promise.all(
      masters.map((node) =>
        withTimeout(node.ping(), this.context.pingTimeoutMs).catch((error: unknown) => {
          const reason = error instanceof Error ? error.message : String(error);
          throw new Error(`${node.options.host}:${node.options.port}: ${reason}`, { cause: error });
        }),
      ),
    );
  }

  /**
   * ioredis offers no way to reconnect one sharded subscriber, so the whole client
   * reconnects: every subscriber is made again, and the reset that follows notifies.
   */
  reconnectSubscriber(): void {
    this.commands.disconnect(true);
  }

  async close(): Promise<void> {
    try {
      await quitConnection(this.commands, "cluster client", this.context);
    } finally {
      for (const off of this.detach) off();
    }
  }

  /** See the class comment: one SSUBSCRIBE per master proves ioredis's re-subscriptions done. */
  private async confirmResubscribed(reset: number): Promise<void> {
    if (!this.established) return;
    const channels = this.context.events.channels();
    const probes = new Map<string, string>();
    for (const channel of channels) {
      const nodeKey = this.commands.slots[hashSlot(channel)]?.[0] ?? "";
      if (!probes.has(nodeKey)) probes.set(nodeKey, channel);
    }
    try {
      await Promise.all([...probes.values()].map((channel) => this.commands.ssubscribe(channel)));
    } catch (error) {
      // A subscriber is not back yet (a master failed and no replica took over yet);
      // ioredis refreshes the slots again, and the next reset retries.
      this.context.logger.warn(
        { err: error, nodeId: this.context.nodeId },
        "redis cluster subscribers could not re-subscribe yet",
      );
      return;
    }
    if (reset !== this.resets) return;
    this.resubscribing = false;
    this.context.events.subscriberReady();
    this.context.events.resubscribed(channels.length);
  }
}
