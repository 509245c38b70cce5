import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import * as Y from "yjs";
import {
  ErrorCodes,
  OpStreamError,
  RedisDocumentStore,
  isOpStreamError,
  type DocumentStore,
  type NewVersion,
  type RedisStoreOptions,
} from "../../src/index.js";
import { storeContract } from "../contracts/store.contract.js";
import { eventually } from "../support/eventually.js";
import { startRedis, type RedisServer } from "../support/redis.js";

const newPrefix = (): string => `spec-${randomUUID().slice(0, 8)}:`;
const unavailable = (error: unknown): error is OpStreamError =>
  isOpStreamError(error, ErrorCodes.STORAGE_UNAVAILABLE);

describe("RedisDocumentStore (real redis-server)", () => {
  let server: RedisServer;
  const prefixes = new WeakMap<DocumentStore, string>();
  const open: DocumentStore[] = [];
  const clients: Redis[] = [];

  before(async () => {
    server = await startRedis();
  });
  after(() => server.stop());
  afterEach(async () => {
    await Promise.all(open.splice(0).map((store) => store.close()));
    await Promise.all(clients.splice(0).map((redis) => redis.quit()));
  });

  const store = (options: RedisStoreOptions = {}): RedisDocumentStore => {
    const keyPrefix = options.keyPrefix ?? newPrefix();
    const created = new RedisDocumentStore({ connectionString: server.url, keyPrefix, ...options });
    prefixes.set(created, keyPrefix);
    open.push(created);
    return created;
  };
  const client = (): Redis => {
    const redis = new Redis(server.url);
    clients.push(redis);
    return redis;
  };

  storeContract("redis", {
    create: () => Promise.resolve(store()),
    reopen: async (previous) => {
      const keyPrefix = prefixes.get(previous);
      if (keyPrefix === undefined) throw new Error("unknown store");
      await previous.close();
      return store({ keyPrefix });
    },
  });

  it("lays keys out as documented: ops stream, meta hash, snapshot string, offsets hash, docs sorted set", async () => {
    const keyPrefix = newPrefix();
    const subject = store({ keyPrefix });
    const epoch = await subject.claimEpoch("doc");
    const source = new Y.Doc();
    const updates: Uint8Array[] = [];
    source.on("update", (update: Uint8Array) => updates.push(update));
    for (const letter of ["a", "b", "c"]) source.getText("text").insert(0, letter);
    assert.deepEqual(await subject.append("doc", epoch, updates), [1, 2, 3]);
    await subject.saveSnapshot("doc", epoch, Y.encodeStateAsUpdate(source), 3, { trimThrough: 2 });
    await subject.commitOffset("doc", epoch, "index", 2);

    const admin = client();
    const types = await Promise.all(
      ["ops:doc", "meta:doc", "snapshot:doc", "offsets:doc", "docs"].map((key) =>
        admin.type(`${keyPrefix}${key}`),
      ),
    );
    assert.deepEqual(types, ["stream", "hash", "string", "hash", "zset"]);
    assert.deepEqual(await admin.hgetall(`${keyPrefix}meta:doc`), {
      epoch: "1",
      last_seq: "3",
      live: "1",
      snapshot_seq: "3",
      snapshot_epoch: "1",
    });
    const entries = await admin.xrangeBuffer(`${keyPrefix}ops:doc`, "-", "+");
    assert.deepEqual(
      entries.map(([id, fields]) => [id.toString(), fields[0]?.toString(), fields[1]?.toString()]),
      [["3-0", "epoch", "1"]],
      "ops through trimThrough are trimmed; entry ids are <seq>-0",
    );
    assert.equal(entries[0]?.[1][2]?.toString(), "u");
    assert.deepEqual(new Uint8Array(entries[0]?.[1][3] ?? []), updates[2]);
    assert.deepEqual(
      new Uint8Array((await admin.getBuffer(`${keyPrefix}snapshot:doc`)) ?? []),
      Y.encodeStateAsUpdate(source),
    );
    assert.deepEqual(await admin.hgetall(`${keyPrefix}offsets:doc`), { index: "2" });
    assert.deepEqual(await admin.zrange(`${keyPrefix}docs`, 0, "-1"), ["doc"]);

    await subject.delete("doc");
    assert.equal(await admin.exists(`${keyPrefix}ops:doc`, `${keyPrefix}snapshot:doc`), 0);
    assert.equal(await admin.exists(`${keyPrefix}offsets:doc`), 0);
    assert.deepEqual(
      await admin.hmget(`${keyPrefix}meta:doc`, "epoch", "last_seq", "live"),
      ["1", "3", "0"],
      "the epoch and last_seq outlive a delete",
    );
    assert.equal(await admin.zcard(`${keyPrefix}docs`), 0);
  });

  it("lays versions out as documented: descriptions and states in two hashes, the last id in meta", async () => {
    const keyPrefix = newPrefix();
    const subject = store({ keyPrefix });
    const epoch = await subject.claimEpoch("doc");
    const source = new Y.Doc();
    source.getText("text").insert(0, "v");
    const state = Y.encodeStateAsUpdate(source);
    const fields = {
      seq: 0,
      time: 5,
      kind: "named",
      name: "n",
      clients: [7],
      authors: ["a"],
      restoredFrom: 0,
    };
    const version: NewVersion = { ...fields, kind: "named", state };
    const first = await subject.saveVersion("doc", epoch, version);
    const second = await subject.saveVersion("doc", epoch, version);
    assert.deepEqual([first.id, second.id], [1, 2]);

    const admin = client();
    const [versions, states] = [`${keyPrefix}versions:doc`, `${keyPrefix}version_states:doc`];
    assert.deepEqual(await Promise.all([admin.type(versions), admin.type(states)]), ["hash", "hash"]);
    const descriptions = await admin.hgetall(versions);
    assert.deepEqual(Object.keys(descriptions).sort(), ["1", "2"]);
    assert.deepEqual(JSON.parse(descriptions["1"] ?? "null"), {
      ...fields,
      epoch: 1,
      bytes: state.byteLength,
    });
    assert.deepEqual(new Uint8Array((await admin.hgetBuffer(states, "2")) ?? []), state);
    assert.equal(await admin.hget(`${keyPrefix}meta:doc`, "last_version"), "2");

    await subject.delete("doc");
    assert.equal(await admin.exists(versions, states), 0);
    assert.equal(
      await admin.hget(`${keyPrefix}meta:doc`, "last_version"),
      "2",
      "the last id outlives a delete",
    );
  });

  it("round-trips binary updates and snapshots byte for byte (0x00 and 0xff included)", async () => {
    const subject = store();
    const epoch = await subject.claimEpoch("bin");
    const everyByte = Uint8Array.from({ length: 256 }, (_, i) => i);
    const updates = [
      everyByte,
      new Uint8Array([0x00]),
      new Uint8Array([0xff, 0x00, 0xff]),
      Uint8Array.from(everyByte).reverse(),
    ];
    await subject.append("bin", epoch, updates);
    assert.deepEqual(
      (await subject.readOps("bin", 0)).map((op) => op.update),
      updates,
    );
    const state = new Uint8Array([0x00, 0xff, 0x0d, 0x0a, 0x00]);
    await subject.saveSnapshot("bin", epoch, state, 2);
    const loaded = await subject.load("bin");
    assert.deepEqual(loaded.snapshot, { seq: 2, epoch, state });
    assert.deepEqual(
      loaded.ops.map((op) => op.update),
      updates.slice(2),
    );
    const subarray = new Uint8Array([9, 0x00, 0xff, 9]).subarray(1, 3);
    const [seq] = await subject.append("bin", epoch, [subarray]);
    assert.deepEqual((await subject.readOps("bin", (seq ?? 0) - 1))[0]?.update, new Uint8Array([0x00, 0xff]));
  });

  it("leaves a caller-owned client open on close()", async () => {
    const redis = client();
    const subject = new RedisDocumentStore({ redis, keyPrefix: newPrefix() });
    await subject.claimEpoch("doc");
    await subject.close();
    assert.equal(await redis.ping(), "PONG");
    assert.equal(redis.status, "ready");
  });

  it("loads a 20,000-op document completely (reads are paginated)", async () => {
    const subject = store();
    const epoch = await subject.claimEpoch("long");
    const total = 20_000;
    const update = (i: number): Uint8Array => new Uint8Array([i & 0xff, (i >> 8) & 0xff, 0x00, 0xff]);
    for (let start = 0; start < total; start += 1000) {
      const batch = Array.from({ length: 1000 }, (_, i) => update(start + i));
      await subject.append("long", epoch, batch);
    }
    const ops = await subject.readOps("long", 0);
    assert.equal(ops.length, total);
    ops.forEach((op, i) => {
      assert.equal(op.seq, i + 1);
      assert.deepEqual(op.update, update(i));
    });
    assert.deepEqual(
      (await subject.readOps("long", 18_500)).map((op) => op.seq),
      Array.from({ length: 1500 }, (_, i) => 18_501 + i),
    );
    await subject.saveSnapshot("long", epoch, new Uint8Array([0, 0]), 10, { trimThrough: 0 });
    const loaded = await subject.load("long");
    assert.equal(loaded.snapshot?.seq, 10);
    assert.equal(loaded.ops.length, total - 10);
    assert.equal(loaded.ops[0]?.seq, 11);
    assert.equal(loaded.ops.at(-1)?.seq, total);
  });

  describe("when Redis is unreachable", () => {
    it("rejects INVALID_OPTION for a commandTimeoutMs that is not positive", () => {
      assert.throws(
        () => new RedisDocumentStore({ connectionString: server.url, commandTimeoutMs: 0 }),
        (error: unknown) => isOpStreamError(error, ErrorCodes.INVALID_OPTION),
      );
    });

    it("fails with STORAGE_UNAVAILABLE within commandTimeoutMs while Redis hangs, then works again", async () => {
      const subject = store({ commandTimeoutMs: 300 });
      const epoch = await subject.claimEpoch("doc");
      server.pause();
      try {
        const started = performance.now();
        await assert.rejects(subject.append("doc", epoch, [new Uint8Array([1])]), (error: unknown) => {
          assert.ok(unavailable(error), String(error));
          assert.deepEqual(
            { operation: error.details.operation, docId: error.details.docId },
            { operation: "append", docId: "doc" },
          );
          return true;
        });
        const elapsed = performance.now() - started;
        assert.ok(elapsed >= 250 && elapsed < 1500, `rejected after ${Math.round(elapsed)} ms`);
      } finally {
        server.resume();
      }
      await eventually(() => subject.ping());
    });

    it("fails with STORAGE_UNAVAILABLE while Redis is stopped, and recovers after a restart", async () => {
      const subject = store({ commandTimeoutMs: 500 });
      await subject.ping();
      await server.stop();
      try {
        for (const call of [
          () => subject.claimEpoch("doc"),
          () => subject.load("doc"),
          () => subject.list(),
        ]) {
          const started = performance.now();
          await assert.rejects(call(), unavailable);
          const elapsed = performance.now() - started;
          assert.ok(elapsed < 1500, `rejected after ${Math.round(elapsed)} ms`);
        }
        await assert.rejects(subject.ping(), unavailable);
      } finally {
        await server.restart();
      }
      await eventually(() => subject.ping(), 10_000);
      assert.equal(await subject.claimEpoch("doc"), 1, "an empty (restarted) Redis");
    });

    it("fails with STORAGE_UNAVAILABLE when nothing listens on the port, naming the connection error", async () => {
      const closed = await startRedis();
      await closed.stop();
      const subject = new RedisDocumentStore({ connectionString: closed.url, commandTimeoutMs: 300 });
      open.push(subject);
      const started = performance.now();
      await assert.rejects(subject.claimEpoch("doc"), (error: unknown) => {
        assert.ok(unavailable(error), String(error));
        assert.deepEqual(
          { operation: error.details.operation, docId: error.details.docId },
          { operation: "claimEpoch", docId: "doc" },
        );
        assert.match(String(error.details.connectionError), /ECONNREFUSED/);
        return true;
      });
      assert.ok(performance.now() - started < 1500);
    });
  });
});
