import type { ChannelHandler, ChannelMessage, RequestHandler } from "../backplane.js";

/** What happens to one delivery of a channel message; see {@link LocalBusOptions.intercept}. */
export type Delivery = "deliver" | "drop" | "duplicate";

/** Decides the fate of `message`, published on `docId`'s channel, on its way to node `to`. */
export type DeliveryInterceptor = (message: ChannelMessage, docId: string, to: string) => Delivery;

/** Options of {@link LocalBus}. */
export interface LocalBusOptions {
  /**
   * Test seam: called once per delivery of a channel message (never for requests)
   * to lose it or deliver it twice, as an at-most-once backplane such as Redis
   * pub/sub can, so specs can show relays repair the gap in-process. A duplicate
   * is delivered again at once. @default undefined (every message delivered once)
   */
  intercept?: DeliveryInterceptor;
}

/**
 * The shared medium of in-process nodes: channels, request handlers and owners.
 * One process normally has one node; specs share a bus between several nodes.
 */
export class LocalBus {
  private readonly channels = new Map<string, Set<{ nodeId: string; handler: ChannelHandler }>>();
  private readonly handlers = new Map<string, Map<string, RequestHandler>>();
  private readonly intercept: DeliveryInterceptor | undefined;
  /** docId -> owning node id. */
  readonly owners = new Map<string, string>();

  constructor(options: LocalBusOptions = {}) {
    this.intercept = options.intercept;
  }

  subscribe(docId: string, nodeId: string, handler: ChannelHandler): () => void {
    const entry = { nodeId, handler };
    let subscribers = this.channels.get(docId);
    if (!subscribers)
      this.channels.set(docId, (subscribers = new Set<{ nodeId: string; handler: ChannelHandler }>()));
    subscribers.add(entry);
    return () => {
      subscribers.delete(entry);
      if (subscribers.size === 0) this.channels.delete(docId);
    };
  }

  publish(docId: string, message: ChannelMessage): void {
    for (const { nodeId, handler } of this.channels.get(docId) ?? []) {
      if (nodeId === message.origin) continue;
      const delivery = this.intercept ? this.intercept(message, docId, nodeId) : "deliver";
      if (delivery === "drop") continue;
      handler(message);
      if (delivery === "duplicate") handler(message);
    }
  }

  setHandler(nodeId: string, type: string, handler: RequestHandler | undefined): void {
    let byType = this.handlers.get(nodeId);
    if (!byType) this.handlers.set(nodeId, (byType = new Map<string, RequestHandler>()));
    if (handler) byType.set(type, handler);
    else byType.delete(type);
  }

  handler(nodeId: string, type: string): RequestHandler | undefined {
    return this.handlers.get(nodeId)?.get(type);
  }

  removeNode(nodeId: string): void {
    this.handlers.delete(nodeId);
    for (const [docId, owner] of this.owners) if (owner === nodeId) this.owners.delete(docId);
  }
}
