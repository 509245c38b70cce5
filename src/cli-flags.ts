/**
 * The flags of `opstream serve`, declared once. The usage text (`--help`), the
 * parser's options and the CLI table in docs/configuration.md are all generated
 * from this list, so a flag cannot be documented in one place and missing in another.
 *
 * Kept free of imports but the cluster flags' list, which is as bare: the CLI
 * loads them before anything else (start-up time).
 */
import { CLUSTER_FLAGS } from "./cli-cluster-flags.js";

/** One flag of `opstream serve`. */
export interface CliFlag {
  /** The flag without its dashes, e.g. `port` for `--port`. */
  readonly name: string;
  /** `string` flags take a value; `boolean` flags are switches. */
  readonly type: "string" | "boolean";
  /** Placeholder of the value in the usage text, e.g. `<n>`. */
  readonly value?: string;
  /** Environment variable read when the flag is not given. */
  readonly env?: string;
  /**
   * Value used when neither the flag nor its variable is given. Left out for flags
   * whose default belongs to a library option (then `shownDefault` states it, and
   * spec/cli-flags.spec.ts checks that it matches the option's default).
   */
  readonly default?: string;
  /** The default as the usage text and the docs state it, when it is not `default`. */
  readonly shownDefault?: string;
  /** What the flag does, one or two sentences. */
  readonly help: string;
  /** `serve` for every node; `cluster` for the Redis backplane's flags. */
  readonly group: "serve" | "cluster";
}

