/**
 * The two wire dialects as the lean client needs them: where to connect, what to send
 * before the SyncStep1, how a sync message is framed, and where an incoming frame's
 * sync message starts. The frames are the ones the full clients
 * (bench/support/y-websocket-client.ts, hocuspocus-client.ts) and the stock providers
 * write; PROTOCOL.md describes them.
 */
import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import type { Dialect } from "../targets/index.js";

const Y_WEBSOCKET_SYNC = 0;
/** Message types of the Hocuspocus wire format (`MessageType` in @hocuspocus/common). */
const Hocuspocus = { Sync: 0, Auth: 2, SyncReply: 4 } as const;
const AUTH_TOKEN = 0;
/** The provider version announced in the Auth frame; 4.x gets the server's ping keep-alive. */
const PROVIDER_VERSION = "4.8.0";
/** Hocuspocus keep-alive frames carry no document name: a lone 0x09 is answered with a lone 0x0a. */
const PING = 0x09;
const PONG = new Uint8Array([0x0a]);

/** What an incoming frame asks of the client. */
export type Incoming =
  /** A keep-alive: send `answer`. */
  | { readonly kind: "ping"; readonly answer: Uint8Array }
  /** A sync message; `decoder` is positioned at its step. */
  | { readonly kind: "sync"; readonly decoder: decoding.Decoder }
  /** Awareness, acknowledgements, authentication results: nothing for a benchmark client to do. */
  | { readonly kind: "other" };

/** One document's framing in one dialect. */
export interface Framing {
  /** The WebSocket URL to open. */
  readonly url: string;
  /** Frames sent on open before the SyncStep1 (Hocuspocus: the Auth message). */
  opening(): Uint8Array[];
  /** A frame holding the sync message `write` writes. */
  sync(write: (encoder: encoding.Encoder) => void): Uint8Array;
  read(frame: Uint8Array): Incoming;
}

const OTHER: Incoming = { kind: "other" };

function yWebsocket(base: string, doc: string): Framing {
  return {
    url: `${base}/${encodeURIComponent(doc)}`,
    opening: () => [],
    sync(write) {
      const encoder = encoding.createEncoder();
      encoding.writeVarUint(encoder, Y_WEBSOCKET_SYNC);
      write(encoder);
      return encoding.toUint8Array(encoder);
    },
    read(frame) {
      const decoder = decoding.createDecoder(frame);
      return decoding.readVarUint(decoder) === Y_WEBSOCKET_SYNC ? { kind: "sync", decoder } : OTHER;
    },
  };
}

function hocuspocus(base: string, doc: string): Framing {
  const frame = (type: number, write: (encoder: encoding.Encoder) => void): Uint8Array => {
    const encoder = encoding.createEncoder();
    encoding.writeVarString(encoder, doc);
    encoding.writeVarUint(encoder, type);
    write(encoder);
    return encoding.toUint8Array(encoder);
  };
  return {
    url: base,
    // The provider's order: Auth, then SyncStep1 without waiting for Authenticated.
    opening: () => [
      frame(Hocuspocus.Auth, (encoder) => {
        encoding.writeVarUint(encoder, AUTH_TOKEN);
        encoding.writeVarString(encoder, "");
        encoding.writeVarString(encoder, PROVIDER_VERSION);
      }),
    ],
    sync: (write) => frame(Hocuspocus.Sync, write),
    read(bytes) {
      if (bytes.length === 1 && bytes[0] === PING) return { kind: "ping", answer: PONG };
      const decoder = decoding.createDecoder(bytes);
      decoding.readVarString(decoder); // the document name: this client has only one
      const type = decoding.readVarUint(decoder);
      return type === Hocuspocus.Sync || type === Hocuspocus.SyncReply ? { kind: "sync", decoder } : OTHER;
    },
  };
}

/** The framing of document `doc` on the node at `base` (`ws://127.0.0.1:<port>`) in `dialect`. */
export function framing(dialect: Dialect, base: string, doc: string): Framing {
  return dialect === "hocuspocus" ? hocuspocus(base, doc) : yWebsocket(base, doc);
}
