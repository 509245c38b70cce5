import type { SessionOptions, TransportOptions } from "../../src/index.js";

/**
 * The limits the adversarial suite's node runs with: the defaults' shapes, made
 * small so that one run can reach every one of them and the memory bound is tight.
 */
export const ADVERSARY_LIMITS = Object.freeze({
  transport: {
    maxPayloadBytes: 1024 * 1024,
    maxPendingFrames: 200,
    maxPendingBytes: 256 * 1024,
    maxRefusedKeyBytes: 16 * 1024,
    maxDocumentsPerSocket: 8,
    maxDocumentsPerPrincipal: 16,
    authTimeoutMs: 3000,
    maxConnectionsPerIp: 0,
  } satisfies TransportOptions,
  sessions: {
    maxDocuments: 100,
    maxPendingBytes: 256 * 1024,
    idleTimeoutMs: 2000,
  } satisfies SessionOptions,
});

/**
 * What one attacking socket can make the node hold at most, by SECURITY.md's
 * bounds table with these limits: a frame being read and one being answered,
 * the frames waiting for their documents, the refused keys, and the pending
 * (dependency-less) updates of each document it may open.
 */
export const PER_SOCKET_BOUND_BYTES =
  2 * ADVERSARY_LIMITS.transport.maxPayloadBytes +
  ADVERSARY_LIMITS.transport.maxPendingBytes +
  ADVERSARY_LIMITS.transport.maxRefusedKeyBytes +
  ADVERSARY_LIMITS.transport.maxDocumentsPerSocket * ADVERSARY_LIMITS.sessions.maxPendingBytes;

/**
 * Room for what is not the attackers' doing: V8 growing its heap spaces and the
 * allocator keeping freed pages after a run with large frames. An unbounded
 * structure shows up far beyond it (the refused-key finding held 477 MB).
 */
export const RSS_SLACK_BYTES = 32 * 1024 * 1024;
