import { HocuspocusProvider, WebSocketStatus } from "@hocuspocus/provider";
import type { Awareness } from "y-protocols/awareness";
import type * as Y from "yjs";
import type { SampleProvider, ServerLocation } from "./providers.js";
import type { ConnectionStatus } from "./status.js";

export type HocuspocusSampleProvider = Extract<SampleProvider, { kind: "hocuspocus" }>;

/**
 * `@hocuspocus/provider` for `docName` on the server's Hocuspocus endpoint
 * (`<origin><hocuspocusPath>`). It connects at once; `connect()` reconnects after
 * `disconnect()`.
 */
export function createHocuspocusProvider(
  docName: string,
  doc: Y.Doc,
  server: ServerLocation,
  token: string | undefined,
): HocuspocusSampleProvider {
  const url = `${server.origin}${server.hocuspocusPath}`;
  // Given a `url`, the provider opens (and owns) its socket at once; the page
  // reads the socket's current status instead of waiting for the first event.
  const provider = new HocuspocusProvider({
    url,
    name: docName,
    document: doc,
    // Sent in the provider's first message, before it syncs; without one the
    // provider sends an empty token, which the server's authorizer sees as none.
    token: token ?? null,
  });
  const socket = provider.configuration.websocketProvider;
  return {
    kind: "hocuspocus",
    provider,
    url,
    awareness: awarenessOf(provider),
    get status(): ConnectionStatus {
      return hocuspocusStatus(socket.status);
    },
    onStatus: (listener) =>
      provider.on("status", ({ status }: { status: WebSocketStatus }) => listener(hocuspocusStatus(status))),
    // The provider's connect() drops an attempt in progress and starts over;
    // only a disconnected socket needs one.
    connect: () => {
      if (socket.status === WebSocketStatus.Disconnected) void provider.connect();
    },
    disconnect: () => provider.disconnect(),
  };
}

function hocuspocusStatus(status: WebSocketStatus): ConnectionStatus {
  switch (status) {
    case WebSocketStatus.Connected:
      return "connected";
    case WebSocketStatus.Connecting:
      return "connecting";
    case WebSocketStatus.Disconnected:
      return "disconnected";
  }
}

function awarenessOf(provider: HocuspocusProvider): Awareness {
  // Only null when the caller passed `awareness: null`, which this page never does.
  if (!provider.awareness) throw new Error("the Hocuspocus provider was created without awareness");
  return provider.awareness;
}
