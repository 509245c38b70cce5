#!/usr/bin/env node
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { SqliteDocumentStore } from "./storage/sqlite/sqlite-store.js";

const USAGE = `Usage: opstream serve [options]
       opstream --version       print the version

  --port <n>        port to listen on            (env OPSTREAM_PORT, default 1234)
  --host <addr>     address to bind              (env OPSTREAM_HOST, default all)
  --storage <path>  SQLite file, or a redis:// or postgres:// URL for Redis or Postgres storage
                                                 (env OPSTREAM_STORAGE, default ./data/opstream.sqlite)
  --sqlite-synchronous <full|normal>  SQLite storage: full fsyncs every commit (survives power
                    loss); normal survives a crash of the process, not of the machine
                                                 (env OPSTREAM_SQLITE_SYNCHRONOUS, default full)
  --prefix <path>   WebSocket path prefix        (env OPSTREAM_PREFIX, default /)
  --hocuspocus-path <path>  Hocuspocus endpoint  (env OPSTREAM_HOCUSPOCUS_PATH, default /hocuspocus)
  --idle-ms <n>     unload idle documents after  (env OPSTREAM_IDLE_MS, default 300000)
  --drain-timeout-ms <n>  longest graceful drain on SIGTERM/SIGINT (env OPSTREAM_DRAIN_TIMEOUT_MS, default 10000)
  --no-sample       do not serve the sample editor at /
  --management-token <t>  bearer token of the /api/documents management API, >= 16 chars
                          (env OPSTREAM_MANAGEMENT_TOKEN, default none: the API answers 403)
  --jwt-secret <s>        authorize clients with HS256/384/512 JWTs signed with this secret
                          (scopes opstream.write:<doc> / opstream.read:<doc>, see README)
                          (env OPSTREAM_JWT_SECRET, default none: everyone may edit everything)
  --allowed-origins <list>  comma-separated origins whose pages may connect, e.g.
                          https://app.example.com (env OPSTREAM_ALLOWED_ORIGINS, default *)
  --max-connections-per-ip <n>  connections from one address; 0 = no limit
                          (env OPSTREAM_MAX_CONNECTIONS_PER_IP, default 100)
  --ipv6-prefix-length <n>  IPv6 clients count per prefix of n bits for the limit above;
                          128 = per address (env OPSTREAM_IPV6_PREFIX_LENGTH, default 64)
  --auth-timeout-ms <n>   close a Hocuspocus socket on which no document was authorized
                          within n ms (4010); 0 = off (env OPSTREAM_AUTH_TIMEOUT_MS, default 10000)
  --message-rate <n>      frames per second per connection (token bucket); 0 = no limit
                          (env OPSTREAM_MESSAGE_RATE, default 100)
  --max-documents <n>     documents this node holds open; past it new ones get 1013; 0 = no limit
                          (env OPSTREAM_MAX_DOCUMENTS, default 10000)
  --max-documents-per-socket <n>  documents open on one Hocuspocus socket; 0 = no limit
                          (env OPSTREAM_MAX_DOCUMENTS_PER_SOCKET, default 100)
  --max-documents-per-principal <n>  documents one principal (JWT sub, else address) has open
                          on this node; 0 = no limit (env OPSTREAM_MAX_DOCUMENTS_PER_PRINCIPAL, default 1000)
  --max-pending-update-bytes <n>  bytes of updates waiting for missing dependencies per
                          document; past it the sender is closed (4009)
                          (env OPSTREAM_MAX_PENDING_UPDATE_BYTES, default 4194304)

Cluster (all nodes share one Redis and one store):
  --redis <url>               use the Redis backplane        (env OPSTREAM_REDIS_URL)
  --key-prefix <p>            Redis key/channel prefix       (env OPSTREAM_KEY_PREFIX, default opstream:)
  --node-id <id>              this node's id                 (env OPSTREAM_NODE_ID, default random)
  --lease-ttl-ms <n>          ownership lease TTL            (env OPSTREAM_LEASE_TTL_MS, default 5000)
  --request-timeout-ms <n>    timeout of requests to owners  (env OPSTREAM_REQUEST_TIMEOUT_MS, default 5000)
  --subscriber-check-interval-ms <n>  self-check period of the Redis subscriber; 3 misses
                              reconnect it; 0 = off (env OPSTREAM_SUBSCRIBER_CHECK_INTERVAL_MS, default 1000)
`;

