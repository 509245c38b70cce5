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

/** A handle that records every call the connection makes on it. */
class RecordingHandle implements DocumentHandle {
  readonly docId = "doc";
  readonly calls: string[] = [];
  private record<T>(name: string, value: T): T {
    this.calls.push(name);
    return value;
  }
  stateVector(): Promise<Uint8Array> {
    return this.record("stateVector", Promise.resolve(new Uint8Array([0])));
  }
  syncStep1(): Promise<Uint8Array> {
    return this.record("syncStep1", Promise.resolve(new Uint8Array([0, 0])));
  }
  apply(): Promise<number | null> {
    return this.record("apply", Promise.resolve(7));
  }
  contains(): Promise<boolean> {
    return this.record("contains", Promise.resolve(true));
  }
  applyAwareness(): void {
    this.record("applyAwareness", undefined);
  }
  awarenessStates(): Uint8Array | null {
    return this.record("awarenessStates", null);
  }
  leave(): void {
    this.record("leave", undefined);
  }
}

/**
 * Joins `peer` through `wrap(joiner)`: the peer the router was given, the handle
 * the router returned, and the handle the connection got.
 */
async function wrapped(wrap: (joiner: DocumentJoiner) => DocumentJoiner, peer: SessionPeer) {
  let given: SessionPeer | undefined;
  const inner = new RecordingHandle();
  const joiner: DocumentJoiner = {
    join: (_docId, joined) => {
      given = joined;
      return Promise.resolve(inner);
    },
    broadcastStateless: () => Promise.resolve(),
  };
  const handle = await wrap(joiner).join("doc", peer, { create: true });
  assert.ok(given, "the router was given a peer");
  return { peer: given, inner, handle };
}

/** Calls every member of DocumentHandle on `handle`, checking what comes back. */
async function useAll(handle: DocumentHandle): Promise<void> {
  const bytes = new Uint8Array([0]);
  assert.equal(handle.docId, "doc");
  assert.deepEqual(await handle.stateVector(), new Uint8Array([0]));
  assert.deepEqual(await handle.syncStep1(bytes), new Uint8Array([0, 0]));
  assert.equal(await handle.apply(bytes), 7);
  assert.equal(await handle.contains(bytes), true);
  handle.applyAwareness(bytes);
  assert.equal(handle.awarenessStates(), null);
  handle.leave();
}

const HANDLE_CALLS = [
  "stateVector",
  "syncStep1",
  "apply",
  "contains",
  "applyAwareness",
  "awarenessStates",
  "leave",
];

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

describe("peer and handle wrappers forward every member", () => {
  it("the per-principal quota of a Hocuspocus socket (a relay's SyncStep1 after an owner change reaches the client)", async () => {
    const quota = new DocumentQuota(
      { maxDocumentsPerSocket: 100, maxDocumentsPerPrincipal: 10 },
      new OpStreamMetrics(),
    );
    const peer = new RecordingPeer();
    const joined = await wrapped((joiner) => quota.forSocket(joiner, "127.0.0.1", undefined), peer);
    callAll(joined.peer);
    assert.deepEqual(peer.calls, ALL, "each call reached the connection's peer");
    await useAll(joined.handle);
    assert.deepEqual(joined.inner.calls, HANDLE_CALLS, "each call reached the router's handle");
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
    const joined = await wrapped((joiner) => observedJoiner(joiner, hooks, "hocuspocus"), peer);
    callAll(joined.peer);
    assert.deepEqual(peer.calls, ALL, "each call reached the connection's peer");
    await useAll(joined.handle);
    assert.deepEqual(joined.inner.calls, HANDLE_CALLS, "each call reached the router's handle");
  });
});
