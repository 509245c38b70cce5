import type { ClientRequest, IncomingMessage } from "node:http";
import WebSocket, { type ClientOptions } from "ws";

/** How an upgrade ended: the open socket (101), or the HTTP status it was refused with. */
export type UpgradeOutcome = { status: 101; ws: WebSocket } | { status: number; ws?: undefined };

/** Opens a raw WebSocket and resolves with the server's answer to the upgrade. */
export function tryUpgrade(
  url: string,
  protocols: string[] = [],
  options: ClientOptions = {},
): Promise<UpgradeOutcome> {
  const ws = new WebSocket(url, protocols, options);
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve({ status: 101, ws }));
    ws.once("unexpected-response", (_request: ClientRequest, response: IncomingMessage) => {
      resolve({ status: response.statusCode ?? 0 });
      response.resume();
      ws.terminate();
    });
    ws.once("error", reject);
  });
}

/** The status the upgrade was refused with (fails on an accepted one, which it closes). */
export async function refusedWith(url: string, protocols: string[] = [], options: ClientOptions = {}) {
  const outcome = await tryUpgrade(url, protocols, options);
  outcome.ws?.close();
  return outcome.status;
}