async function serve(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: "string", default: process.env.OPSTREAM_PORT ?? "1234" },
      host: { type: "string", default: process.env.OPSTREAM_HOST },
      storage: { type: "string", default: process.env.OPSTREAM_STORAGE ?? "./data/opstream.sqlite" },
      "sqlite-synchronous": { type: "string", default: process.env.OPSTREAM_SQLITE_SYNCHRONOUS ?? "full" },
      prefix: { type: "string", default: process.env.OPSTREAM_PREFIX ?? "/" },
      "hocuspocus-path": { type: "string", default: process.env.OPSTREAM_HOCUSPOCUS_PATH ?? "/hocuspocus" },
      "idle-ms": { type: "string", default: process.env.OPSTREAM_IDLE_MS ?? "300000" },
      "no-sample": { type: "boolean", default: false },
      redis: { type: "string", default: process.env.OPSTREAM_REDIS_URL },
      "key-prefix": { type: "string", default: process.env.OPSTREAM_KEY_PREFIX ?? "opstream:" },
      "node-id": { type: "string", default: process.env.OPSTREAM_NODE_ID },
      "lease-ttl-ms": { type: "string", default: process.env.OPSTREAM_LEASE_TTL_MS ?? "5000" },
      "request-timeout-ms": { type: "string", default: process.env.OPSTREAM_REQUEST_TIMEOUT_MS ?? "5000" },
      "subscriber-check-interval-ms": {
        type: "string",
        default: process.env.OPSTREAM_SUBSCRIBER_CHECK_INTERVAL_MS ?? "1000",
      },
      "management-token": { type: "string", default: process.env.OPSTREAM_MANAGEMENT_TOKEN },
      "jwt-secret": { type: "string", default: process.env.OPSTREAM_JWT_SECRET },
      "allowed-origins": { type: "string", default: process.env.OPSTREAM_ALLOWED_ORIGINS ?? "*" },
      "drain-timeout-ms": { type: "string", default: process.env.OPSTREAM_DRAIN_TIMEOUT_MS ?? "10000" },
      "max-connections-per-ip": { type: "string", default: process.env.OPSTREAM_MAX_CONNECTIONS_PER_IP },
      "message-rate": { type: "string", default: process.env.OPSTREAM_MESSAGE_RATE },
      "max-documents": { type: "string", default: process.env.OPSTREAM_MAX_DOCUMENTS },
      "max-documents-per-socket": { type: "string", default: process.env.OPSTREAM_MAX_DOCUMENTS_PER_SOCKET },
      "max-documents-per-principal": {
        type: "string",
        default: process.env.OPSTREAM_MAX_DOCUMENTS_PER_PRINCIPAL,
      },
      "ipv6-prefix-length": { type: "string", default: process.env.OPSTREAM_IPV6_PREFIX_LENGTH },
      "auth-timeout-ms": { type: "string", default: process.env.OPSTREAM_AUTH_TIMEOUT_MS },
      "max-pending-update-bytes": { type: "string", default: process.env.OPSTREAM_MAX_PENDING_UPDATE_BYTES },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const storage = values.storage;
  const kind = storageKind(storage);
  const sqlite = kind === "sqlite" ? await openSqlite(storage, values["sqlite-synchronous"]) : undefined;
  // Imported only now, so that the SQLite writer thread starts first (see openSqlite).
  const [{ ServiceCollection }, { default: express }] = await Promise.all([
    import("./hosting/service-collection.js"),
    import("express"),
  ]);
  const services = new ServiceCollection();
  const builder = services.addOpStream({
    ...(values["node-id"] === undefined ? {} : { nodeId: values["node-id"] }),
    sessions: {
      idleTimeoutMs: Number(values["idle-ms"]),
      ...(values["max-documents"] === undefined ? {} : { maxDocuments: Number(values["max-documents"]) }),
      ...(values["max-pending-update-bytes"] === undefined
        ? {}
        : { maxPendingBytes: Number(values["max-pending-update-bytes"]) }),
    },
    transport: {
      prefix: values.prefix,
      hocuspocusPath: values["hocuspocus-path"],
      allowedOrigins: values["allowed-origins"]
        .split(",")
        .map((origin) => origin.trim())
        .filter(Boolean),
      // Left out when not given, so the transport's defaults stay in one place.
      ...(values["max-connections-per-ip"] === undefined
        ? {}
        : { maxConnectionsPerIp: Number(values["max-connections-per-ip"]) }),
      ...(values["message-rate"] === undefined ? {} : { messageRate: Number(values["message-rate"]) }),
      ...(values["max-documents-per-socket"] === undefined
        ? {}
        : { maxDocumentsPerSocket: Number(values["max-documents-per-socket"]) }),
      ...(values["max-documents-per-principal"] === undefined
        ? {}
        : { maxDocumentsPerPrincipal: Number(values["max-documents-per-principal"]) }),
      ...(values["ipv6-prefix-length"] === undefined
        ? {}
        : { ipv6PrefixLength: Number(values["ipv6-prefix-length"]) }),
      ...(values["auth-timeout-ms"] === undefined
        ? {}
        : { authTimeoutMs: Number(values["auth-timeout-ms"]) }),
    },
  });
  if (sqlite) builder.useStorage(sqlite);
  else if (kind === "redis")
    builder.useRedisStorage({ connectionString: storage, keyPrefix: values["key-prefix"] });
  else builder.usePostgresStorage(storage);
  if (values.redis !== undefined) {
    builder.useRedisBackplane({
      connectionString: values.redis,
      keyPrefix: values["key-prefix"],
      ownershipLeaseTtlMs: Number(values["lease-ttl-ms"]),
      requestTimeoutMs: Number(values["request-timeout-ms"]),
      subscriberCheckIntervalMs: Number(values["subscriber-check-interval-ms"]),
    });
  }
  if (values["management-token"] !== undefined)
    builder.useManagementAuthorization(values["management-token"]);
  if (values["jwt-secret"] !== undefined) builder.useJwtAuthorization({ secret: values["jwt-secret"] });
  const opstream = services.build();
  const app = express();
  const samplePage = fileURLToPath(new URL("../samples/editor/public", import.meta.url));
  if (!values["no-sample"]) {
    if (existsSync(samplePage)) app.use(express.static(samplePage));
    else opstream.logger.warn({ samplePage }, "sample editor not built; run npm run build");
  }
  await opstream.listen(Number(values.port), { host: values.host, app });
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.once(signal, () => {
      opstream.logger.info({ signal }, "draining");
      opstream.shutdown({ drainTimeoutMs: Number(values["drain-timeout-ms"]) }).then(
        () => process.exit(0),
        (error: unknown) => {
          opstream.logger.error({ err: error }, "shutdown failed");
          process.exit(1);
        },
      );
    });
  }
}

/** What `--storage` names: a redis:// or postgres:// URL, else a SQLite file. */
function storageKind(storage: string): "redis" | "postgres" | "sqlite" {
  if (/^rediss?:\/\//.test(storage)) return "redis";
  if (/^postgres(ql)?:\/\//.test(storage)) return "postgres";
  return "sqlite";
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
} else {
  process.stderr.write(USAGE);
  process.exit(command === "--help" || command === "help" ? 0 : 2);
}
