import type { ChannelHandler, Subscription } from "./backplane.js";
import type { BackplaneLogger } from "./backplane-logger.js";

/** How {@link DocumentSubscriptions} reaches the medium: one channel per document. */
export interface DocumentChannels {
  /** Subscribes `docId`'s channel; resolves once messages flow. */
  subscribe(docId: string): Promise<void>;
  /** Unsubscribes `docId`'s channel. */
  unsubscribe(docId: string): Promise<void>;
}

/** The local subscribers of one document. */
interface Subscribers {
  readonly handlers: Set<ChannelHandler>;
  /** Settles when the channel subscription is in place (or failed). */
  readonly ready: Promise<void>;
}

/**
 * Ref-counted document subscriptions: several local handlers per document,
 * one channel subscription, dropped when the last handler leaves.
 */
export class DocumentSubscriptions {
  private readonly documents = new Map<string, Subscribers>();
  /** The tail of each document's subscribe/unsubscribe chain (see {@link serially}). */
  private readonly operations = new Map<string, Promise<void>>();

  constructor(
    private readonly channels: DocumentChannels,
    private readonly logger: BackplaneLogger,
  ) {}

  /** Adds `handler` to `docId`, subscribing its channel if it is the first; resolves once it is live. */
  async add(docId: string, handler: ChannelHandler): Promise<Subscription> {
    let subscribers = this.documents.get(docId);
    if (!subscribers) {
      subscribers = {
        handlers: new Set(),
        ready: this.serially(docId, () => this.channels.subscribe(docId)),
      };
      this.documents.set(docId, subscribers);
    }
    // Tracked before the channel is confirmed, so a message that arrives in between
    // reaches this handler and a concurrent unsubscribe sees it.
    subscribers.handlers.add(handler);
    const remove = (): Promise<void> => this.remove(docId, subscribers, handler);
    try {
      await subscribers.ready;
    } catch (error) {
      await remove().catch((cleanupError: unknown) =>
        this.logger.warn({ err: cleanupError, docId }, "backplane could not undo a failed subscription"),
      );
      throw error;
    }
    let removed: Promise<void> | undefined;
    return { unsubscribe: () => (removed ??= remove()) };
  }

  /** The handlers of `docId`, as a copy (a handler may unsubscribe while called). */
  handlersOf(docId: string): ChannelHandler[] {
    return [...(this.documents.get(docId)?.handlers ?? [])];
  }

  /** Forgets every subscription without touching the medium (it is closing). */
  clear(): void {
    this.documents.clear();
  }

  private async remove(docId: string, subscribers: Subscribers, handler: ChannelHandler): Promise<void> {
    subscribers.handlers.delete(handler);
    if (subscribers.handlers.size > 0 || this.documents.get(docId) !== subscribers) return;
    this.documents.delete(docId);
    await this.serially(docId, () => this.channels.unsubscribe(docId));
  }

  /**
   * Runs a document's channel operations one after another. Without it, "last
   * handler leaves" then "first handler arrives" could reach the medium as
   * SUBSCRIBE, UNSUBSCRIBE and leave the new subscriber deaf. A failed operation
   * was already reported to its own caller, so the chain only waits for it to settle.
   */
  private serially(docId: string, operation: () => Promise<void>): Promise<void> {
    const next = (this.operations.get(docId) ?? Promise.resolve()).then(operation);
    const tail = next.then(
      () => undefined,
      () => undefined,
    );
    this.operations.set(docId, tail);
    void tail.then(() => {
      if (this.operations.get(docId) === tail) this.operations.delete(docId);
    });
    return next;
  }
}
