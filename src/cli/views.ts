/**
 * The views the CLI prints: the management layer's TypeBox types (src/management/schemas.ts,
 * the single source of truth), re-exported so the CLI has one place to import them from.
 */
export type {
  AccessTokenView,
  AuditEventView,
  CreatedAccessTokenView,
  GroupView,
  MeView,
  Page,
  PermissionView,
  RetiredNameView,
  RepositoryDetailView,
  RepositoryView,
  RobotView,
  SyncReportView,
  TagView,
  TokenScope,
  UserView,
  CreatedWebhookView,
  DeliveryView,
  WebhookView,
} from "../management/schemas.ts";
export type Level = "read" | "write" | "admin";
