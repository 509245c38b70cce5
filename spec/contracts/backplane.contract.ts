import { strict as assert } from "node:assert";
import {
  ChannelMessageType,
  ErrorCodes,
  OpStreamError,
  isOpStreamError,
  type ChannelMessage,
  type IBackplane,
  type IOwnership,
  type Lease,
} from "../../src/index.js";
import { eventually } from "../support/eventually.js";

/** Creates `count` backplane nodes that form one cluster; `stop` ends them. */
export interface BackplaneFactory {
  create(count: number): Promise<{ nodes: IBackplane[]; stop(): Promise<void> }>;
}

/** One node's view of ownership in an {@link OwnershipCluster}. */
export interface OwnershipNode {
  readonly nodeId: string;
  readonly ownership: IOwnership;
}

/** Helpers that reach a lease's record directly (implementations whose leases expire). */
export interface LeaseRecordAccess {
  /** Milliseconds `docId`'s lease record has left before it expires (negative: none). */
  ttlOf(docId: string): Promise<number>;
  /** Deletes `docId`'s lease record behind its holder's back. */
  remove(docId: string): Promise<void>;
}

/** Nodes sharing one ownership medium and one document store. */
export interface OwnershipCluster {
  readonly nodes: OwnershipNode[];
  /** Present exactly when the factory's `expiringLeases` capability is true. */
  readonly records?: LeaseRecordAccess;
  stop(): Promise<void>;
}

/** Creates ownership clusters; `capabilities` say which cases apply. */
export interface OwnershipFactory {
  readonly capabilities: {
    /** Leases expire unless renewed, and notice when their record is lost (LocalOwnership: false). */
    readonly expiringLeases: boolean;
  };
  create(count: number, options?: { leaseTtlMs?: number }): Promise<OwnershipCluster>;
}

/** An Update channel message from `origin` with sequence number `seq`. */
export const update = (origin: string, seq: number): ChannelMessage => ({
  type: ChannelMessageType.Update,
  origin,
  epoch: 1,
  seq,
  payload: new Uint8Array([seq]),
});

/**
 * The behaviour every IBackplane (and, given an ownership factory, its IOwnership)
 * must have; run once per implementation.
 */
