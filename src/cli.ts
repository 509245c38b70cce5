#!/usr/bin/env node
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { parseOptions, usage } from "./cli-flags.js";
import { redisBackplaneFromFlags } from "./cli-backplane.js";
import { jwtOptionsFromFlags } from "./cli-jwt.js";
import { storageKind } from "./storage/open-store.js";
import type { SqliteDocumentStore } from "./storage/sqlite/sqlite-store.js";

async function serve(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: parseOptions() });
  /** A string flag's value: given, else its variable, else its default (see cli-flags.ts). */
  const flag = (name: string): string | undefined => {
    const value = values[name];
    return typeof value === "string" ? value : undefined;
  };
  /** A numeric flag, left out (undefined) when not given so the library's default holds. */
  const count = (name: string): number | undefined => {
    const value = flag(name);
    if (value === undefined) return undefined;
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n)) throw new Error(`--${name} wants a number, got ${value}`);
    return n;
  };
  if (values.help) {
    process.stdout.write(usage());
    return;
  }
  /** A string flag that has a default (see cli-flags.ts), so it always has a value. */
  const given = (name: string): string => {
    const value = flag(name);
    if (value === undefined) throw new Error(`--${name} has no value`);
    return value;
  };
  /** Drops the keys whose value is undefined, so the library's defaults stay in one place. */
  const defined = <T extends object>(options: T): T =>
    Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as T;
  // Checked before anything opens: a bad key file stops the node, not every client.
  const jwt = jwtOptionsFromFlags({
    secret: flag("jwt-secret"),
    publicKey: flag("jwt-public-key"),
    jwksUrl: flag("jwt-jwks-url"),
    issuer: flag("jwt-issuer"),
    audience: flag("jwt-audience"),
    algorithms: flag("jwt-algorithms"),
  });
  const backplane = redisBackplaneFromFlags({ redis: flag("redis"), redisCluster: flag("redis-cluster") });
  const storage = given("storage");
  const kind = storageKind(storage);
  const sqlite = kind === "sqlite" ? await openSqlite(storage, given("sqlite-synchronous")) : undefined;
  // Imported only now, so that the SQLite writer thread starts first (see openSqlite).
  const [{ ServiceCollection }, { default: express }, { LOG_LEVELS, isLogLevel }] = await Promise.all([
    import("./hosting/service-collection.js"),
    import("express"),
    import("./logging/logger.js"),
  ]);
  const logLevel = flag("log-level");
  if (logLevel !== undefined && !isLogLevel(logLevel))
    throw new Error(`--log-level wants one of ${LOG_LEVELS.join(", ")}, got ${logLevel}`);
  const services = new ServiceCollection();
  const builder = services.addOpStream(
    defined({
      nodeId: flag("node-id"),
      logLevel,
      history: values["no-history"]
        ? false
        : defined({ quietMs: count("history-quiet-ms"), minIntervalMs: count("history-min-interval-ms") }),
      sessions: defined({
        idleTimeoutMs: count("idle-ms"),
        maxDocuments: count("max-documents"),
        maxPendingBytes: count("max-pending-update-bytes"),
      }),
      transport: defined({
        prefix: given("prefix"),
        hocuspocusPath: given("hocuspocus-path"),
        allowedOrigins: given("allowed-origins")
          .split(",")
          .map((origin) => origin.trim())
          .filter(Boolean),
        maxConnectionsPerIp: count("max-connections-per-ip"),
        messageRate: count("message-rate"),
        maxDocumentsPerSocket: count("max-documents-per-socket"),
        maxDocumentsPerPrincipal: count("max-documents-per-principal"),
        ipv6PrefixLength: count("ipv6-prefix-length"),
        trustProxy: trustedProxies(flag("trust-proxy")),
        authTimeoutMs: count("auth-timeout-ms"),
      }),
    }),
  );
  if (sqlite) builder.useStorage(sqlite);
  else if (kind === "redis")
    builder.useRedisStorage({ connectionString: storage, keyPrefix: given("key-prefix") });
  else builder.usePostgresStorage(storage);
  if (backplane !== undefined) {
    builder.useRedisBackplane(
      defined({
        ...backplane,
        keyPrefix: given("key-prefix"),
        ownershipLeaseTtlMs: count("lease-ttl-ms"),
        requestTimeoutMs: count("request-timeout-ms"),
        subscriberCheckIntervalMs: count("subscriber-check-interval-ms"),
      }),
    );
  }
  const managementToken = flag("management-token");
  if (managementToken !== undefined) builder.useManagementAuthorization(managementToken);
  if (jwt !== undefined) builder.useJwtAuthorization(jwt);
  const opstream = services.build();
  const app = express();
  const samplePage = fileURLToPath(new URL("../samples/editor/public", import.meta.url));
  if (!values["no-sample"]) {
    if (existsSync(samplePage)) app.use(express.static(samplePage));
    else opstream.logger.warn({ samplePage }, "sample editor not built; run npm run build");
  }
  await opstream.listen(count("port") ?? 0, defined({ host: flag("host"), app }));
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.once(signal, () => {
      opstream.logger.info({ signal }, "draining");
      opstream.shutdown({ drainTimeoutMs: count("drain-timeout-ms") }).then(
        () => process.exit(0),
        (error: unknown) => {
          opstream.logger.error({ err: error }, "shutdown failed");
          process.exit(1);
        },
      );
    });
  }
}

/** `--trust-proxy`: a comma-separated list, `none` (or `false`, or nothing) for no trusted peer; unset keeps the library's default. */
function trustedProxies(value: string | undefined): string[] | false | undefined {
  if (value === undefined) return undefined;
  const list = value
    .split(",")
    .map((entry) => entry.trim())
    .filter(Boolean);
  const none = list.length === 0 || (list.length === 1 && (list[0] === "none" || list[0] === "false"));
  return none ? false : list;
}

/**
 * Opens the SQLite store before the rest of opstream is loaded: its writer thread
 * (a V8 isolate of its own that loads better-sqlite3 and opens the file) then
 * starts on another core while this thread loads express, Yjs and the server,
 * instead of after `services.build()` with `listen()` waiting for it. The store
 * module itself is small.
 */
async function openSqlite(path: string, synchronous: string): Promise<SqliteDocumentStore> {
  if (synchronous !== "full" && synchronous !== "normal")
    throw new Error(`--sqlite-synchronous wants full or normal, got ${synchronous}`);
  const { SqliteDocumentStore } = await import("./storage/sqlite/sqlite-store.js");
  return new SqliteDocumentStore({ path, synchronous });
}

/** The version in opstream's package.json (next to dist/ in the package and in the repository). */
function version(): string {
  const manifest = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return manifest.version;
}

const [command = "serve", ...rest] = process.argv.slice(2);
if (command === "--version" || command === "-v" || command === "version") {
  process.stdout.write(`${version()}\n`);
} else if (command === "serve") {
  serve(rest).catch((error: unknown) => {
    process.stderr.write(`opstream: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
} else if (command === "import") {
  // Loaded only for this command: serve's start-up never pays for it.
  import("./cli-import.js")
    .then(({ runImport }) => runImport(rest))
    .catch((error: unknown) => {
      process.stderr.write(`opstream import: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    });
} else {
  process.stderr.write(usage());
  process.exit(command === "--help" || command === "help" ? 0 : 2);
}
