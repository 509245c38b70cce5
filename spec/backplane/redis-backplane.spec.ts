import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { Redis } from "ioredis";
import {
  ChannelMessageType,
  ErrorCodes,
  MemoryDocumentStore,
  OpStreamError,
  OpStreamMetrics,
  SqliteDocumentStore,
  isOpStreamError,
  type ChannelMessage,
} from "../../src/index.js";
import {
  ENVELOPE_VERSION,
  RpcFrameKind,
  decodeChannelMessage,
  decodeRpcFrame,
  encodeChannelMessage,
  encodeRpcFrame,
  type RpcFrame,
} from "../../src/backplane/envelope.js";
import { RedisBackplane } from "../../src/backplane/redis/redis-backplane.js";
import type { RedisBackplaneOptions } from "../../src/backplane/redis/options.js";
import { LIVENESS_PROBE_MS } from "../../src/backplane/cluster-backplane.js";
import { backplaneContract } from "../contracts/backplane.contract.js";
import { redisContractFactories } from "./redis-contract-factories.js";
import { captureLogger } from "../support/capture-logger.js";
import { eventually } from "../support/eventually.js";
import { FaultProxy } from "../support/fault-proxy.js";
import { startRedis, type RedisServer } from "../support/redis.js";
import { tempDir } from "../support/temp.js";

const { logger } = captureLogger();
const newPrefix = (): string => `spec-${randomUUID().slice(0, 8)}:`;
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (data: Uint8Array): string => new TextDecoder().decode(data);
const counter = async (metric: { get(): Promise<{ values: { value: number }[] }> }): Promise<number> =>
  (await metric.get()).values[0]?.value ?? 0;
/** A gauge reads the same way. */
const gauge = counter;

describe("backplane envelope", () => {
  const messages: ChannelMessage[] = [
    {
      type: ChannelMessageType.Update,
      origin: "node-1",
      epoch: 3,
      seq: 300,
      payload: new Uint8Array([1, 2, 3]),
    },
    { type: ChannelMessageType.Awareness, origin: "nœud-2", payload: new Uint8Array([9]) },
    { type: ChannelMessageType.Heartbeat, origin: "n", epoch: Number.MAX_SAFE_INTEGER, seq: 0 },
    { type: ChannelMessageType.Closed, origin: "n", epoch: 7, successor: "node-2" },
    { type: ChannelMessageType.Stateless, origin: "n", payload: '{"ping":"é"}' },
  ];
  const frames: RpcFrame[] = [
    { kind: RpcFrameKind.Request, id: 1, type: "opstream.doc.join", from: "node-1", payload: bytes("x") },
    { kind: RpcFrameKind.Response, id: 2 ** 40, ok: true, payload: new Uint8Array() },
    { kind: RpcFrameKind.Response, id: 5, ok: false, code: ErrorCodes.NOT_OWNER, message: "not mine" },
  ];

  it("round-trips every channel message and RPC frame", () => {
    for (const message of messages)
      assert.deepEqual(decodeChannelMessage(encodeChannelMessage(message)), message);
    for (const frame of frames) assert.deepEqual(decodeRpcFrame(encodeRpcFrame(frame)), frame);
  });

  it("lays bytes out as PROTOCOL.md says", () => {
    assert.deepEqual(
      [...encodeChannelMessage(messages[0]!)],
      [ENVELOPE_VERSION, 1, 6, ...bytes("node-1"), 3, 0xac, 0x02, 3, 1, 2, 3],
    );
    assert.deepEqual([...encodeChannelMessage(messages[3]!)], [1, 4, 1, 110, 7, 6, ...bytes("node-2")]);
    assert.deepEqual(
      [...encodeChannelMessage({ type: ChannelMessageType.Stateless, origin: "n", payload: "hi" })],
      [1, 5, 1, 110, 2, 104, 105],
    );
    assert.deepEqual(
      [...encodeRpcFrame(frames[0]!)],
      [1, 1, 1, 17, ...bytes("opstream.doc.join"), 6, ...bytes("node-1"), 1, 120],
    );
    assert.deepEqual(
      [...encodeRpcFrame(frames[2]!)],
      [1, 2, 5, 0, 17, ...bytes("OPS_ERR_NOT_OWNER"), 8, ...bytes("not mine")],
    );
  });

  it("refuses malformed frames with INVALID_FRAME and a reason", () => {
    const good = encodeChannelMessage(messages[0]!);
    const cases: [Uint8Array, string][] = [
      [good.subarray(0, good.length - 1), "truncated"],
      [new Uint8Array(), "truncated"],
      [Uint8Array.from([2, ...good.subarray(1)]), "unknown-version"],
      [Uint8Array.from([1, 99, 0]), "unknown-type"],
      [Uint8Array.from([...good, 0]), "trailing-bytes"],
      [Uint8Array.from([1, 2, 2, 0xff, 0xfe, 0]), "malformed"], // origin is not UTF-8
    ];
    for (const [frame, reason] of cases) {
      assert.throws(
        () => decodeChannelMessage(frame),
        (error: unknown) =>
          isOpStreamError(error, ErrorCodes.INVALID_FRAME) && error.details.reason === reason,
        `expected ${reason} for [${[...frame].join(",")}]`,
      );
    }
    assert.throws(
      () => decodeRpcFrame(Uint8Array.from([1, 2, 1, 7])),
      (error: unknown) => isOpStreamError(error, ErrorCodes.INVALID_FRAME),
    );
    assert.throws(
      () => encodeChannelMessage({ type: ChannelMessageType.Closed, origin: "n", epoch: -1, successor: "" }),
      (error: unknown) => isOpStreamError(error, ErrorCodes.INVALID_FRAME),
    );
  });
});