export function backplaneContract(
  name: string,
  factory: BackplaneFactory,
  ownership?: OwnershipFactory,
): void {
  if (ownership) ownershipContract(name, ownership);
  describe(`IBackplane contract: ${name}`, () => {
    let nodes: IBackplane[];
    let cluster: Awaited<ReturnType<BackplaneFactory["create"]>>;
    beforeEach(async () => {
      cluster = await factory.create(3);
      nodes = cluster.nodes;
    });
    afterEach(() => cluster.stop());

    it("delivers a document's messages to the other subscribed nodes, in order, never to the publisher", async () => {
      const [a, b, c] = nodes as [IBackplane, IBackplane, IBackplane];
      const got = new Map<string, ChannelMessage[]>([
        [a.nodeId, []],
        [b.nodeId, []],
        [c.nodeId, []],
      ]);
      for (const node of [a, b]) await node.subscribe("doc", (m) => got.get(node.nodeId)!.push(m));
      await c.subscribe("other-doc", (m) => got.get(c.nodeId)!.push(m));
      for (let seq = 1; seq <= 5; seq++) await a.publish("doc", update(a.nodeId, seq));
      await eventually(() =>
        assert.deepEqual(
          got.get(b.nodeId)!.map((m) => (m.type === ChannelMessageType.Update ? m.seq : -1)),
          [1, 2, 3, 4, 5],
        ),
      );
      assert.deepEqual(got.get(a.nodeId), [], "the publisher does not hear itself");
      assert.deepEqual(got.get(c.nodeId), [], "other documents' subscribers hear nothing");
    });

    it("stops delivering after unsubscribe", async () => {
      const [a, b] = nodes as [IBackplane, IBackplane];
      const got: ChannelMessage[] = [];
      const subscription = await b.subscribe("doc", (m) => got.push(m));
      await a.publish("doc", update(a.nodeId, 1));
      await eventually(() => assert.equal(got.length, 1));
      await subscription.unsubscribe();
      await a.publish("doc", update(a.nodeId, 2));
      const probe: ChannelMessage[] = [];
      await b.subscribe("doc", (m) => probe.push(m));
      await a.publish("doc", update(a.nodeId, 3));
      await eventually(() => assert.equal(probe.length, 1));
      assert.equal(got.length, 1, "the old handler got nothing after unsubscribing");
    });

    it("answers requests with the handler's payload and carries the caller's node id", async () => {
      const [a, b] = nodes as [IBackplane, IBackplane];
      b.registerRequestHandler("echo", (payload, from) =>
        Promise.resolve(new TextEncoder().encode(`${from}:${new TextDecoder().decode(payload)}`)),
      );
      const answer = await a.sendRequest(b.nodeId, "echo", new TextEncoder().encode("hi"));
      assert.equal(new TextDecoder().decode(answer), `${a.nodeId}:hi`);
    });

    it("propagates a handler's coded error to the caller", async () => {
      const [a, b] = nodes as [IBackplane, IBackplane];
      b.registerRequestHandler("owner", () =>
        Promise.reject(new OpStreamError(ErrorCodes.NOT_OWNER, "not mine", { docId: "d" })),
      );
      await assert.rejects(a.sendRequest(b.nodeId, "owner", new Uint8Array()), (error: unknown) =>
        isOpStreamError(error, ErrorCodes.NOT_OWNER),
      );
    });

    it("wraps a handler's uncoded failure as NO_HANDLER 'remote handler failed', never as the raw error", async () => {
      const [a, b] = nodes as [IBackplane, IBackplane];
      b.registerRequestHandler("bug", () => Promise.reject(new TypeError("x is undefined")));
      await assert.rejects(
        a.sendRequest(b.nodeId, "bug", new Uint8Array()),
        (error: unknown) =>
          isOpStreamError(error, ErrorCodes.NO_HANDLER) &&
          error.message === "remote handler failed: x is undefined",
      );
    });

    it("times out a request nobody answers, and refuses an unknown type", async () => {
      const [a, b] = nodes as [IBackplane, IBackplane];
      b.registerRequestHandler("slow", () => new Promise<Uint8Array>(() => undefined));
      await assert.rejects(
        a.sendRequest(b.nodeId, "slow", new Uint8Array(), { timeoutMs: 50 }),
        (error: unknown) => isOpStreamError(error, ErrorCodes.REQUEST_TIMEOUT),
      );
      const off = b.registerRequestHandler("gone", () => Promise.resolve(new Uint8Array()));
      off();
      await assert.rejects(
        a.sendRequest(b.nodeId, "gone", new Uint8Array(), { timeoutMs: 500 }),
        (error: unknown) => isOpStreamError(error, ErrorCodes.NO_HANDLER),
      );
    });

    it("keeps one document's channel while any local subscriber is left (ref-counted)", async () => {
      const [a, b] = nodes as [IBackplane, IBackplane];
      const first: ChannelMessage[] = [];
      const second: ChannelMessage[] = [];
      const one = await b.subscribe("shared", (m) => first.push(m));
      const two = await b.subscribe("shared", (m) => second.push(m));
      await a.publish("shared", update(a.nodeId, 1));
      await eventually(() => assert.deepEqual([first.length, second.length], [1, 1]));
      await one.unsubscribe();
      await one.unsubscribe(); // idempotent: must not drop the other subscriber's channel
      await a.publish("shared", update(a.nodeId, 2));
      await eventually(() => assert.equal(second.length, 2));
      assert.equal(first.length, 1, "the unsubscribed handler got nothing more");
      await two.unsubscribe();
      const probe: ChannelMessage[] = [];
      await b.subscribe("shared", (m) => probe.push(m));
      await a.publish("shared", update(a.nodeId, 3));
      await eventually(() => assert.equal(probe.length, 1));
      assert.deepEqual([first.length, second.length], [1, 2], "resubscribing revives no old handler");
    });

    it("never delivers a message whose origin is the receiving node, whoever published it", async () => {
      const [a, b, c] = nodes as [IBackplane, IBackplane, IBackplane];
      const atB: ChannelMessage[] = [];
      const atC: ChannelMessage[] = [];
      await b.subscribe("origin", (m) => atB.push(m));
      await c.subscribe("origin", (m) => atC.push(m));
      await a.publish("origin", update(b.nodeId, 1));
      await a.publish("origin", update(a.nodeId, 2));
      await eventually(() => assert.equal(atC.length, 2));
      await eventually(() => assert.equal(atB.length, 1));
      assert.deepEqual(
        atB.map((m) => m.type === ChannelMessageType.Update && m.seq),
        [2],
        "b never sees a message that claims to come from b",
      );
    });
  });
}

