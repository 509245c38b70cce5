import type { ChannelMessage } from "../backplane.js";
import { decodeChannelMessage } from "../envelope.js";

/** What happens to one delivery of a channel message; see {@link LocalBusOptions.intercept}. */
export type Delivery = "deliver" | "drop" | "duplicate";

/** Decides the fate of `message`, published on `docId`'s channel, on its way to node `to`. */
export type DeliveryInterceptor = (message: ChannelMessage, docId: string, to: string) => Delivery;

/** Options of {@link LocalBus}. */
export interface LocalBusOptions {
  /**
   * Test seam: called once per delivery of a document channel message (never for
   * requests or responses) to lose it or deliver it twice, as an at-most-once
   * backplane such as Redis pub/sub can, so specs can show relays repair the gap
   * in-process. A duplicate is delivered again at once. @default undefined (every
   * message delivered once)
   */
  intercept?: DeliveryInterceptor;
}

/** One node's subscription to one channel of a {@link LocalBus}. */
export interface LocalBusSubscriber {
  readonly nodeId: string;
  /** Set on a document's channel, so the interceptor can be told which document it is. */
  readonly docId?: string;
  readonly receive: (bytes: Uint8Array) => void;
}

/**
 * The shared medium of in-process nodes, as Redis is for a cluster: named
 * channels that move bytes (the nodes' `LocalBackplane`s speak the cluster
 * protocol over them), plus the owners `LocalOwnership` hands out. One process
 * normally has one node; specs share a bus between several nodes.
 *
 * Delivery is synchronous: `publish` returns after every subscriber received the
 * bytes, so messages on a channel arrive in the order they were published.
 */
export class LocalBus {
  /** channel -> node id -> its subscriber (a node subscribes a channel once). */
  private readonly channels = new Map<string, Map<string, LocalBusSubscriber>>();
  /**
   * docId -> the subscribers of its channels, whatever their prefix: lets a publish
   * ask "anyone else?" without building the channel name. Nodes with another
   * prefix make the answer a harmless "yes" (the bytes then reach nobody).
   */
  private readonly documents = new Map<string, Set<LocalBusSubscriber>>();
  private readonly intercept: DeliveryInterceptor | undefined;
  /** docId -> owning node id. */
  readonly owners = new Map<string, string>();

  constructor(options: LocalBusOptions = {}) {
    this.intercept = options.intercept;
  }

  /** Delivers `channel` to `subscriber` until the returned function is called. */
  subscribe(channel: string, subscriber: LocalBusSubscriber): () => void {
    let subscribers = this.channels.get(channel);
    if (!subscribers) this.channels.set(channel, (subscribers = new Map<string, LocalBusSubscriber>()));
    const replaced = subscribers.get(subscriber.nodeId);
    if (replaced) this.forgetDocument(replaced);
    subscribers.set(subscriber.nodeId, subscriber);
    if (subscriber.docId !== undefined) {
      let ofDocument = this.documents.get(subscriber.docId);
      if (!ofDocument) this.documents.set(subscriber.docId, (ofDocument = new Set<LocalBusSubscriber>()));
      ofDocument.add(subscriber);
    }
    return () => {
      // A node that re-subscribed meanwhile keeps its newer subscription.
      if (subscribers.get(subscriber.nodeId) !== subscriber) return;
      subscribers.delete(subscriber.nodeId);
      this.forgetDocument(subscriber);
      if (subscribers.size === 0 && this.channels.get(channel) === subscribers) this.channels.delete(channel);
    };
  }

  /** Delivers `bytes` to every subscriber of `channel`; returns how many subscribers it had. */
  publish(channel: string, bytes: Uint8Array): number {
    const subscribers = this.channels.get(channel);
    if (!subscribers) return 0;
    let message: ChannelMessage | undefined;
    for (const subscriber of subscribers.values()) {
      let delivery: Delivery = "deliver";
      if (this.intercept && subscriber.docId !== undefined) {
        message ??= tryDecode(bytes);
        if (message) delivery = this.intercept(message, subscriber.docId, subscriber.nodeId);
      }
      if (delivery === "drop") continue;
      subscriber.receive(bytes);
      if (delivery === "duplicate") subscriber.receive(bytes);
    }
    return subscribers.size;
  }

  /** How many nodes subscribe `channel`. */
  listenerCount(channel: string): number {
    return this.channels.get(channel)?.size ?? 0;
  }

  /**
   * Whether a node other than `nodeId` subscribes a channel of `docId`. Every
   * publish on one node asks it: with nobody else on the bus it is one map lookup.
   */
  hasDocumentSubscriberBesides(docId: string, nodeId: string): boolean {
    const subscribers = this.documents.get(docId);
    if (!subscribers) return false;
    for (const subscriber of subscribers) if (subscriber.nodeId !== nodeId) return true;
    return false;
  }

  /**
   * Takes `nodeId` off the bus at once, as a crash would: its subscriptions end
   * (requests to it fail with NODE_GONE) and the documents it owned are free.
   */
  removeNode(nodeId: string): void {
    for (const [channel, subscribers] of this.channels) {
      const subscriber = subscribers.get(nodeId);
      if (!subscriber) continue;
      subscribers.delete(nodeId);
      this.forgetDocument(subscriber);
      if (subscribers.size === 0) this.channels.delete(channel);
    }
    for (const [docId, owner] of this.owners) if (owner === nodeId) this.owners.delete(docId);
  }

  private forgetDocument(subscriber: LocalBusSubscriber): void {
    if (subscriber.docId === undefined) return;
    const ofDocument = this.documents.get(subscriber.docId);
    ofDocument?.delete(subscriber);
    if (ofDocument?.size === 0) this.documents.delete(subscriber.docId);
  }
}

/**
 * The message the interceptor judges, or undefined for bytes that do not decode:
 * those are delivered as they are, and the receiving node reports them.
 */
function tryDecode(bytes: Uint8Array): ChannelMessage | undefined {
  try {
    return decodeChannelMessage(bytes);
  } catch {
    return undefined;
  }
}
