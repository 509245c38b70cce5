import type { WebsocketProvider } from "y-websocket";

export type ConnectionStatus = "connected" | "connecting" | "disconnected";

const LABELS: Record<ConnectionStatus, string> = {
  connected: "Connected",
  connecting: "Connecting…",
  disconnected: "Disconnected",
};

/** Mirrors the provider's connection status on `element` (`data-status` and text). */
export function showStatus(element: HTMLElement, provider: WebsocketProvider): void {
  const render = (status: ConnectionStatus): void => {
    element.dataset.status = status;
    element.textContent = LABELS[status];
  };
  render(provider.wsconnected ? "connected" : provider.wsconnecting ? "connecting" : "disconnected");
  provider.on("status", ({ status }) => render(status));
}
