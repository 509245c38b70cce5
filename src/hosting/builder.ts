import { LocalBackplane } from "../backplane/local/local-backplane.js";
import type { LocalBus } from "../backplane/local/local-bus.js";
import { LocalOwnership } from "../backplane/local/local-ownership.js";
import { RedisBackplane } from "../backplane/redis/redis-backplane.js";
import type { RedisBackplaneOptions } from "../backplane/redis/options.js";
import { ErrorCodes, OpStreamError } from "../errors.js";
import { consumerRegistration, type ConsumerHandler, type ConsumerOptions } from "../engine/consumers.js";
import { HybridSnapshotPolicy, type SnapshotPolicy } from "../engine/snapshot-policy.js";
import type { Seeder, Validator } from "../engine/validation.js";
import { hookRegistration, type HookHandler, type HookName } from "../hooks.js";
import type { Logger } from "../logging/logger.js";
import type { DocumentStore } from "../storage/document-store.js";
import { MemoryDocumentStore } from "../storage/memory/memory-store.js";
import { SqliteDocumentStore, type SqliteStoreOptions } from "../storage/sqlite/sqlite-store.js";
import { RedisDocumentStore, type RedisStoreOptions } from "../storage/redis/redis-store.js";
import { PostgresDocumentStore, type PostgresStoreOptions } from "../storage/postgres/postgres-store.js";
import { allowAll, type Authorizer } from "../transport/authorization.js";
import type { TenantResolver } from "../transport/tenancy.js";
import { jwtAuthorizer, type JwtAuthorizerOptions } from "../transport/jwt-authorizer.js";
import type { StatelessHandler } from "../transport/hocuspocus/stateless.js";
import { bearerToken, denyAll, type ManagementAuthorizer } from "../http/management.js";
import { OpStreamMetrics } from "../metrics.js";
import { createDefaultLogger, withRedaction } from "../logging/logger.js";
import { resolveOptions, type OpStreamOptions } from "./options.js";
import type { ServiceCollection } from "./service-collection.js";
import { Tokens } from "./tokens.js";

/** Options of {@link OpStreamBuilder.useLocalBackplane}. */
export interface LocalBackplaneOptions {
  /** @internal Share a bus between in-process nodes (specs). @default a new bus */
  bus?: LocalBus;
}

type UnsafeDefault = "storage" | "authorization" | "origins";

const UNSAFE_DEFAULT_WARNINGS: Readonly<Record<UnsafeDefault, string>> = Object.freeze({
  storage:
    "Using in-memory storage: documents are lost when the process exits. Call useSqliteStorage(path) (or another durable store) for production.",
  authorization:
    "Using the allow-all authorizer: anyone who can reach this server can read and write every document. Call useAuthorization(authorizer) for production.",
  origins:
    'Accepting WebSocket upgrades from every origin: any web page can connect with its visitors\' cookies. Set transport.allowedOrigins (e.g. ["https://app.example.com"]) for production.',
});

/**
 * Configures opstream. `use*()` registers a singleton (the last call wins);
 * `add*()` appends to a collection. Every call returns the builder, so calls chain.
 */
export class OpStreamBuilder {
  private readonly unsafeDefaults = new Set<UnsafeDefault>(["storage", "authorization", "origins"]);
  private readonly deprecations: string[] = [];
  private readonly consumerNames = new Set<string>();

  /** @internal Created by `services.addOpStream()`. */
  constructor(
    private readonly services: ServiceCollection,
    options: OpStreamOptions,
  ) {
    const resolved = resolveOptions(options);
    if (!resolved.transport.allowedOrigins.includes("*")) this.unsafeDefaults.delete("origins");
    services
      .set(Tokens.Options, () => resolved)
      .set(Tokens.Logger, (p) => createDefaultLogger({ level: p.get(Tokens.Options).logLevel }))
      .set(
        Tokens.Metrics,
        (p) => new OpStreamMetrics({ defaultMetrics: p.get(Tokens.Options).processMetrics }),
      )
      .set(Tokens.Store, () => new MemoryDocumentStore())
      .set(Tokens.SnapshotPolicy, () => new HybridSnapshotPolicy())
      .set(Tokens.Seeder, () => undefined)
      .set(Tokens.Authorizer, () => allowAll)
      .set(Tokens.ManagementAuthorizer, () => denyAll)
      .set(Tokens.TenantResolver, () => undefined);
    this.useLocalBackplane();
  }

  /** In-process backplane: the default; one node, or several sharing a bus in specs. */
  useLocalBackplane(options: LocalBackplaneOptions = {}): this {
    this.services.set(Tokens.Backplane, (p) => {
      const nodeId = p.get(Tokens.Options).nodeId;
      return new LocalBackplane({
        ...options,
        ...(nodeId === undefined ? {} : { nodeId }),
        metrics: p.get(Tokens.Metrics),
        logger: p.get(Tokens.Logger),
      });
    });
    this.services.set(Tokens.Ownership, (p) => {
      const backplane = p.get(Tokens.Backplane);
      if (!(backplane instanceof LocalBackplane)) {
        throw new TypeError("LocalOwnership needs the LocalBackplane registered by useLocalBackplane().");
      }
      return new LocalOwnership(backplane.bus, backplane.nodeId, p.get(Tokens.Store));
    });
    return this;
  }

