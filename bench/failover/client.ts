/**
 * The failover bench's client: a lean client (`ws` plus y-protocols' sync messages,
 * no awareness, no BroadcastChannel) with what a node failure needs. It keeps a
 * Y.Doc of **its own edits only**: it builds its updates with Yjs, and answers the
 * server's SyncStep1 on every (re)connect with a SyncStep2 holding every edit of
 * its own the server lacks, edits made while no socket was open included, as the
 * stock providers do. What others type it does not apply: it hands the bytes of
 * every update and SyncStep2 it receives to the fleet, which scans them for
 * tokens, and reads only their clocks (once a second), so its SyncStep1 after a
 * reconnect asks for what it lacks, like a stock provider's replica. The
 * generator must not cost more than the servers it measures (bench/README.md). Each new socket may go to a different node,
 * as a load balancer would place it. Speaks either wire dialect (PROTOCOL.md).
 */
import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import WebSocket from "ws";
import * as syncProtocol from "y-protocols/sync";
import * as Y from "yjs";
import { ReceivedClocks } from "./received-clocks.js";

/** How one wire format frames a document's sync messages. */
export interface Dialect {
  readonly name: "y-websocket" | "hocuspocus";
  /** The socket URL for `docId` on the node at `base` (`ws://host:port`). */
  url(base: string, docId: string): string;
  /** Frames sent first on every socket, before the SyncStep1 (the Hocuspocus Auth). */
  hello(docId: string): Uint8Array[];
  /** A frame carrying the sync message `write` writes. */
  sync(docId: string, write: (encoder: encoding.Encoder) => void): Uint8Array;
  /**
   * What to do with a received frame: a decoder at the sync message it carries, a
   * frame to answer with at once (a keep-alive), or nothing.
   */
  read(frame: Uint8Array): { decoder: decoding.Decoder } | { answer: Uint8Array } | null;
}

const Y_WEBSOCKET_SYNC = 0;

export const Y_WEBSOCKET: Dialect = {
  name: "y-websocket",
  url: (base, docId) => `${base}/${encodeURIComponent(docId)}`,
  hello: () => [],
  sync(_docId, write) {
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, Y_WEBSOCKET_SYNC);
    write(encoder);
    return encoding.toUint8Array(encoder);
  },
  read(frame) {
    const decoder = decoding.createDecoder(frame);
    // Awareness and keep-alives need no answer from a benchmark client.
    return decoding.readVarUint(decoder) === Y_WEBSOCKET_SYNC ? { decoder } : null;
  },
};

/** Message types of the Hocuspocus wire format (`MessageType` in @hocuspocus/common). */
const Hocus = { Sync: 0, Auth: 2, SyncReply: 4 } as const;
const HOCUS_AUTH_TOKEN = 0;
/** Announced in the Auth frame; 4.x gets the server's ping keep-alive. */
const HOCUS_PROVIDER_VERSION = "4.8.0";
/** Keep-alive frames carry no document name: a lone 0x09 is answered with a lone 0x0a. */
const HOCUS_PING = 0x09;
const HOCUS_PONG = new Uint8Array([0x0a]);

function hocusFrame(docId: string, type: number, write: (encoder: encoding.Encoder) => void): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarString(encoder, docId);
  encoding.writeVarUint(encoder, type);
  write(encoder);
  return encoding.toUint8Array(encoder);
}

export const HOCUSPOCUS: Dialect = {
  name: "hocuspocus",
  url: (base) => base,
  hello: (docId) => [
    hocusFrame(docId, Hocus.Auth, (encoder) => {
      encoding.writeVarUint(encoder, HOCUS_AUTH_TOKEN);
      encoding.writeVarString(encoder, "");
      encoding.writeVarString(encoder, HOCUS_PROVIDER_VERSION);
    }),
  ],
  sync: (docId, write) => hocusFrame(docId, Hocus.Sync, write),
  read(frame) {
    if (frame.length === 1 && frame[0] === HOCUS_PING) return { answer: HOCUS_PONG };
    const decoder = decoding.createDecoder(frame);
    decoding.readVarString(decoder); // the document name: a client here has only one
    const type = decoding.readVarUint(decoder);
    // Authenticated, SyncStatus acks and awareness need no answer.
    return type === Hocus.Sync || type === Hocus.SyncReply ? { decoder } : null;
  },
};

