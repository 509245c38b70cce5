/**
 * `@y/websocket-server` as a benchmark target: its `setupWSConnection` on a plain
 * http + ws server, as its own bin does, with no persistence. Only the cold-load
 * scenario (S4) passes `--persist-dir`: documents are then kept as one Yjs state file
 * each (bound on first open, written when the last client leaves and on SIGTERM).
 *
 * Prints `{"listening":<port>}` once it accepts connections.
 */
import { docs, setPersistence, setupWSConnection, type WSSharedDoc } from "@y/websocket-server/utils";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { WebSocketServer } from "ws";
import * as Y from "yjs";

const { values } = parseArgs({ options: { "persist-dir": { type: "string" } } });

const dir = values["persist-dir"];
const file = (name: string): string => join(dir ?? ".", `${encodeURIComponent(name)}.ystate`);
const store = (name: string, doc: Y.Doc): void => writeFileSync(file(name), Y.encodeStateAsUpdate(doc));
if (dir !== undefined) {
  setPersistence({
    provider: null,
    bindState(name: string, doc: WSSharedDoc) {
      if (existsSync(file(name))) Y.applyUpdate(doc, readFileSync(file(name)));
    },
    writeState: (name: string, doc: WSSharedDoc) => Promise.resolve(store(name, doc)),
  });
}

const http = createServer((_request, response) => response.writeHead(404).end());
const wss = new WebSocketServer({ server: http });
wss.on("connection", (socket, request) => setupWSConnection(socket, request));
http.listen(0, "127.0.0.1", () => {
  const { port } = http.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ listening: port })}\n`);
});

process.once("SIGTERM", () => {
  if (dir !== undefined) for (const [name, doc] of docs) store(name, doc);
  process.exit(0);
});
