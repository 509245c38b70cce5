import type { Cluster, Redis } from "ioredis";
import type { BackplaneLogger } from "../backplane-logger.js";

/**
 * The connections a {@link RedisBackplane} moves bytes over: one Redis
 * (`StandaloneLinks`: PUBLISH/SUBSCRIBE) or a Redis Cluster (`ShardedLinks`:
 * SPUBLISH/SSUBSCRIBE). The backplane keeps the protocol, the channel handlers,
 * the self-check and the `onResubscribed` listeners; links only carry bytes and
 * say when their subscriptions are back after a loss.
 */
export interface PubSubLinks {
  /** The client lease commands and progress marks run on (redlock routes by key on a Cluster). */
  readonly commands: Redis | Cluster;
  /** Publishes; resolves how many subscribers the message reached (0: nobody listens). */
  publish(channel: string, bytes: Uint8Array): Promise<number>;
  /** How many subscribers `channel` has now (sharded: on the master serving its slot). */
  countListeners(channel: string): Promise<number>;
  /** Resolves once the subscription is live; messages arrive through `LinkEvents.message`. */
  subscribe(channel: string): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
  /** Whether commands and subscriptions can flow now. */
  isReady(): boolean;
  /** The connections' states, for error messages, e.g. "publisher is ready, subscriber is reconnecting". */
  describe(): string;
  /** Resolves when Redis answers a PING within the ping timeout; never waits in an offline queue. */
  ping(): Promise<void>;
  /** The self-check found the subscription silent: reconnect what carries it. */
  reconnectSubscriber(intervalMs: number): void;
  /** Closes every connection this object opened. */
  close(): Promise<void>;
}

/** What links tell their backplane. */
export interface LinkEvents {
  /** A message arrived on a subscribed channel. */
  message(channel: string, bytes: Uint8Array): void;
  /** The channels subscribed now (re-subscribed after a loss). */
  channels(): string[];
  /** A subscriber connection became ready: it is known to receive from now on. */
  subscriberReady(): void;
  /** A subscriber connection was lost: messages are missed until `resubscribed`. */
  subscriberLost(): void;
  /**
   * After a loss, every channel is subscribed again (confirmed by a reply): messages
   * published meanwhile are gone, relays should resync.
   */
  resubscribed(channels: number): void;
}

/**
 * How our own connections reconnect: at least every 500 ms (ioredis's default
 * backs off to 2 s), so edits resume within half a second of Redis answering again
 * after an outage.
 */
export function retryStrategy(times: number): number {
  return Math.min(times * 50, 500);
}

/** What every kind of links is made with. */
export interface LinkContext {
  readonly nodeId: string;
  readonly logger: BackplaneLogger;
  readonly pingTimeoutMs: number;
  readonly events: LinkEvents;
}

/**
 * Reports a connection's errors: the first of an outage as an error, the rest
 * (ioredis repeats one per reconnect attempt) at debug, and the recovery once.
 * Returns a function that removes the listeners.
 */
export function watchConnection(
  connection: Redis | Cluster,
  role: string,
  context: Pick<LinkContext, "nodeId" | "logger">,
): () => void {
  let failures = 0;
  const { nodeId, logger } = context;
  const onError = (error: Error): void => {
    failures += 1;
    const details = { err: error, nodeId, connection: role };
    if (failures === 1) logger.error(details, `redis ${role} connection failed; reconnecting`);
    else logger.debug(details, `redis ${role} connection still failing`);
  };
  const onReady = (): void => {
    if (failures === 0) return;
    logger.info({ nodeId, connection: role, failures }, `redis ${role} connection is back`);
    failures = 0;
  };
  connection.on("error", onError);
  connection.on("ready", onReady);
  return () => {
    connection.off("error", onError);
    connection.off("ready", onReady);
  };
}

/**
 * Closes a connection this side opened: QUIT when it is ready (publishes already
 * sent still reach Redis), else at once; a QUIT that fails is logged and the
 * connection dropped.
 */
export async function quitConnection(
  connection: Redis | Cluster,
  role: string,
  context: Pick<LinkContext, "nodeId" | "logger">,
): Promise<void> {
  if (connection.status !== "ready") {
    connection.disconnect();
    return;
  }
  try {
    await connection.quit();
  } catch (error) {
    context.logger.warn({ err: error, nodeId: context.nodeId }, `redis ${role} did not quit cleanly`);
    connection.disconnect();
  }
}

/** `promise`, or a rejection after `timeoutMs`. */
export function withTimeout<T>(promise: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A Buffer over `bytes` without copying. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