  /**
   * Redis backplane for a cluster: a pub/sub channel per document, TTL ownership
   * leases (`<prefix>owner:<docId>`), and requests between nodes. All nodes must
   * share one store (for fencing epochs) and one Redis — or one Redis Cluster,
   * given as `{ cluster: [{ host, port }, …] }` (Redis 7+, sharded pub/sub).
   */
  useRedisBackplane(connectionStringOrOptions: string | RedisBackplaneOptions): this {
    const options =
      typeof connectionStringOrOptions === "string"
        ? { connectionString: connectionStringOrOptions }
        : connectionStringOrOptions;
    this.services.set(Tokens.Backplane, (p) => {
      const nodeId = options.nodeId ?? p.get(Tokens.Options).nodeId;
      return new RedisBackplane({
        ...options,
        ...(nodeId === undefined ? {} : { nodeId }),
        metrics: p.get(Tokens.Metrics),
        logger: p.get(Tokens.Logger),
      });
    });
    this.services.set(Tokens.Ownership, (p) => {
      const backplane = p.get(Tokens.Backplane);
      if (!(backplane instanceof RedisBackplane)) {
        throw new OpStreamError(
          ErrorCodes.MISSING_DEPENDENCY,
          "Redis ownership needs the RedisBackplane registered by useRedisBackplane().",
        );
      }
      return backplane.createOwnership(p.get(Tokens.Store));
    });
    return this;
  }

  /**
   * @deprecated Use {@link useLocalBackplane}. Kept as an alias: the old no-op
   * backplane broke single-node fan-out.
   */
  useNoopBackplane(): this {
    this.services.assertOpen("useNoopBackplane()");
    this.deprecations.push(
      "useNoopBackplane() is deprecated and now means useLocalBackplane(); call that instead.",
    );
    return this.useLocalBackplane();
  }

  /** Keeps documents in memory only (tests). */
  useMemoryStorage(): this {
    this.services.set(Tokens.Store, () => new MemoryDocumentStore());
    this.unsafeDefaults.add("storage");
    return this;
  }

  /** Embedded SQLite storage in one file (WAL). */
  useSqliteStorage(pathOrOptions: string | SqliteStoreOptions): this {
    const options = typeof pathOrOptions === "string" ? { path: pathOrOptions } : pathOrOptions;
    return this.useStorage(() => new SqliteDocumentStore(options));
  }

  /**
   * Redis storage: the op log as a stream per document (`<prefix>ops:<docId>`),
   * snapshot, metadata and epoch keys, every write a fenced Lua script. Run Redis
   * with AOF (OPERATIONS.md, "Redis storage").
   */
  useRedisStorage(connectionStringOrOptions: string | RedisStoreOptions = {}): this {
    const options =
      typeof connectionStringOrOptions === "string"
        ? { connectionString: connectionStringOrOptions }
        : connectionStringOrOptions;
    return this.useStorage(() => new RedisDocumentStore(options));
  }

  /**
   * Postgres storage with `pg`: tables `documents`, `ops` and `consumer_offsets`,
   * created and migrated automatically; every write fenced by the epoch under a
   * row lock (OPERATIONS.md, "Postgres storage").
   */
  usePostgresStorage(connectionStringOrOptions: string | PostgresStoreOptions): this {
    const options =
      typeof connectionStringOrOptions === "string"
        ? { connectionString: connectionStringOrOptions }
        : connectionStringOrOptions;
    this.services.set(
      Tokens.Store,
      (p) => new PostgresDocumentStore({ logger: p.get(Tokens.Logger), ...options }),
    );
    this.unsafeDefaults.delete("storage");
    return this;
  }

  /** Any {@link DocumentStore} implementation (an instance, or a factory called once at build). */
  useStorage(store: DocumentStore | (() => DocumentStore)): this {
    this.services.set(Tokens.Store, typeof store === "function" ? store : () => store);
    this.unsafeDefaults.delete("storage");
    return this;
  }

  useSnapshotPolicy(policy: SnapshotPolicy): this {
    this.services.set(Tokens.SnapshotPolicy, () => policy);
    return this;
  }

  useSeeder(seeder: Seeder): this {
    this.services.set(Tokens.Seeder, () => seeder);
    return this;
  }

  /**
   * Decides, per connection and document and before anything loads, whether it may
   * read and write, only read, or nothing: an {@link Authorizer} returning an
   * `Access`, or an `AccessGrant` (`{ access, expiresAt?, reason? }`) such as
   * {@link jwtAuthorizer}'s.
   */
  useAuthorization(authorizer: Authorizer): this {
    this.services.set(Tokens.Authorizer, () => authorizer);
    this.unsafeDefaults.delete("authorization");
    return this;
  }

