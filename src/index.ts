/**
 * opstream's public API: what an application calls (the builder, the host, options
 * and their defaults, errors, metrics) and the extension points it implements
 * (authorizers, validators, seeders, consumers, hooks, stores, backplanes).
 *
 * Explicit exports only; anything not listed here is internal (sessions, the
 * router, the DI tokens, the backplanes' machinery: specs import those by path).
 * api/opstream.api.md records this surface and `npm run api:check` fails when it
 * changes, so every API change is a deliberate diff of that file.
 *
 * @packageDocumentation
 */
export { ServiceCollection } from "./hosting/service-collection.js";
export { OpStreamBuilder, type LocalBackplaneOptions } from "./hosting/builder.js";
export { OpStreamHost, type ShutdownOptions } from "./hosting/host.js";
export {
  SESSION_DEFAULTS,
  type OpStreamOptions,
  type SessionOptions,
  type ResolvedOptions,
} from "./hosting/options.js";
export { ErrorCodes, OpStreamError, isOpStreamError, type ErrorCode } from "./errors.js";
export { OpStreamMetrics, type OpStreamMetricsOptions } from "./metrics.js";
export { LOG_LEVELS, type Logger, type LogLevel } from "./logging/logger.js";

export {
  HybridSnapshotPolicy,
  HYBRID_SNAPSHOT_DEFAULTS,
  OP_WEIGHT_BYTES,
  type SnapshotPolicy,
  type HybridSnapshotOptions,
} from "./engine/snapshot-policy.js";
export { AWARENESS_DEFAULTS, type AwarenessOptions } from "./engine/awareness.js";
export type { Origin } from "./engine/origin.js";
export type { DisconnectReason } from "./engine/peer.js";
export type { Validator, Seeder, UpdateContext } from "./engine/validation.js";
export { ServerDocuments, ServerDocument, type OpenDocumentOptions } from "./hosting/documents.js";
export {
  DocumentHistory,
  type DiffChange,
  type DiffDeltaOp,
  type RestoreResult,
  type TypeDiff,
  type VersionComparison,
  type VersionContent,
  type VersionDiff,
  type VersionRef,
} from "./hosting/history.js";
export { VERSION_MESSAGE } from "./hosting/history-stateless.js";
export type { RootKind } from "./engine/shared-json.js";
export {
  HISTORY_DEFAULTS,
  type HistoryOptions,
  type ResolvedHistoryOptions,
  type RetentionOptions,
} from "./engine/history/history-options.js";
export type {
  AwarenessEvent,
  ChangeEvent,
  ChangeOrigin,
  ConnectEvent,
  DestroyEvent,
  DisconnectEvent,
  HookEvents,
  HookHandler,
  HookName,
  ListenEvent,
  LoadedEvent,
  UnloadedEvent,
  UnloadReason,
} from "./hooks.js";
export {
  CONSUMER_DEFAULTS,
  type ConsumerHandler,
  type ConsumerOptions,
  type ConsumerRecord,
} from "./engine/consumers.js";
export {
  WebhookHeaders,
  signWebhook,
  verifyWebhookSignature,
  webhookConsumer,
  type WebhookBody,
  type WebhookOptions,
} from "./engine/webhook-consumer.js";

export {
  ChannelMessageType,
  type ChannelMessage,
  type ChannelHandler,
  type IBackplane,
  type RequestHandler,
  type RequestOptions,
  type Subscription,
} from "./backplane/backplane.js";
export type { AcquireOptions, IOwnership, Lease } from "./backplane/ownership.js";
export type { BackplaneLogger } from "./backplane/backplane-logger.js";
export { REDIS_BACKPLANE_DEFAULTS, type RedisBackplaneOptions } from "./backplane/redis/options.js";

export {
  TRANSPORT_DEFAULTS,
  type ResolvedTransportOptions,
  type TransportDefaults,
  type TransportOptions,
} from "./transport/transport-options.js";
export { CloseCodes, type CloseCode } from "./transport/close-codes.js";
export type { StatelessHandler, StatelessRequest } from "./transport/hocuspocus/stateless.js";
export {
  allowAll,
  type Access,
  type AccessGrant,
  type Authorizer,
  type AuthorizationRequest,
  type DenialReason,
} from "./transport/authorization.js";
export { jwtAuthorizer, type JwtAuthorizerOptions, type JwtGrant } from "./transport/jwt-authorizer.js";
export {
  accessFromScopes,
  documentScope,
  type DocumentScopeOptions,
  type ScopeAccess,
} from "./transport/scopes.js";
export { TOKEN_SUBPROTOCOL } from "./transport/admission.js";
export type { ManagementAuthorizer } from "./http/management.js";

export type {
  ClaimEpochOptions,
  DocumentStore,
  NewVersion,
  SaveSnapshotOptions,
  StoredOp,
  StoredSnapshot,
  StoredDocument,
  StoredVersion,
  VersionInfo,
  VersionKind,
} from "./storage/document-store.js";
export { MemoryDocumentStore } from "./storage/memory/memory-store.js";
export { SqliteDocumentStore, type SqliteStoreOptions } from "./storage/sqlite/sqlite-store.js";
export { PostgresDocumentStore, type PostgresStoreOptions } from "./storage/postgres/postgres-store.js";
export { RedisDocumentStore, type RedisStoreOptions } from "./storage/redis/redis-store.js";
export type { RedisClusterNode } from "./storage/redis/cluster-url.js";
export { TENANT_ID, tenantDocId, type TenantResolver } from "./transport/tenancy.js";
