/**
 * The floor for latency: a y-websocket relay with no document state and no
 * persistence. It decodes each frame's message type and forwards Updates (and the
 * update inside a SyncStep2) and awareness to the other sockets of the same
 * document, unchanged. A client's SyncStep1 gets an empty SyncStep2, so stock clients
 * count as synced; nothing else is answered.
 *
 * Prints `{"listening":<port>}` once it accepts connections.
 */
import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocketServer, WebSocket } from "ws";
import * as syncProtocol from "y-protocols/sync";

const MESSAGE_SYNC = 0;
const MESSAGE_AWARENESS = 1;

/** `sync SyncStep2 <empty update>`: an update with no structs and an empty delete set. */
const EMPTY_SYNC_STEP2 = (() => {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, MESSAGE_SYNC);
  encoding.writeVarUint(encoder, syncProtocol.messageYjsSyncStep2);
  encoding.writeVarUint8Array(encoder, new Uint8Array([0, 0]));
  return encoding.toUint8Array(encoder);
})();

const rooms = new Map<string, Set<WebSocket>>();

function forward(from: WebSocket, room: Set<WebSocket>, frame: Uint8Array): void {
  for (const socket of room) if (socket !== from && socket.readyState === WebSocket.OPEN) socket.send(frame);
}

function handle(socket: WebSocket, room: Set<WebSocket>, frame: Uint8Array): void {
  const decoder = decoding.createDecoder(frame);
  const type = decoding.readVarUint(decoder);
  if (type === MESSAGE_AWARENESS) return forward(socket, room, frame);
  if (type !== MESSAGE_SYNC) return;
  const step = decoding.readVarUint(decoder);
  if (step === syncProtocol.messageYjsSyncStep1) return void socket.send(EMPTY_SYNC_STEP2);
  if (step === syncProtocol.messageYjsUpdate) return forward(socket, room, frame);
  if (step === syncProtocol.messageYjsSyncStep2) {
    // A SyncStep2 carries an update too; the others receive it as an ordinary Update.
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, MESSAGE_SYNC);
    encoding.writeVarUint(encoder, syncProtocol.messageYjsUpdate);
    encoding.writeVarUint8Array(encoder, decoding.readVarUint8Array(decoder));
    forward(socket, room, encoding.toUint8Array(encoder));
  }
}

const http = createServer((_request, response) => response.writeHead(404).end());
const wss = new WebSocketServer({ server: http });
wss.on("connection", (socket, request) => {
  const name = decodeURIComponent((request.url ?? "/").slice(1).split("?")[0] ?? "");
  let room = rooms.get(name);
  if (!room) rooms.set(name, (room = new Set()));
  const members = room;
  members.add(socket);
  socket.on("message", (data: Buffer, isBinary: boolean) => {
    try {
      if (!isBinary) throw new Error("text frame");
      handle(socket, members, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    } catch (error) {
      process.stderr.write(`relay: closing a socket of ${name}: ${String(error)}\n`);
      socket.close(1007);
    }
  });
  socket.on("close", () => {
    members.delete(socket);
    if (members.size === 0) rooms.delete(name);
  });
});
http.listen(0, "127.0.0.1", () => {
  const { port } = http.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ listening: port })}\n`);
});
process.once("SIGTERM", () => process.exit(0));
