import {
  HocuspocusProvider as ProviderV4,
  HocuspocusProviderWebsocket as SocketV4,
} from "@hocuspocus/provider";
import {
  HocuspocusProvider as ProviderV3,
  HocuspocusProviderWebsocket as SocketV3,
} from "@hocuspocus/provider-v3";
import WebSocket from "ws";
import type { Awareness } from "y-protocols/awareness";
import * as Y from "yjs";
import { eventually } from "./eventually.js";

/** The part of a stock `HocuspocusProvider` (v3 or v4) the specs use. */
export interface StockProvider {
  readonly awareness: Awareness | null;
  readonly isSynced: boolean;
  readonly isAuthenticated: boolean;
  readonly authorizedScope: string | undefined;
  readonly unsyncedChanges: number;
  readonly hasUnsyncedChanges: boolean;
  configuration: { token: string | (() => string) | (() => Promise<string>) | null };
  sendStateless(payload: string): void;
  sendToken(): Promise<void>;
  on(event: string, listener: (...args: never[]) => void): unknown;
  destroy(): void;
}

/** The part of a stock `HocuspocusProviderWebsocket` the specs use. */
export interface StockSocket {
  readonly status: string;
  webSocket: { terminate?: () => void; close(): void } | null;
  disconnect(): void;
  connect(): Promise<unknown>;
  on(event: string, listener: (...args: never[]) => void): unknown;
  destroy(): void;
}

/** One major version of the stock provider, constructed the same way for both. */
export interface ProviderVersion {
  readonly name: "v3" | "v4";
  /** `options`: more `HocuspocusProviderWebsocket` options (e.g. `messageReconnectTimeout`). */
  socket(url: string, options?: object): StockSocket;
  /** `options`: more `HocuspocusProvider` options (e.g. `sessionAwareness`, v4 only). */
  provider(
    socket: StockSocket,
    name: string,
    doc: Y.Doc,
    token: string | null,
    options?: object,
  ): StockProvider;
}

/** Reconnect fast in specs (the stock defaults wait 1 s, doubling up to 30 s). */
const RETRY = { delay: 50, minDelay: 50, maxDelay: 300, factor: 1.5 } as const;
const polyfill = WebSocket as unknown as typeof globalThis.WebSocket;

/** A provider on a socket it does not own attaches itself only when told to. */
function attached<T extends { attach(): void }>(provider: T): T {
  provider.attach();
  return provider;
}

/** `@hocuspocus/provider` 3.x and 4.x, unmodified (devDependencies `@hocuspocus/provider-v3`, `@hocuspocus/provider`). */
export const PROVIDER_VERSIONS: readonly ProviderVersion[] = [
  {
    name: "v3",
    socket: (url, options = {}) => new SocketV3({ url, WebSocketPolyfill: polyfill, ...RETRY, ...options }),
    provider: (socket, name, document, token, options = {}) =>
      attached(new ProviderV3({ websocketProvider: socket as SocketV3, name, document, token, ...options })),
  },
  {
    name: "v4",
    socket: (url, options = {}) => new SocketV4({ url, WebSocketPolyfill: polyfill, ...RETRY, ...options }),
    provider: (socket, name, document, token, options = {}) =>
      attached(new ProviderV4({ websocketProvider: socket as SocketV4, name, document, token, ...options })),
  },
];

/** A stock provider with its own document, and what it reported. */
export interface HocuspocusClient {
  readonly doc: Y.Doc;
  readonly text: Y.Text;
  readonly provider: StockProvider;
  readonly socket: StockSocket;
  /** Scopes of `authenticated` events, reasons of `authenticationFailed` events, stateless payloads, close reasons. */
  readonly events: { authenticated: string[]; denied: string[]; stateless: string[]; closed: string[] };
  destroy(): void;
}

/**
 * Connects a stock provider for `name` to `url` (the server's Hocuspocus endpoint),
 * on `options.socket` when given (multiplexing) or on a socket of its own.
 */
export function connectHocuspocus(
  version: ProviderVersion,
  url: string,
  name: string,
  options: { token?: string | null; socket?: StockSocket; doc?: Y.Doc; provider?: object } = {},
): HocuspocusClient {
  const doc = options.doc ?? new Y.Doc();
  const socket = options.socket ?? version.socket(url);
  const provider = version.provider(socket, name, doc, options.token ?? null, options.provider);
  const events = {
    authenticated: [] as string[],
    denied: [] as string[],
    stateless: [] as string[],
    closed: [] as string[],
  };
  provider.on("authenticated", ({ scope }: { scope: string }) => events.authenticated.push(scope));
  provider.on("authenticationFailed", ({ reason }: { reason: string }) => events.denied.push(reason));
  provider.on("stateless", ({ payload }: { payload: string }) => events.stateless.push(payload));
  provider.on("close", ({ event }: { event: { reason: string } }) => events.closed.push(event.reason));
  return {
    doc,
    text: doc.getText("text"),
    provider,
    socket,
    events,
    destroy: () => {
      provider.destroy();
      if (!options.socket) socket.destroy();
      doc.destroy();
    },
  };
}

/** Resolves once the provider has completed its first sync with the server. */
export function hpSynced(client: HocuspocusClient, timeoutMs = 5000): Promise<void> {
  return eventually(() => {
    if (!client.provider.isSynced) throw new Error(`provider not synced yet`);
  }, timeoutMs);
}

/** Resolves once every change the provider sent has been acknowledged by the server. */
export function allAcknowledged(client: HocuspocusClient, timeoutMs = 5000): Promise<void> {
  return eventually(() => {
    if (client.provider.hasUnsyncedChanges)
      throw new Error(`${client.provider.unsyncedChanges} unacknowledged changes`);
  }, timeoutMs);
}