/** Every flag of `opstream serve`, in the order `--help` lists them. */
export const CLI_FLAGS: readonly CliFlag[] = Object.freeze([
  {
    name: "port",
    type: "string",
    value: "<n>",
    env: "OPSTREAM_PORT",
    default: "1234",
    help: "Port to listen on.",
    group: "serve",
  },
  {
    name: "host",
    type: "string",
    value: "<addr>",
    env: "OPSTREAM_HOST",
    shownDefault: "all",
    help: "Address to bind.",
    group: "serve",
  },
  {
    name: "storage",
    type: "string",
    value: "<path|url>",
    env: "OPSTREAM_STORAGE",
    default: "./data/opstream.sqlite",
    help: "SQLite file, or a redis:// or postgres:// URL for Redis or Postgres storage (redis-cluster://host:port,host:port… for a Redis Cluster).",
    group: "serve",
  },
  {
    name: "sqlite-synchronous",
    type: "string",
    value: "<full|normal>",
    env: "OPSTREAM_SQLITE_SYNCHRONOUS",
    default: "full",
    help: "SQLite storage: full fsyncs every commit (survives power loss); normal survives a crash of the process, not of the machine.",
    group: "serve",
  },
  {
    name: "prefix",
    type: "string",
    value: "<path>",
    env: "OPSTREAM_PREFIX",
    default: "/",
    help: "WebSocket path prefix of y-websocket documents.",
    group: "serve",
  },
  {
    name: "hocuspocus-path",
    type: "string",
    value: "<path>",
    env: "OPSTREAM_HOCUSPOCUS_PATH",
    default: "/hocuspocus",
    help: "Path of the Hocuspocus endpoint.",
    group: "serve",
  },
  {
    name: "idle-ms",
    type: "string",
    value: "<n>",
    env: "OPSTREAM_IDLE_MS",
    default: "300000",
    help: "Unload a document after it has had no client for this long.",
    group: "serve",
  },
  {
    name: "drain-timeout-ms",
    type: "string",
    value: "<n>",
    env: "OPSTREAM_DRAIN_TIMEOUT_MS",
    default: "10000",
    help: "Longest graceful drain on SIGTERM/SIGINT.",
    group: "serve",
  },
  { name: "no-sample", type: "boolean", help: "Do not serve the sample editor at /.", group: "serve" },
  {
    name: "no-history",
    type: "boolean",
    help: "Keep no document history: no versions, and /api/…/versions answers 404.",
    group: "serve",
  },
  {
    name: "history-quiet-ms",
    type: "string",
    value: "<n>",
    env: "OPSTREAM_HISTORY_QUIET_MS",
    default: "120000",
    help: "Take an automatic version once a document has had no edit for this long.",
    group: "serve",
  },
  {
    name: "history-min-interval-ms",
    type: "string",
    value: "<n>",
    env: "OPSTREAM_HISTORY_MIN_INTERVAL_MS",
    default: "600000",
    help: "At most one automatic version per document per this long.",
    group: "serve",
  },
  {
    name: "management-token",
    type: "string",
    value: "<t>",
    env: "OPSTREAM_MANAGEMENT_TOKEN",
    shownDefault: "none: the API answers 403",
    help: "Bearer token of the /api/documents management API, at least 16 characters.",
    group: "serve",
  },
  {
    name: "jwt-secret",
    type: "string",
    value: "<s>",
    env: "OPSTREAM_JWT_SECRET",
    shownDefault: "none: everyone may edit everything",
    help: "Authorize clients with HS256/384/512 JWTs signed with this secret (scopes opstream.write:<doc> / opstream.read:<doc>, see docs/authorization.md). One of --jwt-secret, --jwt-public-key, --jwt-jwks-url.",
    group: "serve",
  },
  {
    name: "jwt-public-key",
    type: "string",
    value: "<file|pem>",
    env: "OPSTREAM_JWT_PUBLIC_KEY",
    help: "Authorize clients with JWTs verified by this PEM public key (SPKI: RSA, EC P-256/384/521 or Ed25519), a file or the PEM itself; tokens of every algorithm the key's type verifies are accepted (RSA: RS*/PS*; EC: the curve's ES*; Ed25519: EdDSA) unless --jwt-algorithms narrows them. Same scopes as --jwt-secret.",
    group: "serve",
  },
  {
    name: "jwt-jwks-url",
    type: "string",
    value: "<url>",
    env: "OPSTREAM_JWT_JWKS_URL",
    help: "Authorize clients with JWTs verified by the keys of this JWKS endpoint (fetched when needed, cached, picked by kid). Same scopes as --jwt-secret.",
    group: "serve",
  },
  {
    name: "jwt-issuer",
    type: "string",
    value: "<iss>",
    env: "OPSTREAM_JWT_ISSUER",
    shownDefault: "not checked",
    help: "Accept only JWTs with this iss claim.",
    group: "serve",
  },
  {
    name: "jwt-audience",
    type: "string",
    value: "<aud>",
    env: "OPSTREAM_JWT_AUDIENCE",
    shownDefault: "not checked",
    help: "Accept only JWTs with this aud claim.",
    group: "serve",
  },
  {
    name: "jwt-algorithms",
    type: "string",
    value: "<list>",
    env: "OPSTREAM_JWT_ALGORITHMS",
    shownDefault:
      "HS256,HS384,HS512 with a secret; those the key fits with a public key; RS256,ES256 with a JWKS URL",
    help: "Comma-separated alg values accepted (with --jwt-public-key, only ones the key fits).",
    group: "serve",
  },
  {
    name: "allowed-origins",
    type: "string",
    value: "<list>",
    env: "OPSTREAM_ALLOWED_ORIGINS",
    default: "*",
    help: "Comma-separated origins whose pages may connect, e.g. https://app.example.com.",
    group: "serve",
  },
  {
    name: "max-connections-per-ip",
    type: "string",
    value: "<n>",
    env: "OPSTREAM_MAX_CONNECTIONS_PER_IP",
    shownDefault: "100",
    help: "Connections from one address; 0 = no limit.",
    group: "serve",
  },
  {
    name: "ipv6-prefix-length",
    type: "string",
    value: "<n>",
    env: "OPSTREAM_IPV6_PREFIX_LENGTH",
    shownDefault: "64",
    help: "IPv6 clients count per prefix of n bits for the limit above; 128 = per address.",
    group: "serve",
  },
  {
    name: "trust-proxy",
    type: "string",
    value: "<list>",
    env: "OPSTREAM_TRUST_PROXY",
    shownDefault: "loopback,linklocal,uniquelocal",
    help: "Comma-separated peers whose X-Forwarded-For names the client (for the per-address limit and the logs): addresses, CIDRs, loopback, linklocal, uniquelocal; none = trust no peer. A trusted peer that forwards no address is not counted per address.",
    group: "serve",
  },
  {
    name: "auth-timeout-ms",
    type: "string",
    value: "<n>",
    env: "OPSTREAM_AUTH_TIMEOUT_MS",
    shownDefault: "10000",
    help: "Close a Hocuspocus socket on which no document was authorized within n ms (4010); 0 = off.",
    group: "serve",
  },
  {
    name: "message-rate",
    type: "string",
    value: "<n>",
    env: "OPSTREAM_MESSAGE_RATE",
    shownDefault: "100",
    help: "Frames per second per connection (token bucket); 0 = no limit.",
    group: "serve",
  },
  {
    name: "max-documents",
    type: "string",
    value: "<n>",
    env: "OPSTREAM_MAX_DOCUMENTS",
    shownDefault: "10000",
    help: "Documents this node holds open; past it new ones get 1013; 0 = no limit.",
    group: "serve",
  },
  {
    name: "max-documents-per-socket",
    type: "string",
    value: "<n>",
    env: "OPSTREAM_MAX_DOCUMENTS_PER_SOCKET",
    shownDefault: "100",
    help: "Documents open on one Hocuspocus socket; 0 = no limit.",
    group: "serve",
  },
  {
    name: "max-documents-per-principal",
    type: "string",
    value: "<n>",
    env: "OPSTREAM_MAX_DOCUMENTS_PER_PRINCIPAL",
    shownDefault: "1000",
    help: "Documents one principal (JWT sub, else address) has open on this node; 0 = no limit.",
    group: "serve",
  },
  {
    name: "max-pending-update-bytes",
    type: "string",
    value: "<n>",
    env: "OPSTREAM_MAX_PENDING_UPDATE_BYTES",
    shownDefault: "4194304",
    help: "Bytes of updates waiting for missing dependencies per document; past it the sender is closed (4009).",
    group: "serve",
  },
  ...CLUSTER_FLAGS,
  {
    name: "log-level",
    type: "string",
    value: "<level>",
    env: "OPSTREAM_LOG_LEVEL",
    shownDefault: "info",
    help: "fatal, error, warn, info, debug, trace or silent. Logs are JSON lines, pretty-printed instead when stdout is a terminal.",
    group: "serve",
  },
  { name: "help", type: "boolean", help: "Print this text.", group: "serve" },
] satisfies CliFlag[]);

