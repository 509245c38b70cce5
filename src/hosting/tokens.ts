import type { IBackplane } from "../backplane/backplane.js";
import type { IOwnership } from "../backplane/ownership.js";
import type { ConsumerRegistration } from "../engine/consumers.js";
import type { HookRegistration } from "../hooks.js";
import type { SnapshotPolicy } from "../engine/snapshot-policy.js";
import type { Seeder, Validator } from "../engine/validation.js";
import type { Logger } from "../logging/logger.js";
import type { OpStreamMetrics } from "../metrics.js";
import type { DocumentStore } from "../storage/document-store.js";
import type { Authorizer } from "../transport/authorization.js";
import type { StatelessHandler } from "../transport/hocuspocus/stateless.js";
import type { ManagementAuthorizer } from "../http/management.js";
import type { TenantResolver } from "../transport/tenancy.js";
import type { ResolvedOptions } from "./options.js";
import { Token } from "./token.js";

/** The tokens opstream registers. Custom implementations are registered with the builder's `use*()`. */
export const Tokens = Object.freeze({
  Options: new Token<ResolvedOptions>("Options"),
  Logger: new Token<Logger>("Logger"),
  Metrics: new Token<OpStreamMetrics>("Metrics"),
  Store: new Token<DocumentStore>("DocumentStore"),
  Backplane: new Token<IBackplane>("Backplane"),
  Ownership: new Token<IOwnership>("Ownership"),
  SnapshotPolicy: new Token<SnapshotPolicy>("SnapshotPolicy"),
  Seeder: new Token<Seeder | undefined>("Seeder"),
  Authorizer: new Token<Authorizer>("Authorizer"),
  ManagementAuthorizer: new Token<ManagementAuthorizer>("ManagementAuthorizer"),
  TenantResolver: new Token<TenantResolver | undefined>("TenantResolver"),
  Validators: new Token<Validator>("Validators"),
  Consumers: new Token<ConsumerRegistration>("Consumers"),
  StatelessHandlers: new Token<StatelessHandler>("StatelessHandlers"),
  Hooks: new Token<HookRegistration>("Hooks"),
});
