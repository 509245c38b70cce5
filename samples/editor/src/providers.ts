// The two stock providers the samples connect with, behind one small shape so a
// page can pick either from its query string.
import type { HocuspocusProvider } from "@hocuspocus/provider";
import type { Awareness } from "y-protocols/awareness";
import type { WebsocketProvider } from "y-websocket";
import type { StatusSource } from "./status.js";

export type ProviderKind = "hocuspocus" | "y-websocket";

const PROVIDER_KINDS: readonly ProviderKind[] = ["hocuspocus", "y-websocket"];

/** How each provider is called on the page. */
export const PROVIDER_LABELS: Record<ProviderKind, string> = {
  hocuspocus: "@hocuspocus/provider",
  "y-websocket": "y-websocket",
};

/** Where the page's server is, as the query string tells (see {@link serverLocation}). */
export interface ServerLocation {
  /** `ws://host` or `wss://host` of the page itself. */
  origin: string;
  /** `http://host` or `https://host`: the same server's HTTP side (the history endpoint, `/api/history/…`). */
  httpOrigin: string;
  /** y-websocket documents live at `<origin><prefix>/<name>` (`opstream serve --prefix`). */
  prefix: string;
  /** The Hocuspocus endpoint, `<origin><hocuspocusPath>` (option `transport.hocuspocusPath`). */
  hocuspocusPath: string;
}

/**
 * A provider of either kind (`provider` is the stock object itself), with what
 * the pages need from it: status, awareness, connect and disconnect.
 */
export type SampleProvider = (
  | { readonly kind: "hocuspocus"; readonly provider: HocuspocusProvider }
  | { readonly kind: "y-websocket"; readonly provider: WebsocketProvider }
) &
  StatusSource & {
    /** The URL the provider's WebSocket connects to. */
    readonly url: string;
    readonly awareness: Awareness;
    connect(): void;
    disconnect(): void;
  };

/**
 * The server location from the page's own address and its query string:
 * `?prefix=/collab` when the server runs with `--prefix /collab`, `?hocuspocusPath=`
 * when its Hocuspocus endpoint is not at `/hocuspocus`.
 */
export function serverLocation(params: URLSearchParams): ServerLocation {
  const origin = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}`;
  const prefix = (params.get("prefix") ?? "").replace(/\/+$/, "");
  const hocuspocusPath = params.get("hocuspocusPath") ?? "/hocuspocus";
  return {
    origin,
    httpOrigin: `${location.protocol === "https:" ? "https" : "http"}://${location.host}`,
    prefix,
    hocuspocusPath: hocuspocusPath.startsWith("/") ? hocuspocusPath : `/${hocuspocusPath}`,
  };
}

/** `value` if it names a provider, else `fallback`. */
export function providerKind(value: string | null, fallback: ProviderKind): ProviderKind {
  return PROVIDER_KINDS.find((kind) => kind === value) ?? fallback;
}
