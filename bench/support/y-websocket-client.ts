/**
 * A minimal y-websocket client for benchmarks: `ws` plus y-protocols' sync messages,
 * no awareness, no reconnects, no BroadcastChannel. It speaks the same frames as
 * the stock `WebsocketProvider` (PROTOCOL.md) but costs the measuring process
 * almost nothing beyond Yjs itself.
 */
import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import WebSocket from "ws";
import * as syncProtocol from "y-protocols/sync";
import * as Y from "yjs";

const MESSAGE_SYNC = 0;

/** Origin of updates that came from the server: they are applied to `doc`, never sent back. */
const REMOTE = Symbol("remote");

export interface BenchClient {
  /** The client's replica. Local changes to it are sent to the server as Update frames. */
  readonly doc: Y.Doc;
  /**
   * Milliseconds from `connect()` until the server's first SyncStep2 has been applied
   * to `doc`. Rejects if the socket fails or closes first.
   */
  readonly synced: Promise<number>;
  /** Applies `update` to `doc`, which sends it to the server (buffered until the socket opens). */
  send(update: Uint8Array): void;
  /**
   * Sends a SyncStep1 and resolves with the milliseconds until the answering
   * SyncStep2. The server answers only once every update it received earlier is
   * durable, so this is also a "flushed" barrier.
   */
  roundTrip(): Promise<number>;
  /** Bytes handed to the socket but not yet written to the kernel: the sender's backpressure. */
  bufferedAmount(): number;
  /** Closes the socket and resolves once it is closed. Idempotent. */
  close(): Promise<void>;
}

interface Waiter {
  readonly startedAt: number;
  readonly resolve: (ms: number) => void;
  readonly reject: (error: Error) => void;
}

/** Opens `<url>/<docId>` (the default `/` prefix) and starts the y-websocket sync at once. */
export function connect(url: string, docId: string): BenchClient {
  const startedAt = performance.now();
  const doc = new Y.Doc();
  const ws = new WebSocket(`${url}/${encodeURIComponent(docId)}`);
  const unsent: Uint8Array[] = [];
  // SyncStep2 answers arrive in the order their SyncStep1s were sent.
  const waiters: Waiter[] = [];
  let failure: Error | undefined;

  const sendFrame = (frame: Uint8Array): void => {
    if (ws.readyState === WebSocket.OPEN) ws.send(frame);
    else if (ws.readyState === WebSocket.CONNECTING) unsent.push(frame);
    else throw new Error(`socket to ${url} is closed: cannot send`);
  };
  const syncFrame = (write: (encoder: encoding.Encoder) => void): Uint8Array => {
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, MESSAGE_SYNC);
    write(encoder);
    return encoding.toUint8Array(encoder);
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
    if (origin !== REMOTE) sendFrame(syncFrame((encoder) => syncProtocol.writeUpdate(encoder, update)));
  };
  doc.on("update", onUpdate);

  const synced = expectSyncStep2(startedAt);
  // Callers that only use roundTrip() may never await `synced`; its failure still
  // reaches whoever does, and every other waiter rejects with it too.
  synced.catch(() => undefined);

  ws.binaryType = "nodebuffer";
  ws.on("open", () => {
    // Like the stock provider: announce our state vector first, then what was queued.
    ws.send(syncFrame((encoder) => syncProtocol.writeSyncStep1(encoder, doc)));
    for (const frame of unsent.splice(0)) ws.send(frame);
  });
  const receive = (frame: Uint8Array): void => {
    const decoder = decoding.createDecoder(frame);
    if (decoding.readVarUint(decoder) !== MESSAGE_SYNC) return; // awareness and keep-alives
    const reply = encoding.createEncoder();
    encoding.writeVarUint(reply, MESSAGE_SYNC);
    const step = syncProtocol.readSyncMessage(decoder, reply, doc, REMOTE);
    // A SyncStep1 from the server is answered with our SyncStep2, as the provider does.
    if (encoding.length(reply) > 1) ws.send(encoding.toUint8Array(reply));
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
      sendFrame(syncFrame((encoder) => syncProtocol.writeSyncStep1(encoder, doc)));
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