describe("Redis backplane (real redis-server)", () => {
  let server: RedisServer;
  const open: { close(): Promise<void> }[] = [];
  const clients: Redis[] = [];

  before(async () => {
    server = await startRedis();
  });
  after(() => server.stop());

  /** A caller-owned client that reconnects every 50 ms (specs restart Redis). */
  const client = (): Redis => {
    const redis = new Redis(server.url, { retryStrategy: () => 50 });
    clients.push(redis);
    return redis;
  };
  const backplane = async (options: RedisBackplaneOptions = {}): Promise<RedisBackplane> => {
    const node = new RedisBackplane({ connectionString: server.url, logger, ...options });
    open.push(node);
    await node.ready();
    return node;
  };
  afterEach(async () => {
    await Promise.all(open.splice(0).map((node) => node.close()));
    await Promise.all(clients.splice(0).map((redis) => redis.quit()));
  });

  backplaneContract("redis", ...redisContractFactories("standalone", backplane, client, newPrefix));

  describe("RedisBackplane", () => {
    it("holds one Redis subscription per document however many local subscribers it has", async () => {
      const keyPrefix = newPrefix();
      const [a, b] = [await backplane({ keyPrefix }), await backplane({ keyPrefix })];
      const admin = client();
      const channel = `${keyPrefix}doc:shared`;
      const subscribers = async (): Promise<number> => {
        const reply = (await admin.call("PUBSUB", "NUMSUB", channel)) as [string, number];
        return reply[1];
      };
      const one = await b.subscribe("shared", () => undefined);
      const two = await b.subscribe("shared", () => undefined);
      assert.equal(await subscribers(), 1);
      await one.unsubscribe();
      assert.equal(await subscribers(), 1);
      await two.unsubscribe();
      assert.equal(await subscribers(), 0);
      const reply = (await admin.call("PUBSUB", "NUMSUB", `${keyPrefix}node:${a.nodeId}`)) as [
        string,
        number,
      ];
      assert.equal(reply[1], 1, "each node listens on <prefix>node:<nodeId>");
    });

    it("carries a coded error's code and message, and turns any other throw into NO_HANDLER", async () => {
      const keyPrefix = newPrefix();
      const [a, b] = [await backplane({ keyPrefix }), await backplane({ keyPrefix })];
      b.registerRequestHandler("coded", () =>
        Promise.reject(new OpStreamError(ErrorCodes.FENCED, "epoch 3 < 4")),
      );
      b.registerRequestHandler("bug", () => Promise.reject(new TypeError("x is undefined")));
      await assert.rejects(
        a.sendRequest(b.nodeId, "coded", new Uint8Array()),
        (error: unknown) => isOpStreamError(error, ErrorCodes.FENCED) && error.message === "epoch 3 < 4",
      );
      await assert.rejects(
        a.sendRequest(b.nodeId, "bug", new Uint8Array()),
        (error: unknown) =>
          isOpStreamError(error, ErrorCodes.NO_HANDLER) &&
          error.message === "remote handler failed: x is undefined",
      );
    });

    it("fails a request whose handler never answers after requestTimeoutMs, and counts it", async () => {
      const keyPrefix = newPrefix();
      const metrics = new OpStreamMetrics();
      const a = await backplane({ keyPrefix, requestTimeoutMs: 300, metrics });
      const b = await backplane({ keyPrefix });
      b.registerRequestHandler("hang", () => new Promise<Uint8Array>(() => undefined));
      const started = performance.now();
      await assert.rejects(a.sendRequest(b.nodeId, "hang", new Uint8Array()), (error: unknown) =>
        isOpStreamError(error, ErrorCodes.REQUEST_TIMEOUT),
      );
      const elapsed = performance.now() - started;
      assert.ok(elapsed >= 295 && elapsed < 1000, `timed out after ${Math.round(elapsed)} ms`);
      assert.equal(await counter(metrics.rpcTimeouts), 1);
    });

    it("fails a request to a node that went away at once with NODE_GONE (its channel has no subscriber)", async () => {
      const keyPrefix = newPrefix();
      const a = await backplane({ keyPrefix, requestTimeoutMs: 60_000 });
      const b = await backplane({ keyPrefix });
      b.registerRequestHandler("echo", (payload) => Promise.resolve(payload));
      assert.equal(text(await a.sendRequest(b.nodeId, "echo", bytes("hi"))), "hi");
      assert.equal(await a.isNodeAlive(b.nodeId), true);
      await b.close();
      assert.equal(await a.isNodeAlive(b.nodeId), false);
      const started = performance.now();
      await assert.rejects(a.sendRequest(b.nodeId, "echo", bytes("hi")), (error: unknown) =>
        isOpStreamError(error, ErrorCodes.NODE_GONE),
      );
      assert.ok(performance.now() - started < 1000, "no wait for the request timeout");
    });

    it("fails a request whose target leaves while it waits with NODE_GONE at the next liveness check", async () => {
      const keyPrefix = newPrefix();
      const a = await backplane({ keyPrefix, requestTimeoutMs: 60_000 });
      const b = await backplane({ keyPrefix });
      let reached!: () => void;
      const arrived = new Promise<void>((resolve) => (reached = resolve));
      b.registerRequestHandler("hang", () => {
        reached();
        return new Promise<Uint8Array>(() => undefined);
      });
      const pending = a.sendRequest(b.nodeId, "hang", bytes("hi"));
      // The request reaches b before b goes, as a crash in the middle of a request would.
      await arrived;
      const started = performance.now();
      await b.close();
      await assert.rejects(pending, (error: unknown) => isOpStreamError(error, ErrorCodes.NODE_GONE));
      const elapsed = performance.now() - started;
      assert.ok(elapsed < 3 * LIVENESS_PROBE_MS, `failed after ${Math.round(elapsed)} ms`);
    });

    it("rejects pending requests at once on close(), and refuses work afterwards", async () => {
      const keyPrefix = newPrefix();
      const a = await backplane({ keyPrefix, requestTimeoutMs: 60_000 });
      const b = await backplane({ keyPrefix });
      b.registerRequestHandler("hang", () => new Promise<Uint8Array>(() => undefined));
      const pending = assert.rejects(a.sendRequest(b.nodeId, "hang", new Uint8Array()), (error: unknown) =>
        isOpStreamError(error, ErrorCodes.SHUTTING_DOWN),
      );
      const started = performance.now();
      await a.close();
      await pending;
      assert.ok(performance.now() - started < 1000);
      await assert.rejects(a.sendRequest(b.nodeId, "hang", new Uint8Array()), (error: unknown) =>
        isOpStreamError(error, ErrorCodes.SHUTTING_DOWN),
      );
      await assert.rejects(
        a.publish("d", { type: ChannelMessageType.Closed, origin: a.nodeId, epoch: 1, successor: "" }),
      );
    });

    it("leaves a caller-owned client open on close()", async () => {
      const redis = client();
      const node = await backplane({ redis, keyPrefix: newPrefix() });
      await node.close();
      assert.equal(await redis.ping(), "PONG");
    });
  });

  describe("RedisOwnership", () => {
    it("stores the owner's node id under <prefix>owner:<docId> with the lease TTL, and counts leases", async () => {
      const keyPrefix = newPrefix();
      const metrics = new OpStreamMetrics();
      const node = await backplane({ keyPrefix, ownershipLeaseTtlMs: 5000, metrics });
      const lease = await node.createOwnership(new MemoryDocumentStore()).acquire("doc");
      assert.ok(lease);
      const admin = client();
      assert.equal(await admin.get(`${keyPrefix}owner:doc`), node.nodeId);
      const ttl = await admin.pttl(`${keyPrefix}owner:doc`);
      assert.ok(ttl > 4000 && ttl <= 5000, `PTTL ${ttl}`);
      assert.equal(await counter(metrics.leasesAcquired), 1);
      await lease.release();
      assert.equal(await admin.exists(`${keyPrefix}owner:doc`), 0);
    });

    it("sends release() before whatever the node publishes next: Redis runs the key's delete before a Closed published right after it", async () => {
      const keyPrefix = newPrefix();
      const owner = await backplane({ keyPrefix });
      const ownership = owner.createOwnership(new MemoryDocumentStore());
      const monitor = await client().monitor();
      const seen: string[] = [];
      monitor.on("monitor", (_time: string, args: string[]) => {
        const [command = "", ...rest] = args.map(String);
        if (rest.includes(`${keyPrefix}owner:doc`) && /^(evalsha|eval)$/i.test(command)) seen.push("release");
        if (/^publish$/i.test(command) && rest[0] === `${keyPrefix}doc:doc`) seen.push("closed");
      });
      try {
        const lease = await ownership.acquire("doc");
        assert.ok(lease);
        seen.length = 0;
        const released = lease.release();
        // Published by another backplane on its own: nobody subscribes, so opstream would skip it.
        await Promise.all([released, owner.redis.publish(`${keyPrefix}doc:doc`, "closed")]);
        await eventually(() => assert.deepEqual(seen, ["release", "closed"]));
        assert.equal(await client().exists(`${keyPrefix}owner:doc`), 0);
      } finally {
        monitor.disconnect();
      }
    });

    it("is suspended, not ended, while Redis hangs past its deadline; once Redis answers it takes its expired key back with its epoch", async () => {
      const ttlMs = 300;
      const metrics = new OpStreamMetrics();
      const keyPrefix = newPrefix();
      const node = await backplane({ keyPrefix, ownershipLeaseTtlMs: ttlMs, metrics });
      const ownership = node.createOwnership(new MemoryDocumentStore());
      const lease = (await ownership.acquire("hung"))!;
      assert.ok(lease);
      lease.progress?.(7);
      server.pause();
      try {
        await eventually(async () => assert.equal(await gauge(metrics.leasesSuspended), 1), 5 * ttlMs, 5);
        assert.equal(lease.signal.aborted, false, "a suspended lease is not lost");
        assert.equal(await counter(metrics.leasesLost), 0);
        // Long enough for Redis to expire the key once it runs again.
        await new Promise((resolve) => setTimeout(resolve, 2 * ttlMs));
      } finally {
        server.resume();
      }
      await eventually(async () => assert.equal(await gauge(metrics.leasesSuspended), 0), 5000);
      assert.equal(lease.signal.aborted, false);
      assert.equal(await counter(metrics.leasesRetaken), 1, "the expired key was taken again");
      assert.equal(await ownership.ownerOf("hung"), node.nodeId);
      const mark = await client().hgetall(`${keyPrefix}epoch:hung`);
      assert.deepEqual(
        mark,
        { epoch: String(lease.epoch), seq: "7" },
        "the progress mark names the same epoch",
      );
      await lease.release();
    });

    it("a lease whose key vanished while another node claimed a newer epoch is lost, and frees the key it took back", async () => {
      const keyPrefix = newPrefix();
      const metrics = new OpStreamMetrics();
      const node = await backplane({ keyPrefix, ownershipLeaseTtlMs: 300, metrics });
      const ownership = node.createOwnership(new MemoryDocumentStore());
      const lease = (await ownership.acquire("doc"))!;
      const admin = client();
      // What a successor leaves when its own lease has ended too: its claim in the mark, no key.
      await admin.hset(`${keyPrefix}epoch:doc`, "epoch", String(lease.epoch + 1), "seq", "0");
      await admin.del(`${keyPrefix}owner:doc`);
      await eventually(() => assert.equal(lease.signal.aborted, true), 2000);
      assert.equal((lease.signal.reason as OpStreamError).details.reason, "taken");
      assert.equal(await counter(metrics.leasesLost), 1);
      assert.equal(await counter(metrics.leasesRetaken), 0);
      await eventually(async () => assert.equal(await ownership.ownerOf("doc"), null));
    });

    it("ends a lease as 'taken' when its key names another node, and never deletes that node's key", async () => {
      const keyPrefix = newPrefix();
      const metrics = new OpStreamMetrics();
      const node = await backplane({ keyPrefix, ownershipLeaseTtlMs: 600, metrics });
      const ownership = node.createOwnership(new MemoryDocumentStore());
      const lease = (await ownership.acquire("doc"))!;
      const admin = client();
      await admin.set(`${keyPrefix}owner:doc`, "another-node", "PX", 10_000);
      await eventually(() => assert.equal(lease.signal.aborted, true), 2000);
      assert.equal((lease.signal.reason as OpStreamError).details.reason, "taken");
      assert.equal(await counter(metrics.leasesLost), 1);
      await lease.release();
      assert.equal(await admin.get(`${keyPrefix}owner:doc`), "another-node");
      assert.equal(await ownership.acquire("doc"), null, "held elsewhere: no lease, no retry loop");
    });

    it("releases the key and rethrows when claiming the epoch fails", async () => {
      const store = new SqliteDocumentStore({ path: join(tempDir(), "closed.sqlite") });
      await store.close();
      const node = await backplane({ keyPrefix: newPrefix() });
      const ownership = node.createOwnership(store);
      await assert.rejects(ownership.acquire("doc"), (error: unknown) => error instanceof OpStreamError);
      assert.equal(await ownership.ownerOf("doc"), null);
    });

    it("supersedes this node's older lease when it acquires the same document again", async () => {
      const node = await backplane({ keyPrefix: newPrefix() });
      const ownership = node.createOwnership(new MemoryDocumentStore());
      const first = (await ownership.acquire("doc"))!;
      const second = (await ownership.acquire("doc"))!;
      assert.ok(second.epoch > first.epoch);
      assert.equal(first.signal.aborted, true);
      assert.equal((first.signal.reason as OpStreamError).details.reason, "superseded");
      assert.equal(second.signal.aborted, false);
      await first.release();
      assert.equal(await ownership.ownerOf("doc"), node.nodeId, "the old lease frees nothing");
      await second.release();
      assert.equal(await ownership.ownerOf("doc"), null);
    });
  });

  describe("when redis-server restarts or hangs", () => {
    it("startRedis() names the fix when redis-server is not on PATH", async () => {
      const path = process.env.PATH;
      process.env.PATH = tempDir();
      try {
        await assert.rejects(startRedis(), {
          message: "redis-server is missing: run `apt-get install -y redis-server`",
        });
      } finally {
        process.env.PATH = path;
      }
    });

    it("re-subscribes, tells onResubscribed listeners, and delivers what is published afterwards", async () => {
      const keyPrefix = newPrefix();
      const a = await backplane({ keyPrefix, redis: client() });
      const b = await backplane({ keyPrefix, redis: client() });
      const got: ChannelMessage[] = [];
      await b.subscribe("doc", (message) => got.push(message));
      b.registerRequestHandler("echo", (payload) => Promise.resolve(payload));
      let resubscribed = 0;
      b.onResubscribed(() => (resubscribed += 1));
      await server.restart();
      await eventually(() => assert.equal(resubscribed, 1), 10_000);
      assert.equal(b.isReady(), true);
      await a.publish("doc", { type: ChannelMessageType.Heartbeat, origin: a.nodeId, epoch: 1, seq: 1 });
      await eventually(() => assert.equal(got.length, 1));
      assert.equal(text(await a.sendRequest(b.nodeId, "echo", bytes("again"))), "again");
    });

    it("notices a half-open link within 3 subscriber checks, reconnects, and delivers again", async () => {
      const proxy = await FaultProxy.start({ port: server.port });
      try {
        const keyPrefix = newPrefix();
        const a = await backplane({ keyPrefix });
        const b = await backplane({
          keyPrefix,
          connectionString: `redis://127.0.0.1:${proxy.port}`,
          subscriberCheckIntervalMs: 100,
        });
        const got: ChannelMessage[] = [];
        await b.subscribe("doc", (message) => got.push(message));
        let resubscribed = 0;
        b.onResubscribed(() => (resubscribed += 1));
        proxy.stall(); // every link of b is now half-open: open, silent, no error
        await a.publish("doc", { type: ChannelMessageType.Heartbeat, origin: a.nodeId, epoch: 1, seq: 1 });
        proxy.heal(); // new connections work; the stalled ones stay dead until b notices
        const healedAt = performance.now();
        await eventually(() => assert.equal(resubscribed, 1), 5000);
        const noticedAfter = performance.now() - healedAt;
        assert.ok(noticedAfter < 3 * 100 + 500, `reconnected ${Math.round(noticedAfter)} ms after the stall`);
        assert.equal(got.length, 0, "what was published into the dead link is lost (relays resync)");
        await a.publish("doc", { type: ChannelMessageType.Heartbeat, origin: a.nodeId, epoch: 1, seq: 2 });
        await eventually(() => assert.equal(got.length, 1));
      } finally {
        await proxy.close();
      }
    });

    it("ping() rejects within a second while Redis is down, and resolves once it is back", async () => {
      const node = await backplane({ keyPrefix: newPrefix(), redis: client() });
      // The given client may still be connecting: ping() is unavailable until it is ready.
      await eventually(() => node.ping());
      await server.stop();
      try {
        await eventually(() => assert.equal(node.isReady(), false));
        const started = performance.now();
        await assert.rejects(node.ping());
        assert.ok(performance.now() - started < 1000, "no waiting in ioredis's offline queue");
      } finally {
        await server.restart();
      }
      await eventually(() => node.ping(), 10_000);
      assert.equal(node.isReady(), true);
    });

    it("ping() rejects after pingTimeoutMs while Redis hangs", async () => {
      const node = await backplane({ keyPrefix: newPrefix(), pingTimeoutMs: 300 });
      await node.ping();
      server.pause();
      try {
        const started = performance.now();
        await assert.rejects(node.ping());
        const elapsed = performance.now() - started;
        assert.ok(elapsed >= 250 && elapsed < 1000, `rejected after ${Math.round(elapsed)} ms`);
      } finally {
        server.resume();
      }
      await node.ping();
    });
  });
});
