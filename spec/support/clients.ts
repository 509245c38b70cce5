import WebSocket from "ws";
import { WebsocketProvider } from "y-websocket";
import * as Y from "yjs";
import { eventually } from "./eventually.js";

/** A stock y-websocket client with its own document. */
export interface Client {
  readonly doc: Y.Doc;
  readonly provider: WebsocketProvider;
  readonly text: Y.Text;
  destroy(): void;
}

/**
 * Connects the stock `WebsocketProvider` (ws as its WebSocket). `disableBc` keeps
 * in-process clients from syncing over BroadcastChannel behind the server's back.
 */
export function connectClient(
  serverUrl: string,
  docName: string,
  options: { doc?: Y.Doc; connect?: boolean } = {},
): Client {
  const doc = options.doc ?? new Y.Doc();
  const provider = new WebsocketProvider(serverUrl, docName, doc, {
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true,
    connect: options.connect ?? true,
    maxBackoffTime: 200,
  });
  return {
    doc,
    provider,
    text: doc.getText("text"),
    destroy: () => {
      provider.destroy();
      doc.destroy();
    },
  };
}

/** Resolves once the provider has completed its first sync with the server. */
export function synced(client: Client, timeoutMs = 5000): Promise<void> {
  return eventually(() => {
    if (!client.provider.synced) throw new Error("provider not synced yet");
  }, timeoutMs);
}
