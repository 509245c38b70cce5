import { ClusterBackplane, type ClusterBackplaneOptions } from "../cluster-backplane.js";
import { LocalBus } from "./local-bus.js";

/** Options of {@link LocalBackplane}: those of every cluster backplane, and the bus. */
export interface LocalBackplaneConstructorOptions extends ClusterBackplaneOptions {
  /** The medium shared with the other in-process nodes (specs). @default a new bus of its own */
  bus?: LocalBus;
}

/**
 * In-process backplane: the default. It is a {@link ClusterBackplane} like the
 * Redis one, over a {@link LocalBus} instead of Redis pub/sub, so requests,
 * timeouts, error wrapping and self-filtering are the very code a cluster runs.
 * On one node nobody else is on the bus and a publish costs a map lookup; several
 * nodes sharing a bus behave like a cluster, which specs use.
 *
 * As with Redis, a request to a node that is not on the bus fails at once with
 * NODE_GONE: the publish reached nobody.
 */
export class LocalBackplane extends ClusterBackplane {
  readonly bus: LocalBus;
  private readonly subscriptions = new Map<string, () => void>();
  /** `<prefix>doc:` and `<prefix>node:`, to tell a channel's kind from its name. */
  private readonly documentPrefix: string;
  private readonly nodePrefix: string;

  constructor(options: LocalBackplaneConstructorOptions = {}) {
    super(options);
    this.bus = options.bus ?? new LocalBus();
    this.documentPrefix = this.documentChannel("");
    this.nodePrefix = this.nodeChannel("");
    // The bus subscribes synchronously: requests can be answered once this returns.
    this.listen();
  }

  protected override reachesOthers(docId: string, origin: string): boolean {
    return this.bus.hasDocumentSubscriberBesides(docId, origin);
  }

  protected publishBytes(channel: string, bytes: Uint8Array): Promise<number> {
    return Promise.resolve(this.bus.publish(channel, bytes));
  }

  protected countListeners(channel: string): Promise<number> {
    return Promise.resolve(this.bus.listenerCount(channel));
  }

  protected subscribeChannel(channel: string, receive: (bytes: Uint8Array) => void): Promise<void> {
    const docId = channel.startsWith(this.documentPrefix)
      ? channel.slice(this.documentPrefix.length)
      : undefined;
    this.subscriptions.get(channel)?.();
    this.subscriptions.set(
      channel,
      this.bus.subscribe(channel, {
        nodeId: this.nodeId,
        receive,
        ...(docId === undefined ? {} : { docId }),
      }),
    );
    return Promise.resolve();
  }

  protected unsubscribeChannel(channel: string): Promise<void> {
    this.subscriptions.get(channel)?.();
    this.subscriptions.delete(channel);
    return Promise.resolve();
  }

  /** Leaves the bus: subscriptions end and this node's leases are freed. */
  protected closeTransport(): Promise<void> {
    this.subscriptions.clear();
    this.bus.removeNode(this.nodeId);
    return Promise.resolve();
  }
}
