// The public API. Explicit exports only: anything not listed here is internal.
export { ServiceCollection, ServiceProvider, type Factory } from "./hosting/service-collection.js";
export { Token } from "./hosting/token.js";
export { Tokens } from "./hosting/tokens.js";
export { OpStreamBuilder, type LocalBackplaneOptions } from "./hosting/builder.js";
export { OpStreamHost, type ShutdownOptions } from "./hosting/host.js";
export {
  SESSION_DEFAULTS,
  type OpStreamOptions,
  type SessionOptions,
  type ResolvedOptions,
} from "./hosting/options.js";
export { ErrorCodes, OpStreamError, isOpStreamError, type ErrorCode } from "./errors.js";
export { OpStreamMetrics } from "./metrics.js";
export type { Logger } from "./logging/logger.js";

export { DocumentSession } from "./engine/document-session.js";
export type { DocumentState, JoinInfo, ManagementAction } from "./engine/session-state.js";
export type { SessionDependencies, SessionServices } from "./engine/session-services.js";
export {
  HybridSnapshotPolicy,
  HYBRID_SNAPSHOT_DEFAULTS,
  type SnapshotPolicy,
  type HybridSnapshotOptions,
} from "./engine/snapshot-policy.js";
export { AwarenessRegistry, AWARENESS_DEFAULTS, type AwarenessOptions } from "./engine/awareness.js";
export type { Origin } from "./engine/origin.js";
export type { SessionPeer, DisconnectReason } from "./engine/peer.js";
export type { Validator, Seeder, UpdateContext } from "./engine/validation.js";
export { ServerDocuments, ServerDocument, type OpenDocumentOptions } from "./hosting/documents.js";
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
export { LocalBackplane } from "./backplane/local/local-backplane.js";
export {
  LocalBus,
  type Delivery,
  type DeliveryInterceptor,
  type LocalBusOptions,
} from "./backplane/local/local-bus.js";
export { LocalOwnership } from "./backplane/local/local-ownership.js";
export {
  ClusterBackplane,
  CLUSTER_BACKPLANE_DEFAULTS,
  type ClusterBackplaneOptions,
} from "./backplane/cluster-backplane.js";
export type { BackplaneLogger } from "./backplane/backplane-logger.js";
export { RedisBackplane } from "./backplane/redis/redis-backplane.js";
export { RedisOwnership, type RedisOwnershipOptions } from "./backplane/redis/redis-ownership.js";
export { REDIS_BACKPLANE_DEFAULTS, type RedisBackplaneOptions } from "./backplane/redis/options.js";

export { DocumentRouter, type JoinOptions } from "./router/document-router.js";
export type { DocumentHandle } from "./router/document-handle.js";

export {
  WebSocketTransport,
  TRANSPORT_DEFAULTS,
  type TransportOptions,
} from "./transport/websocket-transport.js";
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

export type {
  ClaimEpochOptions,
  DocumentStore,
  StoredOp,
  StoredSnapshot,
  StoredDocument,
} from "./storage/document-store.js";
export { MemoryDocumentStore } from "./storage/memory/memory-store.js";
export { SqliteDocumentStore, type SqliteStoreOptions } from "./storage/sqlite/sqlite-store.js";
export { PostgresDocumentStore, type PostgresStoreOptions } from "./storage/postgres/postgres-store.js";
export { RedisDocumentStore, type RedisStoreOptions } from "./storage/redis/redis-store.js";
export { TENANT_ID, tenantDocId, type TenantResolver } from "./transport/tenancy.js";
