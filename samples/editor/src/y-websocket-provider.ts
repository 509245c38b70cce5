import { WebsocketProvider } from "y-websocket";
import type * as Y from "yjs";
import type { SampleProvider, ServerLocation } from "./providers.js";
import type { ConnectionStatus } from "./status.js";

export type YWebsocketSampleProvider = Extract<SampleProvider, { kind: "y-websocket" }>;

/** y-websocket's `WebsocketProvider` for `docName`; it connects on `connect()`. */
export function createYWebsocketProvider(
  docName: string,
  doc: Y.Doc,
  server: ServerLocation,
  token: string | undefined,
): YWebsocketSampleProvider {
  const serverUrl = `${server.origin}${server.prefix}`;
  // disableBc: tabs of one browser would otherwise sync over BroadcastChannel and
  // hide whether the server is doing its job.
  const provider = new WebsocketProvider(serverUrl, encodeURIComponent(docName), doc, {
    connect: false,
    disableBc: true,
    ...(token === undefined ? {} : { params: { token } }),
  });
  return {
    kind: "y-websocket",
    provider,
    url: `${serverUrl}/${encodeURIComponent(docName)}`,
    awareness: provider.awareness,
    get status(): ConnectionStatus {
      return provider.wsconnected ? "connected" : provider.wsconnecting ? "connecting" : "disconnected";
    },
    onStatus: (listener) => provider.on("status", ({ status }) => listener(status)),
    connect: () => provider.connect(),
    disconnect: () => provider.disconnect(),
  };
}