/** A socket that closed, as the bench accounts for it. */
export interface CloseEvent {
  readonly client: FailoverClient;
  /** The node the socket was connected (or connecting) to. */
  readonly node: number;
  /** The close code; 1006 when no close frame came (a refused or killed connection). */
  readonly code: number;
  /** Whether the socket had opened: a refused connection attempt is not a dropped socket. */
  readonly opened: boolean;
  /** Closed by the bench itself (moving the client, or the end of the run). */
  readonly intentional: boolean;
}

/** What the bench decides for its clients. */
export interface Placement {
  /** The `ws://host:port` base of `node` now (a restarted peer may have a new port). */
  baseUrl(node: number): string;
  /** The node a client whose socket closed should connect to next, asked when it reconnects. */
  reconnectTarget(client: FailoverClient): number;
  onClose(event: CloseEvent): void;
  /**
   * Bytes of an update or SyncStep2 `client` received at `at` (performance.now()),
   * holding others' edits; a SyncStep2 after a (re)connect holds the whole document.
   */
  received(client: FailoverClient, bytes: Uint8Array, at: number): void;
}

/** Reconnect backoff of the stock y-websocket provider: 100 ms doubling to 2.5 s (here jittered). */
const BACKOFF = { minMs: 100, maxMs: 2500 } as const;

/** One socket of a client, and what its close is reported with. */
interface Socket {
  readonly ws: WebSocket;
  readonly node: number;
  opened: boolean;
  intentional: boolean;
}

/** One user of one document: its own edits, and at most one socket at a time to some node. */
export class FailoverClient {
  /** This client's own edits only (see the module comment). */
  readonly doc = new Y.Doc();
  readonly text = this.doc.getText("t");
  /** The node the socket is on (or was last on, while no socket is open). */
  node: number;
  /** Sockets opened after the first one. */
  reconnects = 0;
  /** Socket errors (refused connections included); each is followed by a close. */
  errors = 0;
  lastError: Error | undefined;
  private socket: Socket | undefined;
  private syncedNow = false;
  /** Updates received since {@link fold} last read them. */
  private unfolded: Uint8Array[] = [];
  /** What this client received of each Yjs client, as far as folded (own edits aside). */
  private readonly received = new ReceivedClocks();
  private closedForGood = false;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private waiters: (() => void)[] = [];

  constructor(
    /** Unique in the run; also the prefix of the client's tokens. */
    readonly id: number,
    readonly docId: string,
    /** The node the client belongs to; it returns there once that node is back. */
    readonly home: number,
    private readonly dialect: Dialect,
    private readonly placement: Placement,
  ) {
    this.node = home;
    this.doc.on("update", this.onUpdate);
  }

  /** Open, and the server's SyncStep2 since the last (re)connect has been applied. */
  get synced(): boolean {
    return this.syncedNow;
  }

  whenSynced(): Promise<void> {
    if (this.syncedNow) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /**
   * Appends `token` to this client's own run of text, right after its previous one
   * (the doc holds nothing else). Yjs merges the consecutive inserts of a run into
   * one item in every replica, so a token costs its characters, not an item.
   */
  type(token: string): void {
    this.text.insert(this.text.length, token);
  }

  /** Opens a socket to `node`, closing the current one first (an intentional close). */
  connect(node: number): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.drop();
    this.open(node);
  }

  /** Closes the socket for good. */
  close(): void {
    this.closedForGood = true;
    clearTimeout(this.timer);
    this.doc.off("update", this.onUpdate);
    this.drop();
  }

  /** Ends the current socket as an intentional close; its close event reports it. */
  private drop(): void {
    const socket = this.socket;
    if (!socket) return;
    this.socket = undefined;
    this.syncedNow = false;
    socket.intentional = true;
    socket.ws.terminate();
  }

  private readonly onUpdate = (update: Uint8Array): void => {
    // Without an open socket the change stays in the replica: the next sync carries it.
    const ws = this.socket?.ws;
    if (ws?.readyState === WebSocket.OPEN) {
      ws.send(this.dialect.sync(this.docId, (encoder) => syncProtocol.writeUpdate(encoder, update)));
    }
  };

