import { strict as assert } from "node:assert";
import { ChannelMessageType, ErrorCodes, MemoryDocumentStore, isOpStreamError } from "../../src/index.js";
import { LocalBackplane } from "../../src/backplane/local/local-backplane.js";
import { LocalBus, type Delivery } from "../../src/backplane/local/local-bus.js";
import { LocalOwnership } from "../../src/backplane/local/local-ownership.js";
import { backplaneContract, update } from "../contracts/backplane.contract.js";
import { captureLogger } from "../support/capture-logger.js";

backplaneContract(
  "local (shared LocalBus)",
  {
    create: (count) => {
      const bus = new LocalBus();
      const nodes = Array.from({ length: count }, () => new LocalBackplane({ bus }));
      return Promise.resolve({
        nodes,
        stop: async () => void (await Promise.all(nodes.map((n) => n.close()))),
      });
    },
  },
  {
    // LocalOwnership leases never expire: the renewal and loss cases do not apply.
    capabilities: { expiringLeases: false },
    create: (count) => {
      const bus = new LocalBus();
      const store = new MemoryDocumentStore();
      const nodes = Array.from({ length: count }, (_, i) => {
        const nodeId = `local-${i + 1}`;
        return { nodeId, ownership: new LocalOwnership(bus, nodeId, store) };
      });
      return Promise.resolve({ nodes, stop: () => Promise.resolve() });
    },
  },
);

describe("LocalOwnership", () => {
  it("gives each document one owner at a time and claims a new epoch with every lease", async () => {
    const bus = new LocalBus();
    const store = new MemoryDocumentStore();
    const one = new LocalOwnership(bus, "one", store);
    const two = new LocalOwnership(bus, "two", store);
    const lease = await one.acquire("doc");
    assert.equal(lease?.epoch, 1);
    assert.equal(await two.acquire("doc"), null, "held by another node");
    assert.equal(await two.ownerOf("doc"), "one");
    await lease?.release();
    assert.equal(lease?.signal.aborted, true);
    assert.equal(await one.ownerOf("doc"), null);
    const next = await two.acquire("doc");
    assert.equal(next?.epoch, 2, "the next owner fences the previous one");
    await next?.release();
  });
});

describe("LocalBackplane (the cluster protocol over a LocalBus)", () => {
  const { logger } = captureLogger();
  const open: LocalBackplane[] = [];
  const node = (
    bus: LocalBus,
    options: { nodeId?: string; requestTimeoutMs?: number } = {},
  ): LocalBackplane => {
    const backplane = new LocalBackplane({ bus, logger, ...options });
    open.push(backplane);
    return backplane;
  };
  afterEach(async () => void (await Promise.all(open.splice(0).map((backplane) => backplane.close()))));

  /** A bus that counts the bytes it moves: what a publish costs shows there. */
  class CountingBus extends LocalBus {
    published = 0;
    override publish(channel: string, bytes: Uint8Array): number {
      this.published += 1;
      return super.publish(channel, bytes);
    }
  }

  it("puts nothing on the bus for a publish that nobody else would hear (the single-node hot path)", async () => {
    const bus = new CountingBus();
    const [a, b] = [node(bus), node(bus)];
    await a.subscribe("doc", () => undefined);
    await a.publish("doc", update(a.nodeId, 1));
    await b.publish("doc", update(a.nodeId, 2));
    assert.equal(bus.published, 0, "alone, or only the origin listening: not even encoded");
    await b.subscribe("doc", () => undefined);
    await a.publish("doc", update(a.nodeId, 3));
    assert.equal(bus.published, 1, "another node listens: encoded and sent once");
  });

  it("delivers synchronously, so a channel's messages arrive in publish order", async () => {
    const bus = new LocalBus();
    const [a, b] = [node(bus), node(bus)];
    const got: number[] = [];
    await b.subscribe("doc", (message) =>
      got.push(message.type === ChannelMessageType.Update ? message.seq : -1),
    );
    const publishes = [1, 2, 3].map((seq) => a.publish("doc", update(a.nodeId, seq)));
    assert.deepEqual(got, [1, 2, 3], "delivered before publish() returned");
    await Promise.all(publishes);
  });

  it("fails a request to a node that left the bus at once with NODE_GONE, and frees its documents", async () => {
    const bus = new LocalBus();
    const a = node(bus, { requestTimeoutMs: 60_000 });
    const b = node(bus, { nodeId: "b" });
    b.registerRequestHandler("echo", (payload) => Promise.resolve(payload));
    bus.owners.set("doc", "b");
    bus.removeNode("b");
    assert.equal(bus.owners.has("doc"), false);
    const started = performance.now();
    await assert.rejects(a.sendRequest("b", "echo", new Uint8Array()), (error: unknown) =>
      isOpStreamError(error, ErrorCodes.NODE_GONE),
    );
    assert.ok(performance.now() - started < 1000, "no wait for the request timeout");
  });

  it("rejects pending requests with SHUTTING_DOWN on close(), and leaves the bus", async () => {
    const bus = new LocalBus();
    const a = node(bus, { requestTimeoutMs: 60_000 });
    const b = node(bus);
    b.registerRequestHandler("hang", () => new Promise<Uint8Array>(() => undefined));
    const pending = assert.rejects(a.sendRequest(b.nodeId, "hang", new Uint8Array()), (error: unknown) =>
      isOpStreamError(error, ErrorCodes.SHUTTING_DOWN),
    );
    await a.close();
    await pending;
    await assert.rejects(b.sendRequest(a.nodeId, "hang", new Uint8Array()), (error: unknown) =>
      isOpStreamError(error, ErrorCodes.NODE_GONE),
    );
  });

  it("lets the bus's interceptor drop or duplicate channel messages, but never requests", async () => {
    const faults: Delivery[] = ["drop", "duplicate"];
    const seen: { seq: number; to: string }[] = [];
    const bus = new LocalBus({
      intercept: (message, docId, to) => {
        assert.equal(docId, "doc");
        if (message.type === ChannelMessageType.Update) seen.push({ seq: message.seq, to });
        return faults.shift() ?? "deliver";
      },
    });
    const [a, b] = [node(bus), node(bus)];
    const got: number[] = [];
    await b.subscribe("doc", (message) =>
      got.push(message.type === ChannelMessageType.Update ? message.seq : -1),
    );
    for (let seq = 1; seq <= 3; seq++) await a.publish("doc", update(a.nodeId, seq));
    assert.deepEqual(got, [2, 2, 3]);
    assert.deepEqual(
      seen,
      [1, 2, 3].map((seq) => ({ seq, to: b.nodeId })),
    );
    b.registerRequestHandler("echo", (payload) => Promise.resolve(payload));
    assert.deepEqual([...(await a.sendRequest(b.nodeId, "echo", Uint8Array.of(7)))], [7]);
    assert.equal(seen.length, 3, "requests and responses are not intercepted");
  });
});
