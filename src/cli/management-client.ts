/**
 * One interface for every management operation (issue 10 design §3, same names and inputs), with
 * two back-ends: LocalClient on the data directory (src/cli/local-client.ts) and RemoteClient on
 * the REST API (src/cli/remote-client.ts). Each CLI command is written once over this interface,
 * so `regauth user list` prints the same thing offline and remote: both return the same views.
 */
import type {
  AccessTokenView,
  AuditEventView,
  CreatedAccessTokenView,
  GroupView,
  Level,
  MeView,
  Page,
  PermissionView,
  RepositoryDetailView,
  RepositoryView,
  RetiredNameView,
  RobotView,
  SyncReportView,
  TagView,
  TokenScope,
  UserView,
  CreatedWebhookView,
  DeliveryView,
  WebhookView,
} from "./views.ts";

export interface PageRequest {
  limit?: number;
  cursor?: string;
}

export interface UserFilter {
  q?: string;
  state?: "enabled" | "disabled" | "pending" | "admin";
}

export interface PermissionFilter {
  user?: string;
  group?: string;
  pattern?: string;
}

export interface AuditFilter {
  /** RFC 3339 times. */
  since?: string;
  until?: string;
  actor?: string;
  repository?: string;
  kind?: string;
  /** Only events after this id (what --follow polls with). */
  after_id?: number;
}

export interface NewTokenInput {
  name: string;
  scopes: TokenScope[];
  repository_patterns: string[];
  /** RFC 3339; absent: never expires (or the server's maximum lifetime). */
  expires_at?: string;
}

export type WebhookEvent = "repository.created" | "tag.pushed" | "tag.deleted";

export interface NewWebhookInput {
  name: string;
  url: string;
  repository_patterns: string[];
  events?: WebhookEvent[];
  enabled?: boolean;
}

export interface WebhookChanges {
  url?: string;
  repository_patterns?: string[];
  events?: WebhookEvent[];
  enabled?: boolean;
}

export interface ManagementClient {
  /** Where the commands act, for messages: "the data directory /var/lib/regauth" or a URL. */
  readonly description: string;
  me(): Promise<MeView>;
  listUsers(filter: UserFilter, page: PageRequest): Promise<Page<UserView>>;
  getUser(input: { name: string }): Promise<UserView>;
  createUser(input: {
    name: string;
    password: string;
    admin?: boolean;
    disabled?: boolean;
  }): Promise<UserView>;
  setPassword(input: { name: string; password: string; current_password?: string }): Promise<UserView>;
  updateUser(input: { name: string; enabled?: boolean; admin?: boolean }): Promise<UserView>;
  deleteUser(input: { name: string }): Promise<UserView>;
  releaseName(input: { name: string }): Promise<RetiredNameView>;
  /** Not an operation of the API yet: remote answers "not supported remotely yet". */
  listRetiredNames(): Promise<RetiredNameView[]>;
  listGroups(page: PageRequest): Promise<Page<GroupView>>;
  getGroup(input: { name: string }): Promise<GroupView>;
  createGroup(input: { name: string }): Promise<GroupView>;
  deleteGroup(input: { name: string }): Promise<GroupView>;
  addMember(input: { group: string; user: string }): Promise<GroupView>;
  removeMember(input: { group: string; user: string }): Promise<GroupView>;
  listPermissions(filter: PermissionFilter, page: PageRequest): Promise<Page<PermissionView>>;
  grant(input: { grantee: string; pattern: string; level: Level }): Promise<PermissionView>;
  revoke(input: { grantee: string; pattern: string }): Promise<PermissionView>;
  listAccessTokens(filter: { owner?: string }): Promise<AccessTokenView[]>;
  createAccessToken(input: NewTokenInput & { owner?: string }): Promise<CreatedAccessTokenView>;
  revokeAccessToken(input: { id: number }): Promise<AccessTokenView>;
  listRobots(filter: { namespace?: string }): Promise<RobotView[]>;
  createRobot(input: { namespace?: string; name: string; description?: string }): Promise<RobotView>;
  deleteRobot(input: { name: string }): Promise<RobotView>;
  createRobotToken(input: NewTokenInput & { robot: string }): Promise<CreatedAccessTokenView>;
  queryAudit(filter: AuditFilter, page: PageRequest): Promise<Page<AuditEventView>>;
  /** Webhooks (issue 11); `webhook` is a name or an id. */
  listWebhooks(): Promise<WebhookView[]>;
  getWebhook(input: { webhook: string }): Promise<WebhookView>;
  createWebhook(input: NewWebhookInput): Promise<CreatedWebhookView>;
  updateWebhook(input: WebhookChanges & { webhook: string }): Promise<WebhookView>;
  deleteWebhook(input: { webhook: string }): Promise<WebhookView>;
  rotateWebhookSecret(input: { webhook: string }): Promise<CreatedWebhookView>;
  testWebhook(input: { webhook: string }): Promise<DeliveryView>;
  listDeliveries(input: { webhook: string }, page: PageRequest): Promise<Page<DeliveryView>>;
  redeliver(input: { id: number }): Promise<DeliveryView>;
  /** The image index (issue 11): what the caller may pull (offline: everything). */
  listRepositories(filter: { pattern?: string }, page: PageRequest): Promise<Page<RepositoryView>>;
  getRepository(input: { name: string }): Promise<RepositoryDetailView>;
  listTags(input: { name: string }, page: PageRequest): Promise<Page<TagView>>;
  getTag(input: { name: string; tag: string }): Promise<TagView>;
  /** Crawl the registry and reconcile the index now. */
  syncRepositories(): Promise<SyncReportView>;
  close(): void;
}

/** Every item of a paginated list, page after page (the CLI prints whole lists). */
export async function allPages<T>(fetchPage: (page: PageRequest) => Promise<Page<T>>): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | undefined;
  for (let pages = 0; pages < 10_000; pages++) {
    const page = await fetchPage(cursor === undefined ? { limit: 500 } : { limit: 500, cursor });
    items.push(...page.items);
    if (page.next_cursor === null || page.next_cursor === cursor) return items;
    cursor = page.next_cursor;
  }
  return items;
}
