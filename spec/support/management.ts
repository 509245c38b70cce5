import type { Client } from "./clients.js";

/** The management token specs configure. */
export const MANAGEMENT_TOKEN = "management-token-for-specs";

/** Calls the management API of `base` (an http://host:port URL). */
export async function api(
  base: string,
  method: string,
  path: string,
  token: string | null = MANAGEMENT_TOKEN,
): Promise<Response> {
  return fetch(`${base}/api/documents${path}`, {
    method,
    headers: token === null ? {} : { authorization: `Bearer ${token}` },
  });
}

/** Stops `client` from reconnecting once the server closes it with 4004 (a deleted document). */
export function closeCodes(client: Client): number[] {
  const codes: number[] = [];
  client.provider.on("connection-close", (event: CloseEvent | null) => {
    if (!event) return;
    codes.push(event.code);
    if (event.code === 4004) client.provider.disconnect();
  });
  return codes;
}
