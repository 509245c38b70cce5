import WebSocket from "ws";
import { strict as assert } from "node:assert";
import { WebsocketProvider } from "y-websocket";
import * as Y from "yjs";
import { eventually } from "./eventually.js";

/**
 * Each stock WebsocketProvider in Node adds a process "exit" listener for its
 * lifetime (to say its awareness goodbye; y-websocket.js, removed on destroy). The
 * specs hold dozens at once: that is the client's design, not a leak, so node's
 * warning past 10 listeners is raised to a bound the suite never reaches.
 */
process.setMaxListeners(Math.max(process.getMaxListeners(), 500));

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
  options: {
    doc?: Y.Doc;
    connect?: boolean;
    params?: Record<string, string>;
    protocols?: string[];
    /** The WebSocket class the provider constructs (e.g. one that sends more headers). @default ws */
    webSocket?: typeof globalThis.WebSocket;
  } = {},
): Client {
  const doc = options.doc ?? new Y.Doc();
  const provider = new WebsocketProvider(serverUrl, docName, doc, {
    WebSocketPolyfill: options.webSocket ?? (WebSocket as unknown as typeof globalThis.WebSocket),
    disableBc: true,
    connect: options.connect ?? true,
    maxBackoffTime: 200,
    params: options.params ?? {},
    protocols: options.protocols ?? [],
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

/**
 * `sender` sets a presence state; each of `others` must see it, then lose it once
 * the sender's socket is dropped abruptly (no goodbye: the server must clean up).
 */
export async function assertAwarenessRoundTrip(sender: Client, others: readonly Client[]): Promise<void> {
  sender.provider.awareness.setLocalStateField("user", { name: "Bea" });
  for (const other of others) {
    await eventually(() =>
      assert.deepEqual(other.provider.awareness.getStates().get(sender.doc.clientID), {
        user: { name: "Bea" },
      }),
    );
  }
  sender.provider.shouldConnect = false;
  (sender.provider.ws as unknown as { terminate(): void }).terminate();
  for (const other of others) {
    await eventually(() =>
      assert.equal(other.provider.awareness.getStates().has(sender.doc.clientID), false),
    );
  }
}