  /**
   * Authorizes with JSON Web Tokens: `useAuthorization(jwtAuthorizer(options))`.
   * Scopes `opstream.write:<resource>` / `opstream.read:<resource>` (resource `*`,
   * an encoded name, `<tenant>/*` or `<tenant>/<name>`: build them with `documentScope`);
   * a connection is closed when its token expires (4003). Throws INVALID_OPTION
   * unless exactly one of `secret`, `publicKey`, `jwksUrl` is given.
   */
  useJwtAuthorization(options: JwtAuthorizerOptions): this {
    return this.useAuthorization(jwtAuthorizer(options));
  }

  /**
   * Who may use the management API (`/api/documents` on `http()`): a function of
   * the express request, or a bearer token string (`Authorization: Bearer <token>`,
   * at least 16 characters). Until this is called every management request gets 403.
   */
  useManagementAuthorization(authorizerOrToken: ManagementAuthorizer | string): this {
    const authorizer =
      typeof authorizerOrToken === "string" ? bearerToken(authorizerOrToken) : authorizerOrToken;
    this.services.set(Tokens.ManagementAuthorizer, () => authorizer);
    return this;
  }

  /**
   * Multitenancy: `resolver(request)` names the tenant of each WebSocket upgrade
   * (from the host name, a header, a verified token…; `undefined` refuses it with
   * 401). Every document a connection opens is then `<tenant>/<name>` in storage,
   * channels and leases, so a tenant can never reach another tenant's document.
   * The authorizer is told the tenant and the tenant's own document name. The
   * management API and `documents.open()` work on the full `<tenant>/<name>` ids.
   */
  useTenantResolver(resolver: TenantResolver): this {
    this.services.set(Tokens.TenantResolver, () => resolver);
    return this;
  }

  /**
   * The metrics opstream records (its own `OpStreamMetrics` instance, served at
   * `/metrics`): pass one you created to read it elsewhere, merge its registry into
   * your application's (`Registry.merge`), or subclass it for another backend.
   */
  useMetrics(metrics: OpStreamMetrics): this {
    this.services.set(Tokens.Metrics, () => metrics);
    return this;
  }

  /** A pino logger for everything opstream logs (secrets are redacted on top of your settings). */
  useLogger(logger: Logger): this {
    this.services.set(Tokens.Logger, () => withRedaction(logger));
    return this;
  }

  addValidator(validator: Validator): this {
    this.services.add(Tokens.Validators, () => validator);
    return this;
  }

  /**
   * Adds a named side-effect consumer of every document's op log (indexing,
   * notifications, webhooks). It runs on each document's owner, gets each stored
   * op at least once, in order, and its committed offset is kept in the store, so
   * a restart or failover resumes where it stopped. A failing record is retried
   * head-of-line with exponential backoff (10 ms → 30 s, with jitter) and blocks
   * the consumer until it succeeds, unless `maxAttempts` + `deadLetter` are set.
   * Snapshots never trim ops a consumer has not committed. Throws INVALID_OPTION
   * for a bad name or options, and for a name added twice.
   */
  addConsumer(name: string, handler: ConsumerHandler, options: ConsumerOptions = {}): this {
    const registration = consumerRegistration(name, handler, options);
    if (this.consumerNames.has(name)) {
      throw new OpStreamError(ErrorCodes.INVALID_OPTION, `addConsumer("${name}"): the name is taken.`, {
        option: "name",
        value: name,
      });
    }
    this.services.add(Tokens.Consumers, () => registration);
    this.consumerNames.add(name);
    return this;
  }

  /**
   * Adds a handler of Hocuspocus stateless messages (`provider.sendStateless(payload)`).
   * It runs on the node the client is connected to, with the document, the payload
   * and the sender's access, token and upgrade request, and can `reply(payload)` to
   * the sender or `broadcast(payload)` to every Hocuspocus client of the document on
   * every node. Handlers run in the order added; one that throws is logged and the
   * rest are skipped. Without a handler, stateless messages are dropped.
   */
  addStatelessHandler(handler: StatelessHandler): this {
    this.services.add(Tokens.StatelessHandlers, () => handler);
    return this;
  }

  /**
   * Adds a lifecycle hook: `handler` is called with each `event` (typed by
   * `HookEvents`): `connect`/`disconnect` on the node a client is connected
   * to; `loaded`, `change` (after the change is durable), `awareness` and
   * `unloaded` on the document's owner; `listen` and `destroy` on the host. Several
   * handlers per event run in the order added. Handlers are never awaited; one that
   * throws or rejects is logged at warn and counted (`opstream_hook_errors_total`),
   * and nothing else is affected (docs/hooks.md). Throws INVALID_OPTION for an
   * unknown event or a handler that is not a function.
   */
  on<E extends HookName>(event: E, handler: HookHandler<E>): this {
    const registration = hookRegistration(event, handler);
    this.services.add(Tokens.Hooks, () => registration);
    return this;
  }

  /** @internal Logs one warning per unsafe default still in place, and per deprecated call. */
  logStartupWarnings(logger: Logger): void {
    for (const which of this.unsafeDefaults)
      logger.warn({ unsafeDefault: which }, UNSAFE_DEFAULT_WARNINGS[which]);
    for (const message of this.deprecations) logger.warn({ deprecated: true }, message);
  }
}
