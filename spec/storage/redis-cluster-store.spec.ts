import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { Cluster, Redis } from "ioredis";
import * as Y from "yjs";
import {
  ErrorCodes,
  RedisDocumentStore,
  isOpStreamError,
  type DocumentStore,
  type RedisStoreOptions,
} from "../../src/index.js";
import { openStore } from "../../src/storage/open-store.js";
import { newVersion } from "../support/versions.js";
import { storeContract } from "../contracts/store.contract.js";
import { eventually } from "../support/eventually.js";
import { freePort } from "../support/ports.js";
import { startRedisCluster, type RedisCluster } from "../support/redis-cluster.js";

const newPrefix = (): string => `spec-${randomUUID().slice(0, 8)}:`;
const KINDS = ["ops", "meta", "snapshot", "offsets", "versions", "version_states"] as const;

/** A Yjs update inserting `text`, and the document's state after it. */
function edit(doc: Y.Doc, text: string): Uint8Array {
  let update: Uint8Array | undefined;
  doc.once("update", (captured: Uint8Array) => (update = captured));
  doc.getText("text").insert(doc.getText("text").length, text);
  if (!update) throw new Error("no update produced");
  return update;
}

async function contentOf(store: DocumentStore, docId: string): Promise<string> {
  const { snapshot, ops } = await store.load(docId);
  const doc = new Y.Doc();
  if (snapshot) Y.applyUpdate(doc, snapshot.state);
  for (const op of ops) Y.applyUpdate(doc, op.update);
  return doc.getText("text").toString();
}

/** Byte order (UTF-8), as the store sorts. */
const byteOrder = (ids: string[]): string[] =>
  [...ids].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));

