import type { DisconnectReason } from "../engine/peer.js";

/**
 * WebSocket close codes the server sends (PROTOCOL.md, "Close codes"). 1xxx are
 * the RFC 6455 meanings; 4xxx are opstream's own. Stock providers reconnect after
 * any close, so "retryable" codes need no client support. None is in 4400–4499,
 * which y-websocket 3.x treats as permanent (it stops reconnecting).
 */
export const CloseCodes = Object.freeze({
  /** The server is shutting down; reconnect (to another node). Retryable. */
  GOING_AWAY: 1001,
  /** A text frame or an unknown message type. */
  UNSUPPORTED_DATA: 1003,
  /** A truncated or undecodable frame, or an update Yjs could not apply. */
  INVALID_FRAME: 1007,
  /** A validator rejected an update. */
  POLICY_VIOLATION: 1008,
  /** A frame larger than `maxPayloadBytes` (sent by ws itself). */
  MESSAGE_TOO_BIG: 1009,
  /** An unexpected server error. Retryable. */
  INTERNAL_ERROR: 1011,
  /** The document moved or storage is failing; reconnect shortly. Retryable. */
  TRY_AGAIN_LATER: 1013,
  /** The client read too slowly: its send buffer passed `maxBufferedBytes`. */
  SLOW_CONSUMER: 4001,
  /** Too many frames (or bytes) arrived before the document was authorized and loaded. */
  TOO_MANY_PENDING: 4002,
  /** The connection's grant expired (a token's `exp`); reconnect with a fresh token. Retryable. */
  ACCESS_EXPIRED: 4003,
  /** The client kept sending faster than `messageRate` past `maxThrottledMessages`. Retryable, slower. */
  RATE_LIMITED: 4008,
  /** The document was deleted. */
  DOCUMENT_DELETED: 4004,
  /** A read-only connection asked for a document that does not exist (readers never create one). Retryable: it may be created later. */
  DOCUMENT_NOT_FOUND: 4005,
  /** Updates waiting for missing dependencies passed the document's pending budget (`sessions.maxPendingBytes`). */
  PENDING_BUDGET_EXCEEDED: 4009,
  /** No document of the socket was authorized within `authTimeoutMs` (Hocuspocus). */
  AUTH_TIMEOUT: 4010,
});

export type CloseCode = (typeof CloseCodes)[keyof typeof CloseCodes];

/** The close code for each reason the engine disconnects a peer. */
export const DISCONNECT_CLOSE_CODES: Readonly<Record<DisconnectReason, CloseCode>> = Object.freeze({
  "step-down": CloseCodes.TRY_AGAIN_LATER,
  shutdown: CloseCodes.GOING_AWAY,
  "storage-failure": CloseCodes.TRY_AGAIN_LATER,
  deleted: CloseCodes.DOCUMENT_DELETED,
  "invalid-update": CloseCodes.INVALID_FRAME,
  rejected: CloseCodes.POLICY_VIOLATION,
});
