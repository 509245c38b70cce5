/** Kinds of message carried on a document's channel. */
export enum ChannelMessageType {
  /** A durable op: `(epoch, seq, update)` as appended by the owner. */
  Update = 1,
  /** An awareness update (ephemeral; never stored). */
  Awareness = 2,
  /** The owner's latest `(epoch, seq)`, so relays notice a silent loss. */
  Heartbeat = 3,
  /** The owner closed its session of this epoch (stepped down, shut down or unloaded). */
  Closed = 4,
  /** A stateless message for every Hocuspocus client of the document (ephemeral; never stored). */
  Stateless = 5,
  /**
   * A session of a new epoch opened on its origin, the document's new owner: relays
   * follow it at once instead of waiting for its first op or heartbeat.
   */
  Owner = 6,
}

/** A message on a document's channel, tagged by its type. */
export type ChannelMessage =
  | { type: ChannelMessageType.Update; origin: string; epoch: number; seq: number; payload: Uint8Array }
  | { type: ChannelMessageType.Awareness; origin: string; payload: Uint8Array }
  | { type: ChannelMessageType.Heartbeat; origin: string; epoch: number; seq: number }
  | {
      type: ChannelMessageType.Closed;
      origin: string;
      epoch: number;
      /**
       * The node the ex-owner picked to take over (one of the nodes relaying the
       * document; "" for none): the other relays wait for its Owner message instead
       * of racing it, so a shutdown's documents spread over the survivors.
       */
      successor: string;
    }
  | { type: ChannelMessageType.Stateless; origin: string; payload: string }
  | { type: ChannelMessageType.Owner; origin: string; epoch: number; seq: number };

/** Handles a message from another node; a node never receives its own messages. */
export type ChannelHandler = (message: ChannelMessage) => void;

/** Answers a request from another node with a payload, or throws an OpStreamError. */
export type RequestHandler = (payload: Uint8Array, fromNodeId: string) => Promise<Uint8Array>;

/** Options of {@link IBackplane.sendRequest}. */
export interface RequestOptions {
  /** How long to wait for the answer before rejecting with REQUEST_TIMEOUT. @default 5000 */
  timeoutMs?: number;
  /**
   * What the request is about (the document id): requests with the same key, and
   * their answers, travel in order on one of the target's lanes. A backplane with
   * several lanes per node (the Redis backplane on a Redis Cluster) spreads keys
   * over them, so one node's traffic spreads over the shards.
   * @default none (the node's first lane)
   */
  key?: string;
}

/** A subscription to one document's channel. */
export interface Subscription {
  unsubscribe(): Promise<void>;
}

/**
 * The cluster fabric: per-document channels for fan-out and awareness, and
 * request/response between nodes (used to proxy non-owner clients to the owner).
 * `LocalBackplane` serves one process; `RedisBackplane` a cluster.
 */
export interface IBackplane {
  /** This node's id, unique in the cluster. */
  readonly nodeId: string;
  /** Subscribes to `docId`'s channel; messages this node published are not delivered back. */
  subscribe(docId: string, handler: ChannelHandler): Promise<Subscription>;
  /** Publishes to every other node subscribed to `docId`. */
  publish(docId: string, message: ChannelMessage): Promise<void>;
  /** Sends a request to `nodeId`'s handler for `type` and resolves with its answer. */
  sendRequest(
    nodeId: string,
    type: string,
    payload: Uint8Array,
    options?: RequestOptions,
  ): Promise<Uint8Array>;
  /** Registers the handler for requests of `type`; returns a function that removes it. */
  registerRequestHandler(type: string, handler: RequestHandler): () => void;
  /** Stops delivering and releases connections. */
  close(): Promise<void>;
  /** Resolves when the backplane answers; rejects quickly when it cannot be reached (for /readyz). */
  ping?(): Promise<void>;
  /**
   * Whether `nodeId` is on the backplane: something listens on its RPC channel. A
   * crashed process's connections close at once, so this turns false within
   * milliseconds of a crash (a hung process stays "alive" until its lease expires).
   * @default absent (callers treat every node as alive)
   */
  isNodeAlive?(nodeId: string): Promise<boolean>;
  /** Calls `listener` after subscriptions were restored following a disconnect (messages may have been lost). */
  onResubscribed?(listener: () => void): () => void;
  /**
   * True while this node's link to the medium is down, or came back less than a
   * lease TTL ago. Owner keys that vanished with the medium (it restarted empty, or
   * they expired while it was unreachable) then do not mean their owners are gone:
   * an owner serves on through an outage and takes its key back when the medium
   * returns, so a relay rejoins its previous owner rather than taking over.
   * @default absent (never recovering)
   */
  isRecovering?(): boolean;
}
