/**
 * The Hocuspocus-dialect twin of `y-websocket-client.ts`: one socket, one document,
 * the frames `@hocuspocus/provider` 4.x writes (PROTOCOL.md "Hocuspocus dialect"),
 * written with lib0 directly. Every frame starts with the document name; the first
 * one is the Auth (Token) message, which the server needs before it loads the
 * document, then SyncStep1. Awareness, stateless messages and reconnects are left out.
 */
import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import WebSocket from "ws";
import * as syncProtocol from "y-protocols/sync";
import * as Y from "yjs";
import type { BenchClient } from "./y-websocket-client.js";

/** Message types of the Hocuspocus wire format (`MessageType` in @hocuspocus/common). */
const Message = { Sync: 0, Auth: 2, SyncReply: 4 } as const;
type Message = (typeof Message)[keyof typeof Message];
const AUTH_TOKEN = 0;
/** The provider version announced in the Auth frame; 4.x gets the server's ping keep-alive. */
const PROVIDER_VERSION = "4.8.0";
/** Keep-alive frames carry no document name: a lone 0x09 is answered with a lone 0x0a. */
const PING = 0x09;
const PONG = new Uint8Array([0x0a]);

const REMOTE = Symbol("remote");

interface Waiter {
  readonly startedAt: number;
  readonly resolve: (ms: number) => void;
  readonly reject: (error: Error) => void;
}

/** Opens `url` (the server's Hocuspocus endpoint) and joins `name` at once. */
export function connectHocuspocus(url: string, name: string, token = ""): BenchClient {
  const startedAt = performance.now();
  const doc = new Y.Doc();
  const ws = new WebSocket(url);
  const unsent: Uint8Array[] = [];
  const waiters: Waiter[] = [];
  let failure: Error | undefined;

  const frame = (type: Message, write: (encoder: encoding.Encoder) => void): Uint8Array => {
    const encoder = encoding.createEncoder();
    encoding.writeVarString(encoder, name);
    encoding.writeVarUint(encoder, type);
    write(encoder);
    return encoding.toUint8Array(encoder);
  };
  const sendFrame = (bytes: Uint8Array): void => {
    if (ws.readyState === WebSocket.OPEN) ws.send(bytes);
    else if (ws.readyState === WebSocket.CONNECTING) unsent.push(bytes);
    else throw new Error(`socket to ${url} is closed: cannot send`);
  };
  const expectSyncStep2 = (from: number): Promise<number> => {
    if (failure) return Promise.reject(failure);
    return new Promise((resolve, reject) => waiters.push({ startedAt: from, resolve, reject }));
  };
  const fail = (error: Error): void => {
    failure ??= error;
    for (const waiter of waiters.splice(0)) waiter.reject(failure);
  };

  const onUpdate = (update: Uint8Array, origin: unknown): void => {
    if (origin !== REMOTE) sendFrame(frame(Message.Sync, (e) => syncProtocol.writeUpdate(e, update)));
  };
  doc.on("update", onUpdate);
  const synced = expectSyncStep2(startedAt);
  synced.catch(() => undefined); // as in y-websocket-client: the failure reaches whoever awaits it

  ws.binaryType = "nodebuffer";
  ws.on("open", () => {
    // The provider's order: Auth, then SyncStep1 without waiting for Authenticated.
    ws.send(
      frame(Message.Auth, (e) => {
        encoding.writeVarUint(e, AUTH_TOKEN);
        encoding.writeVarString(e, token);
        encoding.writeVarString(e, PROVIDER_VERSION);
      }),
    );
    ws.send(frame(Message.Sync, (e) => syncProtocol.writeSyncStep1(e, doc)));
    for (const bytes of unsent.splice(0)) ws.send(bytes);
  });
  const receive = (bytes: Uint8Array): void => {
    if (bytes.length === 1 && bytes[0] === PING) return void ws.send(PONG);
    const decoder = decoding.createDecoder(bytes);
    decoding.readVarString(decoder); // the document name: this client has only one
    const type = decoding.readVarUint(decoder);
    // Authenticated, SyncStatus acks, awareness: nothing to do for a benchmark client.
    if (type !== Message.Sync && type !== Message.SyncReply) return;
    const reply = encoding.createEncoder();
    encoding.writeVarString(reply, name);
    encoding.writeVarUint(reply, Message.Sync);
    const before = encoding.length(reply);
    const step = syncProtocol.readSyncMessage(decoder, reply, doc, REMOTE);
    // The server's SyncStep1 is answered with our SyncStep2, as the provider does.
    if (encoding.length(reply) > before) ws.send(encoding.toUint8Array(reply));
    if (step === syncProtocol.messageYjsSyncStep2) {
      const waiter = waiters.shift();
      waiter?.resolve(performance.now() - waiter.startedAt);
    }
  };
  ws.on("message", (data: Buffer, isBinary: boolean) => {
    try {
      if (!isBinary) throw new Error("the server sent a text frame");
      receive(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    } catch (error) {
      fail(error instanceof Error ? error : new Error(String(error)));
      ws.terminate();
    }
  });
  ws.on("error", (error) => fail(error));
  ws.on("close", (code, reason) => {
    doc.off("update", onUpdate);
    fail(new Error(`socket to ${url} closed (${code} ${reason.toString()}) before the sync completed`));
  });

  return {
    doc,
    synced,
    send: (update) => Y.applyUpdate(doc, update),
    roundTrip() {
      const answered = expectSyncStep2(performance.now());
      sendFrame(frame(Message.Sync, (e) => syncProtocol.writeSyncStep1(e, doc)));
      return answered;
    },
    bufferedAmount: () => ws.bufferedAmount,
    async close() {
      if (ws.readyState === WebSocket.CLOSED) return;
      const closed = new Promise<void>((resolve) => ws.once("close", () => resolve()));
      ws.close();
      await closed;
    },
  };
}
