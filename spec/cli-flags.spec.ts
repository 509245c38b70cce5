import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { redisBackplaneFromFlags } from "../src/cli-backplane.js";
import { CLI_FLAGS, parseOptions, stateDefault, usage } from "../src/cli-flags.js";
import { REDIS_BACKPLANE_DEFAULTS } from "../src/backplane/redis/options.js";
import { SESSION_DEFAULTS } from "../src/hosting/options.js";
import { DEFAULT_LOG_LEVEL } from "../src/logging/logger.js";
import { TRANSPORT_DEFAULTS } from "../src/transport/transport-options.js";

/** The library option behind each flag that sets one: the CLI must state the library's default. */
const LIBRARY_DEFAULTS: Record<string, unknown> = {
  prefix: TRANSPORT_DEFAULTS.prefix,
  "hocuspocus-path": TRANSPORT_DEFAULTS.hocuspocusPath,
  "allowed-origins": TRANSPORT_DEFAULTS.allowedOrigins.join(","),
  "max-connections-per-ip": TRANSPORT_DEFAULTS.maxConnectionsPerIp,
  "ipv6-prefix-length": TRANSPORT_DEFAULTS.ipv6PrefixLength,
  "trust-proxy": TRANSPORT_DEFAULTS.trustProxy.join(","),
  "auth-timeout-ms": TRANSPORT_DEFAULTS.authTimeoutMs,
  "message-rate": TRANSPORT_DEFAULTS.messageRate,
  "max-documents-per-socket": TRANSPORT_DEFAULTS.maxDocumentsPerSocket,
  "max-documents-per-principal": TRANSPORT_DEFAULTS.maxDocumentsPerPrincipal,
  "idle-ms": SESSION_DEFAULTS.idleTimeoutMs,
  "max-documents": SESSION_DEFAULTS.maxDocuments,
  "max-pending-update-bytes": SESSION_DEFAULTS.maxPendingBytes,
  "key-prefix": REDIS_BACKPLANE_DEFAULTS.keyPrefix,
  "lease-ttl-ms": REDIS_BACKPLANE_DEFAULTS.ownershipLeaseTtlMs,
  "request-timeout-ms": REDIS_BACKPLANE_DEFAULTS.requestTimeoutMs,
  "subscriber-check-interval-ms": REDIS_BACKPLANE_DEFAULTS.subscriberCheckIntervalMs,
  "log-level": DEFAULT_LOG_LEVEL,
};

describe("CLI flags (src/cli-flags.ts)", () => {
  it("state the default of the library option each one sets", () => {
    for (const [name, expected] of Object.entries(LIBRARY_DEFAULTS)) {
      const flag = CLI_FLAGS.find((f) => f.name === name);
      assert.ok(flag, `--${name} is declared in CLI_FLAGS`);
      assert.equal(stateDefault(flag), String(expected), `--${name} states the library's default`);
    }
  });

  it("are each read by the CLI and listed by --help", () => {
    const cli = readFileSync(new URL("../src/cli.ts", import.meta.url), "utf8");
    const help = usage();
    for (const flag of CLI_FLAGS) {
      assert.ok(help.includes(`--${flag.name}`), `--help lists --${flag.name}`);
      if (flag.name === "help") continue;
      assert.ok(cli.includes(`"${flag.name}"`), `src/cli.ts reads --${flag.name}`);
    }
  });

  it("take a flag's variable over its default, and leave library defaults unset", () => {
    const options = parseOptions({ OPSTREAM_PORT: "4321" });
    assert.deepEqual(options.port, { type: "string", default: "4321" });
    assert.deepEqual(parseOptions({}).port, { type: "string", default: "1234" });
    assert.deepEqual(parseOptions({})["max-connections-per-ip"], { type: "string" });
  });
});

describe("CLI backplane flags (src/cli-backplane.ts)", () => {
  it("read --redis as a URL and --redis-cluster as host:port nodes", () => {
    assert.equal(redisBackplaneFromFlags({}), undefined);
    assert.deepEqual(redisBackplaneFromFlags({ redis: "redis://r:6379" }), {
      connectionString: "redis://r:6379",
    });
    assert.deepEqual(redisBackplaneFromFlags({ redisCluster: "10.0.0.5:7000, [::1]:7001," }), {
      cluster: [
        { host: "10.0.0.5", port: 7000 },
        { host: "::1", port: 7001 },
      ],
    });
  });

  it("refuse both at once, and a node without a port, naming the flags", () => {
    assert.throws(
      () => redisBackplaneFromFlags({ redis: "redis://r", redisCluster: "r:7000" }),
      /--redis \(OPSTREAM_REDIS_URL\) and --redis-cluster \(OPSTREAM_REDIS_CLUSTER\) exclude each other/,
    );
    for (const bad of ["r", "r:", ":7000", "r:70000", ","])
      assert.throws(() => redisBackplaneFromFlags({ redisCluster: bad }), /--redis-cluster wants host:port/);
  });
});