/** The default a flag's documentation states, if any. */
export function stateDefault(flag: CliFlag): string | undefined {
  return flag.shownDefault ?? flag.default;
}

/** `--help` of `opstream serve`, generated from {@link CLI_FLAGS}. */
export function usage(): string {
  const lines = [
    "Usage: opstream serve [options]",
    "       opstream --version       print the version",
    "       opstream import --help   load a Hocuspocus SQLite database or a folder of Yjs states into storage",
    "",
  ];
  const describe = (flag: CliFlag): string[] => {
    const head = `  --${flag.name}${flag.value ? ` ${flag.value}` : ""}`;
    const notes = [
      flag.env ? `env ${flag.env}` : undefined,
      stateDefault(flag) ? `default ${stateDefault(flag)}` : undefined,
    ]
      .filter(Boolean)
      .join(", ");
    return [head, ...wrap(`${flag.help}${notes ? ` (${notes})` : ""}`, 84).map((line) => `      ${line}`)];
  };
  for (const flag of CLI_FLAGS.filter((f) => f.group === "serve")) lines.push(...describe(flag));
  lines.push("", "Cluster (all nodes share one Redis and one store):");
  for (const flag of CLI_FLAGS.filter((f) => f.group === "cluster")) lines.push(...describe(flag));
  return `${lines.join("\n")}\n`;
}

/** Options for `node:util`'s `parseArgs`: each flag's default is its variable, else its `default`. */
export function parseOptions(
  env: NodeJS.ProcessEnv = process.env,
): Record<string, { type: "string"; default?: string } | { type: "boolean"; default: boolean }> {
  const options: Record<
    string,
    { type: "string"; default?: string } | { type: "boolean"; default: boolean }
  > = {};
  for (const flag of CLI_FLAGS) {
    if (flag.type === "boolean") options[flag.name] = { type: "boolean", default: false };
    else {
      const value = (flag.env === undefined ? undefined : env[flag.env]) ?? flag.default;
      options[flag.name] = value === undefined ? { type: "string" } : { type: "string", default: value };
    }
  }
  return options;
}

/** Splits text into lines of at most `width` characters at spaces. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}
