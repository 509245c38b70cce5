import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { Cluster, Redis } from "ioredis";
import {
  ChannelMessageType,
  ErrorCodes,
  MemoryDocumentStore,
  isOpStreamError,
  type ChannelMessage,
} from "../../src/index.js";
import { hashSlot } from "../../src/backplane/redis/hash-slot.js";
import { CLUSTER_NODE_LANES, redisKeyNames } from "../../src/backplane/redis/key-names.js";
import type { RedisBackplaneOptions } from "../../src/backplane/redis/options.js";
import { RedisBackplane } from "../../src/backplane/redis/redis-backplane.js";
import { backplaneContract, update } from "../contracts/backplane.contract.js";
import { redisContractFactories } from "./redis-contract-factories.js";
import { captureLogger } from "../support/capture-logger.js";
import { eventually } from "../support/eventually.js";
import { startRedisCluster, type RedisCluster } from "../support/redis-cluster.js";

const { logger } = captureLogger();
const newPrefix = (): string => `spec-${randomUUID().slice(0, 8)}:`;

describe("Redis key names (key-names.ts)", () => {
  it("keep the standalone names unchanged and hash-tag the id on a Redis Cluster", () => {
    const standalone = redisKeyNames("p:", "standalone");
    const cluster = redisKeyNames("p:", "cluster");
    assert.deepEqual(
      [
        standalone.documentChannel("d"),
        standalone.nodeChannel("n"),
        standalone.ownerKey("d"),
        standalone.markKey("d"),
      ],
      ["p:doc:d", "p:node:n", "p:owner:d", "p:epoch:d"],
    );
    assert.deepEqual(
      [cluster.documentChannel("d"), cluster.nodeChannel("n"), cluster.ownerKey("d"), cluster.markKey("d")],
      ["p:doc:{d}", "p:node:{n}", "p:owner:{d}", "p:epoch:{d}"],
    );
  });

  it("refuse a key prefix with braces, and a connection string or client, in cluster mode", () => {
    const cluster = [{ host: "127.0.0.1", port: 1 }];
    const refused = (options: RedisBackplaneOptions, option: string): void =>
      assert.throws(
        () => new RedisBackplane({ logger, ...options }),
        (error: unknown) =>
          isOpStreamError(error, ErrorCodes.INVALID_OPTION) && error.details.option === option,
      );
    refused({ cluster, keyPrefix: "{app}:" }, "keyPrefix");
    refused({ cluster, connectionString: "redis://127.0.0.1:6379" }, "connectionString");
    refused({ cluster: [] }, "cluster");
  });
});