  private open(node: number): void {
    this.node = node;
    this.syncedNow = false;
    const ws = new WebSocket(this.dialect.url(this.placement.baseUrl(node), this.docId));
    const socket: Socket = { ws, node, opened: false, intentional: false };
    this.socket = socket;
    ws.binaryType = "nodebuffer";
    ws.on("open", () => {
      socket.opened = true;
      for (const frame of this.dialect.hello(this.docId)) ws.send(frame);
      // What we received and what we typed, as a stock provider's replica would say:
      // the server answers with what we lack, not the whole document.
      ws.send(
        this.dialect.sync(this.docId, (encoder) => {
          encoding.writeVarUint(encoder, syncProtocol.messageYjsSyncStep1);
          encoding.writeVarUint8Array(encoder, Y.encodeStateVector(this.stateVector()));
        }),
      );
    });
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      if (this.socket !== socket) return;
      try {
        if (!isBinary) throw new Error("the server sent a text frame");
        this.receive(ws, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      } catch (error) {
        this.noteError(error);
        ws.terminate();
      }
    });
    // Every error is followed by "close", which reports the socket and reconnects.
    ws.on("error", (error) => this.noteError(error));
    ws.on("close", (code: number) => {
      const current = this.socket === socket;
      if (current) {
        this.socket = undefined;
        this.syncedNow = false;
      }
      this.placement.onClose({
        client: this,
        node,
        code,
        opened: socket.opened,
        intentional: socket.intentional,
      });
      if (!current || this.closedForGood) return;
      const delay = Math.min(BACKOFF.maxMs, BACKOFF.minMs * 2 ** this.attempt);
      this.attempt++;
      this.timer = setTimeout(
        () => {
          this.timer = undefined;
          this.reconnects++;
          this.open(this.placement.reconnectTarget(this));
        },
        delay * (0.5 + Math.random() / 2),
      );
    });
  }

  private receive(ws: WebSocket, frame: Uint8Array): void {
    const at = performance.now();
    const read = this.dialect.read(frame);
    if (read === null) return;
    if ("answer" in read) return void ws.send(read.answer);
    const decoder = read.decoder;
    const step = decoding.readVarUint(decoder);
    if (step === syncProtocol.messageYjsSyncStep1) {
      // The server's SyncStep1 is answered with our SyncStep2: what it lacks of our edits.
      const vector = decoding.readVarUint8Array(decoder);
      const missing = Y.encodeStateAsUpdate(this.doc, vector);
      ws.send(
        this.dialect.sync(this.docId, (encoder) => {
          encoding.writeVarUint(encoder, syncProtocol.messageYjsSyncStep2);
          encoding.writeVarUint8Array(encoder, missing);
        }),
      );
      return;
    }
    if (step !== syncProtocol.messageYjsSyncStep2 && step !== syncProtocol.messageYjsUpdate) {
      throw new Error(`unknown sync message type ${step}`);
    }
    const bytes = decoding.readVarUint8Array(decoder);
    this.unfolded.push(bytes);
    this.placement.received(this, bytes, at);
    if (step === syncProtocol.messageYjsSyncStep2 && !this.syncedNow) {
      this.syncedNow = true;
      this.attempt = 0;
      for (const resolve of this.waiters.splice(0)) resolve();
    }
  }

  /**
   * Reads the clock ranges of the updates received since the last call (Yjs's
   * update metadata, without applying them; see ReceivedClocks). The fleet calls
   * it every second, so a reconnect finds little left to read.
   */
  fold(): void {
    for (const update of this.unfolded) {
      const { from, to } = Y.parseUpdateMeta(update);
      for (const [client, end] of to) this.received.add(client, from.get(client) ?? 0, end);
    }
    this.unfolded = [];
  }

  /** What this client holds: the received updates (as a Y.Doc would count them), and its own edits. */
  private stateVector(): Map<number, number> {
    this.fold();
    const vector = this.received.vector();
    vector.set(this.doc.clientID, Y.getState(this.doc.store, this.doc.clientID));
    return vector;
  }

  private noteError(error: unknown): void {
    this.errors++;
    this.lastError = error instanceof Error ? error : new Error(String(error));
  }
}
