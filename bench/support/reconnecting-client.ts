/**
 * The minimal y-websocket client of `y-websocket-client.ts`, plus what a soak needs:
 * it keeps its document across socket losses and reconnects on its own with a
 * jittered exponential backoff. Like the stock provider it resends nothing by hand:
 * on every (re)connect the server's SyncStep1 is answered with a SyncStep2 holding
 * every local change the server lacks, edits made offline included.
 */
import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import WebSocket from "ws";
import * as syncProtocol from "y-protocols/sync";
import * as Y from "yjs";

const MESSAGE_SYNC = 0;

/** Origin of updates that came from the server: they are applied to `doc`, never sent back. */
export const REMOTE = Symbol("remote");

/** Options of {@link ReconnectingClient}. */
export interface ReconnectOptions {
  /** First delay before a reconnect; doubled per failed attempt. @default 100 */
  minBackoffMs?: number;
  /** Longest delay between reconnect attempts. @default 2000 */
  maxBackoffMs?: number;
  /**
   * Source address of the socket, e.g. one of 127.0.0.0/8, so that hundreds of
   * clients on one machine stay under the server's `maxConnectionsPerIp`.
   * @default the system's choice
   */
  localAddress?: string;
}

/** A y-websocket client that survives server restarts, stalls and dropped sockets. */
export class ReconnectingClient {
  readonly doc = new Y.Doc();
  /** Sockets opened after the first one. */
  reconnects = 0;
  /** Socket errors seen (each is followed by a close and a reconnect). */
  errors = 0;
  lastError: Error | undefined;
  /** Close codes of sockets that closed, with their counts (1006: no close frame). */
  readonly closeCodes = new Map<number, number>();
  private ws: WebSocket | undefined;
  private attempt = 0;
  private syncedNow = false;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private waiters: (() => void)[] = [];
  private readonly minBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly localAddress: string | undefined;

  constructor(
    readonly url: string,
    readonly docId: string,
    options: ReconnectOptions = {},
  ) {
    this.minBackoffMs = options.minBackoffMs ?? 100;
    this.maxBackoffMs = options.maxBackoffMs ?? 2000;
    this.localAddress = options.localAddress;
    this.doc.on("update", this.onUpdate);
    this.open();
  }

  /** Open, and the server's SyncStep2 since the last (re)connect has been applied. */
  get synced(): boolean {
    return this.syncedNow;
  }

  /** Resolves once {@link synced} is true. */
  whenSynced(): Promise<void> {
    if (this.syncedNow) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Closes the socket for good (no reconnect). */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.doc.off("update", this.onUpdate);
    this.ws?.terminate();
  }

  private readonly onUpdate = (update: Uint8Array, origin: unknown): void => {
    if (origin === REMOTE) return;
    // While disconnected the change stays in `doc` only: the next sync carries it.
    if (this.ws?.readyState === WebSocket.OPEN) {
      this.ws.send(syncFrame((encoder) => syncProtocol.writeUpdate(encoder, update)));
    }
  };

  private open(): void {
    const ws = new WebSocket(
      `${this.url}/${encodeURIComponent(this.docId)}`,
      this.localAddress === undefined ? {} : { localAddress: this.localAddress },
    );
    this.ws = ws;
    this.syncedNow = false;
    ws.binaryType = "nodebuffer";
    ws.on("open", () => ws.send(syncFrame((encoder) => syncProtocol.writeSyncStep1(encoder, this.doc))));
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      try {
        if (!isBinary) throw new Error("the server sent a text frame");
        this.receive(ws, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      } catch (error) {
        this.noteError(error);
        ws.terminate();
      }
    });
    // Every error is followed by "close", which schedules the reconnect.
    ws.on("error", (error) => this.noteError(error));
    ws.on("close", (code: number) => {
      this.syncedNow = false;
      this.closeCodes.set(code, (this.closeCodes.get(code) ?? 0) + 1);
      if (this.closed) return;
      const delay = Math.min(this.maxBackoffMs, this.minBackoffMs * 2 ** this.attempt);
      this.attempt++;
      this.timer = setTimeout(
        () => {
          this.reconnects++;
          this.open();
        },
        delay * (0.5 + Math.random() / 2),
      );
    });
  }

  private receive(ws: WebSocket, frame: Uint8Array): void {
    const decoder = decoding.createDecoder(frame);
    if (decoding.readVarUint(decoder) !== MESSAGE_SYNC) return; // awareness and keep-alives
    const reply = encoding.createEncoder();
    encoding.writeVarUint(reply, MESSAGE_SYNC);
    const step = syncProtocol.readSyncMessage(decoder, reply, this.doc, REMOTE);
    if (encoding.length(reply) > 1) ws.send(encoding.toUint8Array(reply));
    if (step === syncProtocol.messageYjsSyncStep2 && !this.syncedNow) {
      this.syncedNow = true;
      this.attempt = 0;
      for (const resolve of this.waiters.splice(0)) resolve();
    }
  }

  private noteError(error: unknown): void {
    this.errors++;
    this.lastError = error instanceof Error ? error : new Error(String(error));
  }
}

function syncFrame(write: (encoder: encoding.Encoder) => void): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, MESSAGE_SYNC);
  write(encoder);
  return encoding.toUint8Array(encoder);
}
