import { randomUUID } from "node:crypto";
import { ErrorCodes, OpStreamError } from "../../errors.js";
import type {
  ChannelHandler,
  ChannelMessage,
  IBackplane,
  RequestHandler,
  RequestOptions,
  Subscription,
} from "../backplane.js";
import { LocalBus } from "./local-bus.js";

/** @default 5000 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 5000;

/**
 * In-process backplane: the default. On one node it only fans out to nothing
 * (the session serves local peers itself); several nodes sharing a `LocalBus`
 * behave like a cluster, which specs use.
 */
export class LocalBackplane implements IBackplane {
  readonly nodeId: string;
  readonly bus: LocalBus;

  constructor(options: { bus?: LocalBus; nodeId?: string } = {}) {
    this.bus = options.bus ?? new LocalBus();
    this.nodeId = options.nodeId ?? randomUUID();
  }

  subscribe(docId: string, handler: ChannelHandler): Promise<Subscription> {
    const off = this.bus.subscribe(docId, this.nodeId, handler);
    return Promise.resolve({ unsubscribe: () => Promise.resolve(off()) });
  }

  publish(docId: string, message: ChannelMessage): Promise<void> {
    this.bus.publish(docId, message);
    return Promise.resolve();
  }

  async sendRequest(
    nodeId: string,
    type: string,
    payload: Uint8Array,
    options: RequestOptions = {},
  ): Promise<Uint8Array> {
    const handler = this.bus.handler(nodeId, type);
    if (!handler) {
      throw new OpStreamError(
        ErrorCodes.NO_HANDLER,
        `Node "${nodeId}" has no handler for "${type}" requests.`,
        {
          nodeId,
          type,
        },
      );
    }
    const timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new OpStreamError(
              ErrorCodes.REQUEST_TIMEOUT,
              `Request "${type}" to node "${nodeId}" got no answer within ${timeoutMs} ms.`,
              { nodeId, type, timeoutMs },
            ),
          ),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([handler(payload, this.nodeId), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  registerRequestHandler(type: string, handler: RequestHandler): () => void {
    this.bus.setHandler(this.nodeId, type, handler);
    return () => this.bus.setHandler(this.nodeId, type, undefined);
  }

  close(): Promise<void> {
    this.bus.removeNode(this.nodeId);
    return Promise.resolve();
  }
}
