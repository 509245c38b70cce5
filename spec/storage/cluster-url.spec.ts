import { strict as assert } from "node:assert";
import { ErrorCodes, isOpStreamError } from "../../src/index.js";
import { storageKind } from "../../src/storage/open-store.js";
import { isRedisClusterUrl, parseRedisClusterUrl } from "../../src/storage/redis/cluster-url.js";

describe("redis-cluster:// URLs (--storage for a Redis Cluster)", () => {
  it("are the Redis store's kind, told apart from redis:// by isRedisClusterUrl", () => {
    assert.equal(storageKind("redis-cluster://a:7000,b:7001"), "redis");
    assert.equal(storageKind("redis://a:6379"), "redis");
    assert.equal(isRedisClusterUrl("redis-cluster://a:7000"), true);
    assert.equal(isRedisClusterUrl("redis://a:6379"), false);
  });

  it("parse seed nodes, default port 6379, IPv6 in brackets, and URL-encoded credentials", () => {
    assert.deepEqual(parseRedisClusterUrl("redis-cluster://10.0.0.1:7000,10.0.0.2,[::1]:7002/"), {
      nodes: [
        { host: "10.0.0.1", port: 7000 },
        { host: "10.0.0.2", port: 6379 },
        { host: "::1", port: 7002 },
      ],
    });
    assert.deepEqual(parseRedisClusterUrl("redis-cluster://:p%40ss@h:1/0"), {
      nodes: [{ host: "h", port: 1 }],
      password: "p@ss",
    });
    assert.deepEqual(parseRedisClusterUrl("redis-cluster://app:secret@h:1"), {
      nodes: [{ host: "h", port: 1 }],
      username: "app",
      password: "secret",
    });
  });

  it("refuse what a cluster cannot take, with INVALID_OPTION and without the password", () => {
    for (const url of [
      "redis-cluster://",
      "redis-cluster://h:0",
      "redis-cluster://h:70000",
      "redis-cluster://h:1,,h:2",
      "redis-cluster://:secret@h:1/3",
      "redis-cluster://h:1?tls=true",
    ]) {
      assert.throws(
        () => parseRedisClusterUrl(url),
        (error: unknown) =>
          isOpStreamError(error, ErrorCodes.INVALID_OPTION) && !error.message.includes("secret"),
        url,
      );
    }
  });
});