function ownershipContract(name: string, factory: OwnershipFactory): void {
  describe(`IOwnership contract: ${name}`, () => {
    let cluster: OwnershipCluster | undefined;
    const start = async (count: number, options?: { leaseTtlMs?: number }): Promise<OwnershipNode[]> => {
      cluster = await factory.create(count, options);
      return cluster.nodes;
    };
    afterEach(async () => {
      await cluster?.stop();
      cluster = undefined;
    });

    it("lets exactly one of three racing nodes win, 100 rounds in a row, with strictly increasing epochs", async () => {
      const nodes = await start(3);
      let lastEpoch = 0;
      for (let round = 1; round <= 100; round++) {
        const leases = await Promise.all(nodes.map((node) => node.ownership.acquire("race")));
        const winners = leases.flatMap((lease, index) => (lease ? [{ lease, node: nodes[index]! }] : []));
        assert.equal(winners.length, 1, `round ${round}: exactly one winner`);
        const { lease, node } = winners[0]!;
        assert.ok(lease.epoch > lastEpoch, `round ${round}: epoch ${lease.epoch} after ${lastEpoch}`);
        lastEpoch = lease.epoch;
        assert.equal(await nodes[0]!.ownership.ownerOf("race"), node.nodeId);
        await lease.release();
      }
      assert.equal(await nodes[0]!.ownership.ownerOf("race"), null);
    });

    it("hands a released document to another node at once, with a newer epoch", async () => {
      const [a, b] = (await start(2)) as [OwnershipNode, OwnershipNode];
      const first = await a.ownership.acquire("handover");
      assert.ok(first);
      assert.equal(await b.ownership.acquire("handover"), null, "held by a");
      assert.equal(await b.ownership.ownerOf("handover"), a.nodeId);
      await first.release();
      await first.release(); // idempotent
      assert.equal(first.signal.aborted, true, "a released lease aborts its signal");
      assert.equal(await b.ownership.ownerOf("handover"), null);
      const second = await b.ownership.acquire("handover");
      assert.ok(second, "b acquires without waiting for any expiry");
      assert.ok(second.epoch > first.epoch);
      assert.equal(await a.ownership.ownerOf("handover"), b.nodeId);
      await first.release(); // a late release by the old owner frees nothing
      assert.equal(await a.ownership.ownerOf("handover"), b.nodeId);
      await second.release();
    });

    if (!factory.capabilities.expiringLeases) return;

    const ttlMs = 300;

    it("keeps a short lease held across three times its TTL by renewing it", async () => {
      const [a, b] = (await start(2, { leaseTtlMs: ttlMs })) as [OwnershipNode, OwnershipNode];
      const records = cluster!.records!;
      const lease = (await a.ownership.acquire("renewed"))!;
      assert.ok(lease);
      const started = performance.now();
      const violations: string[] = [];
      let lastTtl = Number.POSITIVE_INFINITY;
      let refreshes = 0;
      // Time is the subject here: sample the record until 3 TTLs have passed and it was refreshed repeatedly.
      await eventually(
        async () => {
          const at = Math.round(performance.now() - started);
          const owner = await b.ownership.ownerOf("renewed");
          if (owner !== a.nodeId) violations.push(`owner ${String(owner)} at ${at} ms`);
          if (lease.signal.aborted) violations.push(`lease aborted at ${at} ms`);
          const ttl = await records.ttlOf("renewed");
          if (ttl > lastTtl) refreshes += 1;
          lastTtl = ttl;
          assert.ok(performance.now() - started >= 3 * ttlMs, "3 TTLs have not passed yet");
          assert.ok(refreshes >= 5, `only ${refreshes} refreshes seen`);
        },
        10 * ttlMs,
        10,
      );
      assert.deepEqual(violations, []);
      assert.equal(await b.ownership.acquire("renewed"), null, "still held after 3 TTLs");
      await lease.renew();
      await lease.release();
    });

    it("takes its record back, keeping its epoch, when the record disappears and nobody claimed since", async () => {
      const [a] = (await start(1, { leaseTtlMs: ttlMs })) as [OwnershipNode];
      const lease: Lease = (await a.ownership.acquire("vanished"))!;
      assert.ok(lease);
      const epoch = lease.epoch;
      await cluster!.records!.remove("vanished");
      await eventually(async () => assert.equal(await a.ownership.ownerOf("vanished"), a.nodeId), ttlMs);
      assert.equal(lease.signal.aborted, false, "the lease lives on");
      assert.equal(lease.epoch, epoch);
      await lease.renew();
      await lease.release();
      assert.equal(await a.ownership.ownerOf("vanished"), null);
    });

    it("aborts a lease within one renewal period when another node took its vanished record", async () => {
      const [a, b] = (await start(2, { leaseTtlMs: ttlMs })) as [OwnershipNode, OwnershipNode];
      const lease: Lease = (await a.ownership.acquire("lost"))!;
      assert.ok(lease);
      // The holder may take its record back between the delete and b's acquire: try again then.
      let taken = null as Lease | null;
      await eventually(async () => {
        await cluster!.records!.remove("lost");
        taken = await b.ownership.acquire("lost");
        assert.ok(taken, "b took the vanished record");
      });
      await eventually(() => assert.equal(lease.signal.aborted, true), ttlMs / 3 + 150, 5);
      assert.ok(isOpStreamError(lease.signal.reason, ErrorCodes.NOT_OWNER), "the reason is NOT_OWNER");
      await assert.rejects(lease.renew(), (error: unknown) => isOpStreamError(error, ErrorCodes.NOT_OWNER));
      await lease.release();
      assert.equal(await b.ownership.ownerOf("lost"), b.nodeId, "a's release frees nothing of b's");
      assert.ok(taken!.epoch > lease.epoch, "b claimed a newer epoch");
    });
  });
}
