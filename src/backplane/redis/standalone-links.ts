import type { Redis } from "ioredis";
import { loadIoredis } from "../../drivers.js";
import {
  asBuffer,
  quitConnection,
  retryStrategy,
  watchConnection,
  withTimeout,
  type LinkContext,
  type PubSubLinks,
} from "./pubsub-links.js";

/** The probe connection reconnects at least this often, so `/readyz` notices recovery quickly. */
const PROBE_MAX_RETRY_DELAY_MS = 1000;

/**
 * Links to one Redis: PUBLISH/SUBSCRIBE, `PUBSUB NUMSUB`. Three connections: the
 * publisher (also used for lease commands; the caller's client when one is given),
 * a subscriber duplicated from it (a subscribed connection can run nothing else),
 * and a probe for `ping()` that never queues.
 *
 * ioredis re-subscribes on reconnect by itself; these links then confirm every
 * channel with a SUBSCRIBE of their own before reporting `resubscribed`.
 */
export class StandaloneLinks implements PubSubLinks {
  readonly commands: Redis;
  private readonly subscriber: Redis;
  private readonly probe: Redis;
  private readonly detach: (() => void)[] = [];
  private subscriberWasDown = false;
  /** Counts the subscriber's "ready" events; only the newest one's re-subscription notifies. */
  private subscriberReadies = 0;

  constructor(
    private readonly context: LinkContext,
    connectionString: string,
    /** A caller-owned client: used, never quit. */
    private readonly given: Redis | undefined,
  ) {
    this.commands = given ?? new (loadIoredis().Redis)(connectionString, { retryStrategy });
    this.subscriber = this.commands.duplicate({ lazyConnect: false, retryStrategy });
    this.probe = this.commands.duplicate({
      lazyConnect: false,
      // Fail at once while disconnected instead of waiting in ioredis's offline queue.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: context.pingTimeoutMs,
      retryStrategy: (times: number) => Math.min(times * 100, PROBE_MAX_RETRY_DELAY_MS),
    });
    this.detach.push(
      watchConnection(this.commands, "publisher", context),
      watchConnection(this.subscriber, "subscriber", context),
      watchConnection(this.probe, "probe", context),
    );
    const { events } = context;
    this.subscriber.on("messageBuffer", (channel: Buffer, message: Buffer) =>
      events.message(channel.toString(), message),
    );
    this.subscriber.on("close", () => {
      this.subscriberWasDown = true;
      events.subscriberLost();
    });
    this.subscriber.on("ready", () => {
      events.subscriberReady();
      const ready = ++this.subscriberReadies;
      if (!this.subscriberWasDown) return;
      this.subscriberWasDown = false;
      void this.confirmResubscribed(ready);
    });
  }

  publish(channel: string, bytes: Uint8Array): Promise<number> {
    return this.commands.publish(channel, asBuffer(bytes));
  }

  /** `PUBSUB NUMSUB`: a node's subscriber leaves its channel the moment its connection closes. */
  async countListeners(channel: string): Promise<number> {
    const reply = await this.commands.pubsub("NUMSUB", channel);
    return Number(reply[1] ?? 0);
  }

  async subscribe(channel: string): Promise<void> {
    await this.subscriber.subscribe(channel);
  }

  async unsubscribe(channel: string): Promise<void> {
    await this.subscriber.unsubscribe(channel);
  }

  isReady(): boolean {
    return this.commands.status === "ready" && this.subscriber.status === "ready";
  }

  describe(): string {
    return `publisher is ${this.commands.status}, subscriber is ${this.subscriber.status}`;
  }

  async ping(): Promise<void> {
    // Right after start (or a reconnect) the probe may still be connecting, and it
    // never queues: give it the same budget to get ready.
    if (this.probe.status !== "ready") await readyWithin(this.probe, this.context.pingTimeoutMs);
    await this.probe.ping();
  }

  reconnectSubscriber(intervalMs: number): void {
    this.subscriber.disconnect(true);
    // The request may have died on the way out instead: a publisher that does
    // not answer a PING in time is reconnected too (if it is ours to reconnect).
    if (this.given) return;
    void withTimeout(this.commands.ping(), intervalMs).catch(() => {
      this.context.logger.warn(
        { nodeId: this.context.nodeId },
        "redis publisher does not answer; reconnecting it",
      );
      this.commands.disconnect(true);
    });
  }

  async close(): Promise<void> {
    this.subscriber.disconnect();
    this.probe.disconnect();
    if (!this.given) await quitConnection(this.commands, "publisher", this.context);
    // Last, so errors while closing are still reported; a caller-owned client stays
    // open and must not keep our listeners.
    for (const off of this.detach) off();
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
    const channels = this.context.events.channels();
    try {
      if (channels.length > 0) await this.subscriber.subscribe(...channels);
    } catch (error) {
      // The connection dropped again; its next "ready" retries.
      this.context.logger.warn(
        { err: error, nodeId: this.context.nodeId },
        "redis subscriber could not re-subscribe",
      );
      return;
    }
    if (ready === this.subscriberReadies) this.context.events.resubscribed(channels.length);
  }
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
