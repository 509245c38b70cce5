/**
 * The load generator's client: one socket, one document, the handshake of the
 * minimal full clients (SyncStep1 on open, after the Auth frame in the Hocuspocus
 * dialect; the server's SyncStep1 answered with a SyncStep2; Hocuspocus pings
 * answered), but no replica of the document. Incoming Updates and SyncStep2s are not
 * applied: their bytes are searched for latency tokens (tokens.ts). A sending client
 * keeps a Y.Doc of its own tokens only, so what it sends is a real Yjs update and
 * what it answers to a server's SyncStep1 is exactly what it wrote.
 *
 * With a full replica per client the generator applied every update 9 times over in
 * S1 and measured itself more than the servers (BENCHMARKS.md, "Load generator").
 */
import * as decoding from "lib0/decoding";
import WebSocket from "ws";
import * as syncProtocol from "y-protocols/sync";
import * as Y from "yjs";
import type { Dialect } from "../targets/index.js";
import { scanTokens, TEXT } from "./tokens.js";
import { framing, type Framing } from "./wire.js";

/** The state of a client that has sent nothing: what a receiver announces and answers. */
const NOTHING = new Y.Doc();

/** Wall-clock ms, comparable across the worker processes. */
export const now = (): number => performance.timeOrigin + performance.now();

/** Receives a token found in an incoming frame and the frame's arrival time (wall-clock ms). */
export type TokenListener = (sender: number, seq: number, sentAt: number, receivedAt: number) => void;

export interface LeanClientOptions {
  /** A node's base URL (`ws://127.0.0.1:<port>`). */
  readonly url: string;
  readonly dialect: Dialect;
  readonly doc: string;
  /** Called for each token in incoming Updates and SyncStep2s; without it frames are not searched. */
  readonly onToken?: TokenListener;
}

export class LeanClient {
  /**
   * Milliseconds from construction until the server's first SyncStep2 arrived.
   * Rejects if the socket fails or closes first.
   */
  readonly synced: Promise<number>;
  /** Why the socket closed or failed, once it has; undefined while it is usable. */
  failure: Error | undefined;
  private readonly startedAt = performance.now();
  private readonly framing: Framing;
  private readonly ws: WebSocket;
  private doc: Y.Doc | undefined;
  private settle: { resolve(ms: number): void; reject(error: Error): void } | undefined;
  private receivedAt = 0;

  constructor(private readonly options: LeanClientOptions) {
    this.framing = framing(options.dialect, options.url, options.doc);
    this.synced = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    // Whoever awaits `synced` sees its failure; a client nobody awaits must not crash the worker.
    this.synced.catch(() => undefined);
    this.ws = new WebSocket(this.framing.url);
    this.ws.binaryType = "nodebuffer";
    this.ws.on("open", () => {
      for (const frame of this.framing.opening()) this.ws.send(frame);
      this.ws.send(this.framing.sync((encoder) => syncProtocol.writeSyncStep1(encoder, NOTHING)));
    });
    this.ws.on("message", (data: Buffer, isBinary: boolean) => {
      try {
        if (!isBinary) throw new Error("the server sent a text frame");
        this.receive(data);
      } catch (error) {
        this.fail(error instanceof Error ? error : new Error(String(error)));
        this.ws.terminate();
      }
    });
    this.ws.on("error", (error) => this.fail(error));
    this.ws.on("close", (code, reason) =>
      this.fail(new Error(`socket to ${this.framing.url} closed (${code} ${reason.toString()})`)),
    );
  }

  /**
   * Inserts `content` at the end of this client's own text, which sends the update.
   * Returns false, inserting nothing, when the socket is not open.
   */
  send(content: string): boolean {
    if (this.ws.readyState !== WebSocket.OPEN) return false;
    if (!this.doc) {
      this.doc = new Y.Doc();
      // Encoded before the transaction's cleanup merges the new item into the previous one (Yjs merges a
      // client's consecutive inserts). The "update" event comes after that merge and writes the new
      // characters as a slice of the merged string, which V8 copies whole first: a cost per token that grew
      // with the tokens sent (0.7 ms per insert at 10,000 tokens) and made S2 measure the generator.
      this.doc.on("afterTransaction", (transaction: Y.Transaction, doc: Y.Doc) => {
        if (transaction.afterState.get(doc.clientID) === transaction.beforeState.get(doc.clientID)) return;
        const update = Y.encodeStateAsUpdate(doc, Y.encodeStateVector(transaction.beforeState));
        this.ws.send(this.framing.sync((encoder) => syncProtocol.writeUpdate(encoder, update)));
      });
    }
    const text = this.doc.getText(TEXT);
    text.insert(text.length, content);
    return true;
  }

  /** Bytes handed to the socket but not yet written to the kernel: the sender's backpressure. */
  bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  /** Closes the socket and resolves once it is closed. Idempotent. */
  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    const closed = new Promise<void>((resolve) => this.ws.once("close", () => resolve()));
    this.ws.close();
    await closed;
  }

  private receive(frame: Buffer): void {
    this.receivedAt = now();
    const incoming = this.framing.read(frame);
    if (incoming.kind === "ping") return void this.ws.send(incoming.answer);
    if (incoming.kind !== "sync") return;
    const { decoder } = incoming;
    const step = decoding.readVarUint(decoder);
    if (step === syncProtocol.messageYjsSyncStep1) {
      // The server may ask at any time (a resync): answer with what it lacks of our own tokens.
      const stateVector = decoding.readVarUint8Array(decoder);
      const doc = this.doc ?? NOTHING;
      this.ws.send(this.framing.sync((encoder) => syncProtocol.writeSyncStep2(encoder, doc, stateVector)));
      return;
    }
    if (step === syncProtocol.messageYjsSyncStep2 && this.settle) {
      this.settle.resolve(performance.now() - this.startedAt);
      this.settle = undefined;
    }
    if (this.options.onToken) scanTokens(frame, decoder.pos, this.visit);
  }

  private readonly visit = (sender: number, seq: number, sentAt: number): void =>
    this.options.onToken?.(sender, seq, sentAt, this.receivedAt);

  private fail(error: Error): void {
    this.failure ??= error;
    this.settle?.reject(this.failure);
    this.settle = undefined;
  }
}