describe("Redis backplane on a Redis Cluster (3 masters, 3 replicas, sharded pub/sub)", function () {
  this.timeout(30_000);
  let redis: RedisCluster;
  let admin: Cluster;
  const open: { close(): Promise<void> }[] = [];

  before(async function () {
    this.timeout(60_000);
    redis = await startRedisCluster();
    admin = new Cluster([...redis.nodes]);
  });
  after(async () => {
    admin.disconnect();
    await redis.stop();
  });
  afterEach(async () => void (await Promise.all(open.splice(0).map((node) => node.close()))));

  const backplane = async (options: RedisBackplaneOptions = {}): Promise<RedisBackplane> => {
    const node = new RedisBackplane({ cluster: [...redis.nodes], logger, ...options });
    open.push(node);
    await node.ready();
    return node;
  };
  /** Asks the node on `port` one command. */
  const ask = async (port: number, ...args: string[]): Promise<unknown> => {
    const client = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0 });
    try {
      await client.connect();
      return await client.call(args[0]!, ...args.slice(1));
    } finally {
      client.disconnect();
    }
  };

  backplaneContract("redis cluster", ...redisContractFactories("cluster", backplane, () => admin, newPrefix));

  describe("hash slots and shards", () => {
    it("puts a document's channel, owner key and progress mark in one slot, on the master that serves it", async () => {
      const keyPrefix = newPrefix();
      const names = redisKeyNames(keyPrefix, "cluster");
      const node = await backplane({ keyPrefix });
      const lease = await node.createOwnership(new MemoryDocumentStore()).acquire("report}2024");
      assert.ok(lease);
      const docId = "report}2024";
      const slots = await Promise.all(
        [names.documentChannel(docId), names.ownerKey(docId), names.markKey(docId)].map(async (name) =>
          Number(await admin.call("CLUSTER", "KEYSLOT", name)),
        ),
      );
      assert.deepEqual(new Set(slots).size, 1, `one slot: ${slots.join(", ")}`);
      for (const name of [
        names.documentChannel(docId),
        names.nodeChannel(node.nodeId),
        "plain",
        "{}x",
        "a{b}c",
      ])
        assert.equal(hashSlot(name), Number(await admin.call("CLUSTER", "KEYSLOT", name)), name);
      // The lease and the mark were written on the master of that slot (redlock's EVAL routes by key).
      const master = await redis.masterOf(names.ownerKey(docId));
      assert.equal(await ask(master, "GET", names.ownerKey(docId)), node.nodeId);
      assert.equal(await ask(master, "EXISTS", names.markKey(docId)), 1);
      await lease.release();
    });

    it("subscribes a document's sharded channel on its slot's master only, and its messages reach only that shard", async () => {
      const keyPrefix = newPrefix();
      const names = redisKeyNames(keyPrefix, "cluster");
      const [a, b] = [await backplane({ keyPrefix }), await backplane({ keyPrefix })];
      const got: ChannelMessage[] = [];
      await b.subscribe("shard", (message) => got.push(message));
      const channel = names.documentChannel("shard");
      const home = await redis.masterOf(channel);
      for (const port of await redis.masters()) {
        const listed = (await ask(port, "PUBSUB", "SHARDCHANNELS", `${keyPrefix}*`)) as string[];
        const [, count] = (await ask(port, "PUBSUB", "SHARDNUMSUB", channel)) as [string, number];
        if (port === home) {
          assert.ok(listed.includes(channel), `${port} serves ${channel}`);
          assert.equal(count, 1);
        } else {
          assert.ok(!listed.includes(channel), `${port} does not list ${channel}`);
          assert.equal(count, 0);
        }
      }
      // The owner counts its messages' receivers: SPUBLISH on the home master reaches b.
      const admitted = Number(await ask(home, "SPUBLISH", channel, "x"));
      assert.equal(admitted, 1, "the home master delivered to its one subscriber");
      await a.publish("shard", update(a.nodeId, 1));
      await eventually(() => assert.equal(got.length, 1));
      assert.equal(await a.isNodeAlive(b.nodeId), true, "PUBSUB SHARDNUMSUB on the node channel's master");
      await b.close();
      assert.equal(await a.isNodeAlive(b.nodeId), false);
      await assert.rejects(a.sendRequest(b.nodeId, "echo", new Uint8Array()), (error: unknown) =>
        isOpStreamError(error, ErrorCodes.NODE_GONE),
      );
      await a.ping();
      assert.equal(a.isReady(), true);
    });
  });

  it("passes clusterOptions to its cluster client (credentials, TLS, names): its connections carry the given name", async () => {
    const node = await backplane({
      keyPrefix: newPrefix(),
      clusterOptions: { redisOptions: { connectionName: "opstream-spec-named" } },
    });
    await node.ping();
    const listed = await Promise.all((await redis.masters()).map((port) => ask(port, "CLIENT", "LIST")));
    assert.ok(
      listed.some((list) => String(list).includes("name=opstream-spec-named")),
      "a master lists a connection named as the options say",
    );
  });

  describe("RPC lanes", () => {
    it("spreads a node's requests over its lanes by key, on every master, answering each key's requests in order", async () => {
      const keyPrefix = newPrefix();
      const names = redisKeyNames(keyPrefix, "cluster");
      // A fixed id: whether 8 lanes cover 3 masters is chance for a random one (this one's
      // lanes hash into all three of redis-cli's equal slot ranges).
      const [a, b] = [await backplane({ keyPrefix }), await backplane({ keyPrefix, nodeId: "lanes-b" })];
      const lanes = Array.from({ length: CLUSTER_NODE_LANES }, (_, lane) =>
        names.nodeChannel(b.nodeId, lane),
      );
      assert.equal(new Set(lanes).size, CLUSTER_NODE_LANES);
      const homes = await Promise.all(lanes.map((channel) => redis.masterOf(channel)));
      for (const [lane, channel] of lanes.entries()) {
        const [, count] = (await ask(homes[lane]!, "PUBSUB", "SHARDNUMSUB", channel)) as [string, number];
        assert.equal(count, 1, `b listens on lane ${lane}`);
      }
      assert.equal(new Set(homes).size, 3, `b's lanes land on every master: ${homes.join(", ")}`);
      // Requests about one key reach b in the order sent; different keys use several lanes.
      const seen = new Map<string, number[]>();
      b.registerRequestHandler("seq", (payload) => {
        const [key, n] = new TextDecoder().decode(payload).split("/") as [string, string];
        seen.set(key, [...(seen.get(key) ?? []), Number(n)]);
        return Promise.resolve(payload);
      });
      const keys = Array.from({ length: 16 }, (_, i) => `doc-${i}`);
      const sent = keys.flatMap((key) =>
        Array.from({ length: 5 }, (_, n) =>
          a.sendRequest(b.nodeId, "seq", new TextEncoder().encode(`${key}/${n}`), { key }),
        ),
      );
      const answers = (await Promise.all(sent)).map((bytes) => new TextDecoder().decode(bytes));
      assert.deepEqual(
        answers,
        keys.flatMap((key) => [0, 1, 2, 3, 4].map((n) => `${key}/${n}`)),
      );
      for (const key of keys) assert.deepEqual(seen.get(key), [0, 1, 2, 3, 4], `in order for ${key}`);
    });
  });

  describe("slot migration", () => {
    it("follows a document's slot to another master: its channel, lease and mark move together, delivery and renewals go on", async () => {
      const keyPrefix = newPrefix();
      const names = redisKeyNames(keyPrefix, "cluster");
      const [a, b] = [await backplane({ keyPrefix }), await backplane({ keyPrefix })];
      const got: ChannelMessage[] = [];
      await b.subscribe("moving", (message) => got.push(message));
      let resubscribed = 0;
      b.onResubscribed(() => (resubscribed += 1));
      const lease = await a.createOwnership(new MemoryDocumentStore()).acquire("moving");
      assert.ok(lease);
      const channel = names.documentChannel("moving");
      const from = await redis.masterOf(channel);
      const to = (await redis.masters()).find((port) => port !== from)!;
      await redis.moveSlot(channel, to);
      await eventually(async () =>
        assert.equal(await redis.masterOf(names.ownerKey("moving")), to, "the lease moved with the slot"),
      );
      assert.equal(await ask(to, "GET", names.ownerKey("moving")), a.nodeId);
      assert.equal(await ask(to, "EXISTS", names.markKey("moving")), 1, "and the progress mark");
      await eventually(async () => {
        await a.publish("moving", update(a.nodeId, got.length + 1));
        assert.ok(got.length >= 1, "delivered after the move");
      }, 10_000);
      const [, count] = (await ask(to, "PUBSUB", "SHARDNUMSUB", channel)) as [string, number];
      assert.equal(count, 1, "b's subscription lives on the new master");
      await lease.renew();
      assert.equal(lease.signal.aborted, false);
      assert.ok(resubscribed >= 1, "relays were told to resync: messages may have been lost during the move");
      await lease.release();
    });
  });

  // Last (mocha runs a describe's own tests before its nested ones): it leaves one shard without a replica.
  describe("failover", () => {
    it("follows a master failover: re-subscribes on the promoted replica, tells onResubscribed listeners, delivers again", async function () {
      this.timeout(40_000);
      const keyPrefix = newPrefix();
      const names = redisKeyNames(keyPrefix, "cluster");
      const [a, b] = [await backplane({ keyPrefix }), await backplane({ keyPrefix })];
      const got: ChannelMessage[] = [];
      await b.subscribe("failover", (message) => got.push(message));
      b.registerRequestHandler("echo", (payload) => Promise.resolve(payload));
      let resubscribed = 0;
      b.onResubscribed(() => (resubscribed += 1));
      const lease = await a.createOwnership(new MemoryDocumentStore()).acquire("failover");
      assert.ok(lease);
      const master = await redis.masterOf(names.documentChannel("failover"));
      redis.kill(master);
      await redis.promoted(master);
      await eventually(() => assert.ok(resubscribed >= 1, "b re-subscribed"), 20_000);
      await eventually(async () => {
        await a.publish("failover", {
          type: ChannelMessageType.Heartbeat,
          origin: a.nodeId,
          epoch: 1,
          seq: 1,
        });
        assert.ok(got.length >= 1);
      }, 10_000);
      assert.equal(
        new TextDecoder().decode(await a.sendRequest(b.nodeId, "echo", new TextEncoder().encode("hi"))),
        "hi",
      );
      const promoted = await redis.masterOf(names.documentChannel("failover"));
      assert.notEqual(promoted, master);
      const [, count] = (await ask(promoted, "PUBSUB", "SHARDNUMSUB", names.documentChannel("failover"))) as [
        string,
        number,
      ];
      assert.equal(count, 1, "b's subscription lives on the promoted replica");
      await eventually(() => a.ping(), 10_000);
      await lease.release();
    });
  });
});
