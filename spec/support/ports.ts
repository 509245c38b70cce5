import { once } from "node:events";
import { createServer } from "node:net";

/**
 * A port nothing listens on right now (the OS picks it), for a process that must
 * be told one (redis-server, postgres, nginx, a CLI node). Another process may
 * take it before ours binds; the launchers that care retry.
 */
export async function freePort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  await once(server, "close");
  if (address === null || typeof address === "string") throw new Error("could not find a free port");
  return address.port;
}
