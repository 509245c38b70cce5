import assert from "node:assert/strict";
import type { DisconnectReason, SessionPeer } from "../../src/engine/peer.js";
import { HookEmitter } from "../../src/hooks.js";
import { OpStreamMetrics } from "../../src/metrics.js";
import type { DocumentHandle } from "../../src/router/document-handle.js";
import { observedJoiner } from "../../src/transport/connection-hooks.js";
import { DocumentQuota } from "../../src/transport/document-quota.js";
import type { DocumentJoiner } from "../../src/transport/tenancy.js";
import { captureLogger } from "../support/capture-logger.js";

/** A peer that records every call the session or relay makes on it. */
class RecordingPeer implements SessionPeer {
  readonly id = "p1";
  readonly calls: string[] = [];
  sendUpdate(): void {
    this.calls.push("sendUpdate");
  }
  sendAwareness(): void {
    this.calls.push("sendAwareness");
  }
  disconnect(reason: DisconnectReason): void {
    this.calls.push(`disconnect:${reason}`);
  }
  sendSyncStep1(): void {
    this.calls.push("sendSyncStep1");
  }
  sendStateless(): void {
    this.calls.push("sendStateless");
  }
}

/** Joins `peer` through `wrap(joiner)` and returns the peer the router was given. */
async function wrappedPeer(wrap: (joiner: DocumentJoiner) => DocumentJoiner, peer: SessionPeer) {
  let given: SessionPeer | undefined;
  const joiner: DocumentJoiner = {
    join: (docId, joined) => {
      given = joined;
      return Promise.resolve({ docId } as unknown as DocumentHandle);
    },
    broadcastStateless: () => Promise.resolve(),
  };
  await wrap(joiner).join("doc", peer, { create: true });
  assert.ok(given, "the router was given a peer");
  return given;
}

/** Calls every member of SessionPeer on `peer`. */
function callAll(peer: SessionPeer): void {
  const bytes = new Uint8Array([0]);
  peer.sendUpdate(bytes);
  peer.sendAwareness(bytes);
  peer.sendSyncStep1?.(bytes);
  peer.sendStateless?.("{}");
  peer.disconnect("shutdown");
}

const ALL = ["sendUpdate", "sendAwareness", "sendSyncStep1", "sendStateless", "disconnect:shutdown"];

describe("peer wrappers forward every SessionPeer member", () => {
  it("the per-principal quota of a Hocuspocus socket (a relay's SyncStep1 after an owner change reaches the client)", async () => {
    const quota = new DocumentQuota(
      { maxDocumentsPerSocket: 100, maxDocumentsPerPrincipal: 10 },
      new OpStreamMetrics(),
    );
    const peer = new RecordingPeer();
    callAll(await wrappedPeer((joiner) => quota.forSocket(joiner, "127.0.0.1", undefined), peer));
    assert.deepEqual(peer.calls, ALL, "each call reached the connection's peer");
  });

  it("the connect/disconnect hooks", async () => {
    const metrics = new OpStreamMetrics();
    const hooks = new HookEmitter(
      [{ event: "disconnect", handler: () => undefined }],
      "node",
      captureLogger().logger,
      metrics,
    );
    const peer = new RecordingPeer();
    callAll(await wrappedPeer((joiner) => observedJoiner(joiner, hooks, "hocuspocus"), peer));
    assert.deepEqual(peer.calls, ALL, "each call reached the connection's peer");
  });
});