describe("RedisDocumentStore on a Redis Cluster (3 masters + 3 replicas, real redis-server)", function () {
  let cluster: RedisCluster;
  const prefixes = new WeakMap<DocumentStore, string>();
  const open: DocumentStore[] = [];
  const admins: Cluster[] = [];

  before(async function () {
    this.timeout(60_000);
    cluster = await startRedisCluster();
  });
  after(() => cluster?.stop());
  afterEach(async () => {
    await Promise.all(open.splice(0).map((store) => store.close()));
    await Promise.all(admins.splice(0).map((admin) => admin.quit()));
  });

  const store = (options: RedisStoreOptions = {}): RedisDocumentStore => {
    const keyPrefix = options.keyPrefix ?? newPrefix();
    const created = new RedisDocumentStore({ cluster: cluster.nodes, keyPrefix, ...options });
    prefixes.set(created, keyPrefix);
    open.push(created);
    return created;
  };
  const reopen = async (previous: DocumentStore): Promise<RedisDocumentStore> => {
    const keyPrefix = prefixes.get(previous);
    if (keyPrefix === undefined) throw new Error("unknown store");
    await previous.close();
    return store({ keyPrefix });
  };
  const admin = (): Cluster => {
    const client = new Cluster(cluster.nodes.map(({ host, port }) => ({ host, port })));
    admins.push(client);
    return client;
  };

  storeContract("redis cluster", { create: () => Promise.resolve(store()), reopen });

  it("keeps every key of a document in one slot, hash-tagged, odd ids included", async () => {
    const keyPrefix = newPrefix();
    const subject = store({ keyPrefix });
    assert.equal(subject.clusterMode, true);
    // Ids that would leave an empty hash tag ("", "}…") are tagged {=…}; "=…" is escaped the same way.
    const ids = ["doc", "", "}starts", "=eq", "a}b", "x{y}z", "ünï ☃"];
    for (const docId of ids) {
      const epoch = await subject.claimEpoch(docId);
      const doc = new Y.Doc();
      await subject.append(docId, epoch, [edit(doc, "ab"), edit(doc, "cd")]);
      await subject.saveSnapshot(docId, epoch, Y.encodeStateAsUpdate(doc), 2, { trimThrough: 1 });
      await subject.commitOffset(docId, epoch, "index", 1);
      const state = Y.encodeStateAsUpdate(doc);
      await subject.saveVersion(docId, epoch, newVersion(state, { seq: 2 }));
    }
    const redis = admin();
    const tagged = (kind: string, docId: string): string =>
      `${keyPrefix}${kind}:{${docId === "" || docId.startsWith("}") || docId.startsWith("=") ? "=" : ""}${docId}}`;
    for (const docId of ids) {
      const keys = KINDS.map((kind) => tagged(kind, docId));
      assert.deepEqual(
        await Promise.all(keys.map((key) => redis.type(key))),
        ["stream", "hash", "string", "hash", "hash", "hash"],
        `keys of ${JSON.stringify(docId)}`,
      );
      const slots = await Promise.all(keys.map((key) => redis.cluster("KEYSLOT", key)));
      assert.equal(new Set(slots).size, 1, `one slot for ${JSON.stringify(docId)}: ${slots.join(", ")}`);
      assert.equal(await contentOf(subject, docId), "abcd");
      assert.equal((await subject.listVersions(docId)).length, 1);
    }
    assert.deepEqual(await subject.list(), byteOrder(ids), "list() decodes every id from its meta key");
    assert.equal(await redis.exists(`${keyPrefix}docs`), 0, "a cluster has no index key");
    await subject.delete("}starts");
    assert.deepEqual(await subject.list(), byteOrder(ids.filter((id) => id !== "}starts")));
    const deleted = KINDS.map((kind) => tagged(kind, "}starts"));
    assert.deepEqual(
      await Promise.all(deleted.map((key) => redis.exists(key))),
      [0, 1, 0, 0, 0, 0],
      "a delete keeps the meta hash alone",
    );
  });

  it("list() gathers documents from all three masters, and a restarted store sees everything", async () => {
    const subject = store();
    const keyPrefix = prefixes.get(subject) ?? "";
    const ids = Array.from({ length: 30 }, (_, i) => `doc-${i}`);
    const texts = new Map<string, string>();
    for (const docId of ids) {
      const epoch = await subject.claimEpoch(docId);
      const text = `text of ${docId}`;
      await subject.append(docId, epoch, [edit(new Y.Doc(), text)]);
      texts.set(docId, text);
    }
    const masters = new Set(await Promise.all(ids.map((id) => cluster.masterOf(`${keyPrefix}meta:{${id}}`))));
    assert.deepEqual(
      [...masters].sort(),
      (await cluster.masters()).sort(),
      "the documents span every master",
    );
    assert.equal(masters.size, 3);
    await subject.delete("doc-7");
    const expected = byteOrder(ids.filter((id) => id !== "doc-7"));
    assert.deepEqual(await subject.list(), expected);

    const restarted = await reopen(subject);
    assert.deepEqual(await restarted.list(), expected);
    for (const docId of expected) assert.equal(await contentOf(restarted, docId), texts.get(docId));
    assert.equal(await restarted.claimEpoch("doc-3"), 2, "epochs survive the restart");
    assert.deepEqual(await restarted.load("doc-7"), { snapshot: null, ops: [] });
  });

  it("is chosen by a redis-cluster:// URL (openStore, as --storage) and by a caller-owned Cluster client", async () => {
    const keyPrefix = newPrefix();
    const seeds = cluster.nodes
      .slice(0, 2)
      .map(({ host, port }) => `${host}:${port}`)
      .join(",");
    const fromUrl = await openStore(`redis-cluster://${seeds}`, { keyPrefix });
    open.push(fromUrl);
    // Not `instanceof`: the dynamic import in openStore may load its own copy of the module under mocha.
    assert.equal(fromUrl.kind, "redis");
    assert.equal((fromUrl as RedisDocumentStore).clusterMode, true);
    const epoch = await fromUrl.claimEpoch("shared");
    await fromUrl.append("shared", epoch, [edit(new Y.Doc(), "hi")]);

    const client = admin();
    const callerOwned = new RedisDocumentStore({ redis: client, keyPrefix });
    assert.equal(callerOwned.clusterMode, true);
    assert.deepEqual(await callerOwned.list(), ["shared"]);
    assert.equal(await contentOf(callerOwned, "shared"), "hi");
    await callerOwned.close();
    assert.equal(await client.ping(), "PONG", "a caller-owned client stays open");
  });

  it("rejects INVALID_OPTION for a key prefix with a brace, and for an empty list of nodes", () => {
    for (const keyPrefix of ["app{1}:", "app}"]) {
      assert.throws(
        () => new RedisDocumentStore({ cluster: cluster.nodes, keyPrefix }),
        (error: unknown) =>
          isOpStreamError(error, ErrorCodes.INVALID_OPTION) && /hash tag/.test(error.message),
      );
      assert.throws(
        () => new RedisDocumentStore({ connectionString: "redis-cluster://127.0.0.1:1", keyPrefix }),
        (error: unknown) => isOpStreamError(error, ErrorCodes.INVALID_OPTION),
      );
    }
    assert.throws(
      () => new RedisDocumentStore({ cluster: [] }),
      (error: unknown) => isOpStreamError(error, ErrorCodes.INVALID_OPTION),
    );
  });

  it("fails with STORAGE_UNAVAILABLE, naming the operation, when no node of the cluster answers", async () => {
    const subject = store({
      cluster: [{ host: "127.0.0.1", port: await freePort() }],
      commandTimeoutMs: 300,
    });
    for (const [operation, call] of [
      ["claimEpoch", () => subject.claimEpoch("doc")],
      ["list", () => subject.list()],
      ["ping", () => subject.ping()],
    ] as const) {
      await assert.rejects(call(), (error: unknown) => {
        assert.ok(isOpStreamError(error, ErrorCodes.STORAGE_UNAVAILABLE), String(error));
        assert.equal(error.details.operation, operation);
        return true;
      });
    }
  });

  // Last (mocha runs a suite's own tests before its nested suites, nested suites in
  // order): it leaves the cluster with a master that has no replica.
  describe("after a master failover", () => {
    it("after a master fails over, its replica serves what had replicated: list(), load() and new writes", async function () {
      this.timeout(40_000);
      const subject = store();
      const keyPrefix = prefixes.get(subject) ?? "";
      const ids = Array.from({ length: 12 }, (_, i) => `fail-${i}`);
      const epochs = new Map<string, number>();
      for (const docId of ids) {
        const epoch = await subject.claimEpoch(docId);
        await subject.append(docId, epoch, [edit(new Y.Doc(), docId)]);
        epochs.set(docId, epoch);
      }
      const victim = await cluster.masterOf(`${keyPrefix}meta:{fail-0}`);
      // Replication is asynchronous: wait until the victim's replica has everything.
      const direct = new Redis({ host: "127.0.0.1", port: victim });
      try {
        await eventually(async () => {
          const info = await direct.info("replication");
          const own = /master_repl_offset:(\d+)/.exec(info)?.[1];
          const replica = /slave0:.*offset=(\d+)/.exec(info)?.[1];
          assert.ok(own !== undefined && own === replica, `replica at ${replica} of ${own}`);
        }, 10_000);
      } finally {
        direct.disconnect();
      }
      cluster.kill(victim);
      await cluster.promoted(victim);

      assert.deepEqual(await eventually(() => subject.list(), 15_000), byteOrder(ids));
      for (const docId of ids) assert.equal(await contentOf(subject, docId), docId);
      const epoch = await subject.claimEpoch("fail-0");
      assert.equal(epoch, (epochs.get("fail-0") ?? 0) + 1);
      assert.deepEqual(await subject.append("fail-0", epoch, [edit(new Y.Doc(), "!")]), [2]);
      await assert.rejects(subject.append("fail-0", epoch - 1, [new Uint8Array([0, 0])]), (error: unknown) =>
        isOpStreamError(error, ErrorCodes.FENCED),
      );
    });
  });
});
