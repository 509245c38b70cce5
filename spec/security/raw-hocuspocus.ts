import { once } from "node:events";
import * as encoding from "lib0/encoding";
import WebSocket from "ws";

/** A client frame built by hand (PROTOCOL.md, "Hocuspocus dialect"): the routing key, the type, then `write`. */
function frame(key: string, type: number, write: (e: encoding.Encoder) => void): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarString(encoder, key);
  encoding.writeVarUint(encoder, type);
  write(encoder);
  return encoding.toUint8Array(encoder);
}

/** Auth (Token) on `key`; "" is the stock provider's "no token". */
export const authFrame = (key: string, token = ""): Uint8Array =>
  frame(key, 2, (e) => {
    encoding.writeVarUint(e, 0);
    encoding.writeVarString(e, token);
  });

/** A Sync Update on `key`. */
export const updateFrame = (key: string, update: Uint8Array): Uint8Array =>
  frame(key, 0, (e) => {
    encoding.writeVarUint(e, 2);
    encoding.writeVarUint8Array(e, update);
  });

export const PING = new Uint8Array([9]);
const PONG = 10;

/** A raw socket on a Hocuspocus endpoint, for what a stock provider cannot send. */
export class RawHocuspocusSocket {
  /** Every frame received, in order. */
  readonly frames: Uint8Array[] = [];
  /** Resolves with the close code and reason once the socket closed. */
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    ws.on("message", (data: Buffer) => this.frames.push(new Uint8Array(data)));
    // A large frame still being written when the server closes resets the socket: the close tells why.
    ws.on("error", () => undefined);
    this.closed = once(ws, "close").then(([code, reason]) => ({
      code: code as number,
      reason: String(reason),
    }));
  }

  static async open(url: string, headers: Record<string, string> = {}): Promise<RawHocuspocusSocket> {
    const socket = new RawHocuspocusSocket(new WebSocket(url, { headers }));
    await once(socket.ws, "open");
    return socket;
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(bytes: Uint8Array): void {
    this.ws.send(bytes);
  }

  /**
   * Sends a Ping and resolves at its Pong: the server handles a socket's frames in
   * order, so every frame sent before has been handled by then.
   */
  async roundTrip(): Promise<void> {
    const pongs = this.frames.filter((f) => f.length === 1 && f[0] === PONG).length;
    this.send(PING);
    await new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (this.frames.filter((f) => f.length === 1 && f[0] === PONG).length > pongs) {
          this.ws.off("message", check);
          resolve();
        }
      };
      this.ws.on("message", check);
      this.closed.then(() => reject(new Error("closed before the Pong")), reject);
    });
  }

  /** Resolves at the next frame from the server, or when the socket closes. */
  answer(): Promise<"frame" | "closed"> {
    if (!this.isOpen) return Promise.resolve("closed");
    return new Promise((resolve) => {
      const onFrame = (): void => {
        this.ws.off("close", onClose);
        resolve("frame");
      };
      const onClose = (): void => {
        this.ws.off("message", onFrame);
        resolve("closed");
      };
      this.ws.once("message", onFrame);
      this.ws.once("close", onClose);
    });
  }

  close(): void {
    this.ws.close();
  }
}
