export type ConnectionStatus = "connected" | "connecting" | "disconnected";

/**
 * A provider's connection status as both stock providers report it: y-websocket's
 * `WebsocketProvider` and `@hocuspocus/provider` emit `status` with `{ status }`
 * (the same three words), but keep the current one in different places.
 */
export interface StatusSource {
  readonly status: ConnectionStatus;
  onStatus(listener: (status: ConnectionStatus) => void): void;
}

const LABELS: Record<ConnectionStatus, string> = {
  connected: "Connected",
  connecting: "Connecting…",
  disconnected: "Disconnected",
};

/** Mirrors a provider's connection status on `element` (`data-status` and text). */
export function showStatus(element: HTMLElement, source: StatusSource): void {
  const render = (status: ConnectionStatus): void => {
    element.dataset.status = status;
    element.textContent = LABELS[status];
  };
  render(source.status);
  source.onStatus(render);
}
