/**
 * ManagementClient on the data directory: the offline CLI. It calls the same operations the API
 * calls (src/management/*), as the actor local-admin (whoever may write regauth.db may do
 * anything), so both back-ends return the same views and record the same audit events.
 * Read-only commands open the database read-only (works on a full disk or a read-only file).
 */
import type { Database } from "bun:sqlite";
import { listRetiredNames as readRetiredNames } from "../accounts/users.ts";
import type { LoadedConfig } from "../config/load.ts";
import { AccessTokenKey, ensureAccessTokenKey } from "../access-tokens/key.ts";
import { AuditLog } from "../audit/audit-log.ts";
import { auditOptions } from "../audit/config-schema.ts";
import * as audit from "../management/audit.ts";
import type { ManagementContext } from "../management/context.ts";
import * as groups from "../management/groups.ts";
import * as permissions from "../management/permissions.ts";
import type { KeySet } from "../token/key-set.ts";
import { CommandFailed } from "./args.ts";
import * as robots from "../management/robots.ts";
import * as tokens from "../management/tokens.ts";
import * as users from "../management/users.ts";
import { retiredNameView } from "../management/views.ts";
import * as webhooks from "../management/webhooks.ts";
import { registryHostOf } from "../registry-index/config-schema.ts";
import { effectiveWebhooksConfig, lazyWebhookKey, webhookServices } from "../webhooks/webhooks.ts";
import {
  type AuditFilter,
  allPages,
  type ManagementClient,
  type NewTokenInput,
  type NewWebhookInput,
  type WebhookChanges,
  type PageRequest,
  type PermissionFilter,
  type UserFilter,
} from "./management-client.ts";
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
  UserView,
} from "./views.ts";

export type DatabaseAccess = "read" | "write";
export interface OpenedDataDir {
  db: Database;
  loaded: LoadedConfig;
}
export type OpenDataDir = (access: DatabaseAccess) => Promise<OpenedDataDir>;

/**
 * Read-only commands never hash a token secret, and must not create the key file on a
 * read-only data directory: they get a key of their own that is never used.
 */
const UNUSED_KEY = AccessTokenKey.random();

/** The catalog's operations load with the authorizer chain's modules: only for `regauth repo`. */
const catalogOperations = () => import("../management/repositories.ts");

/**
 * The data directory's generated key set: a command loads the configuration without creating
 * files, which leaves the generated keys unread (src/config/load.ts); the sync signs with them.
 */
async function generatedKeySet(loaded: LoadedConfig): Promise<KeySet> {
  const { token } = loaded.config;
  const { loadKeySet } = await import("../token/key-set.ts");
  try {
    return await loadKeySet(loaded.dataDir, Math.floor(Date.now() / 1000), {
      useThumbprintKid: token.disable_legacy_key_id,
      maxTokenLifetimeSeconds: token.expiration,
    });
  } catch (error) {
    throw new CommandFailed(
      `cannot load the signing key of ${loaded.dataDir} to sign the crawl's token with: ${(error as Error).message} (regauth serve creates it)`,
    );
  }
}

export class LocalClient implements ManagementClient {
  private opened: (OpenedDataDir & { audit: AuditLog; key: AccessTokenKey }) | null = null;
  private access: DatabaseAccess | null = null;

  constructor(
    private readonly open: OpenDataDir,
    readonly description = "the data directory",
  ) {}

  /** A context for one operation; a write after a read reopens the database for writing. */
  private async context(access: DatabaseAccess): Promise<ManagementContext> {
    if (this.opened === null || (access === "write" && this.access === "read")) {
      this.opened?.db.close();
      const { db, loaded } = await this.open(access);
      // No background writer: the CLI records its changes synchronously (recordNow) and exits.
      const auditLog = new AuditLog(db, null, auditOptions(loaded.config.audit));
      const key = access === "write" ? ensureAccessTokenKey(loaded.dataDir) : UNUSED_KEY;
      this.opened = { db, loaded, audit: auditLog, key };
      this.access = access;
    }
    const { db, loaded, audit: auditLog, key } = this.opened;
    return {
      db,
      actor: { kind: "local-admin" },
      ip: "",
      audit: auditLog,
      accessTokenKey: key,
      config: {
        personalNamespaces: loaded.config.accounts.personal_namespaces,
        maxTokenLifetimeDays: loaded.config.access_tokens.max_lifetime_days ?? null,
      },
      nowUnix: Math.floor(Date.now() / 1000),
      // A running serve sees offline changes within its cache's lifetime (src/webhooks/sink.ts).
      webhooks: webhookServices(
        {
          config: effectiveWebhooksConfig(loaded.config),
          registryHost: registryHostOf(loaded.config.notifications),
        },
        access === "write" ? lazyWebhookKey(loaded.dataDir) : null,
      ),
    };
  }

  async me(): Promise<MeView> {
    return users.me(await this.context("read"));
  }
  async listUsers(filter: UserFilter, page: PageRequest): Promise<Page<UserView>> {
    return users.listUsers(await this.context("read"), filter, page);
  }
  async getUser(input: { name: string }) {
    return users.getUser(await this.context("read"), input.name);
  }
  async createUser(input: { name: string; password: string; admin?: boolean; disabled?: boolean }) {
    return users.createUser(await this.context("write"), input);
  }
  async setPassword(input: { name: string; password: string; current_password?: string }) {
    return users.setPassword(await this.context("write"), input);
  }
  async updateUser(input: { name: string; enabled?: boolean; admin?: boolean }) {
    return users.updateUser(await this.context("write"), input);
  }
  async deleteUser(input: { name: string }) {
    return users.deleteUser(await this.context("write"), input.name);
  }
  async releaseName(input: { name: string }) {
    return users.releaseName(await this.context("write"), input.name);
  }
  async listRetiredNames(): Promise<RetiredNameView[]> {
    return readRetiredNames((await this.context("read")).db).map(retiredNameView);
  }
  async listGroups(page: PageRequest): Promise<Page<GroupView>> {
    return groups.listGroups(await this.context("read"), page);
  }
  async getGroup(input: { name: string }) {
    return groups.getGroup(await this.context("read"), input.name);
  }
  async createGroup(input: { name: string }) {
    return groups.createGroup(await this.context("write"), input);
  }
  async deleteGroup(input: { name: string }) {
    return groups.deleteGroup(await this.context("write"), input.name);
  }
  async addMember(input: { group: string; user: string }) {
    return groups.addMember(await this.context("write"), input);
  }
  async removeMember(input: { group: string; user: string }) {
    return groups.removeMember(await this.context("write"), input);
  }
  async listPermissions(filter: PermissionFilter, page: PageRequest): Promise<Page<PermissionView>> {
    return permissions.listPermissions(await this.context("read"), filter, page);
  }
  async grant(input: { grantee: string; pattern: string; level: Level }) {
    return permissions.grant(await this.context("write"), input);
  }
  async revoke(input: { grantee: string; pattern: string }) {
    return permissions.revoke(await this.context("write"), input);
  }
  async listAccessTokens(filter: { owner?: string }): Promise<AccessTokenView[]> {
    const ctx = await this.context("read");
    return allPages(async (page) => tokens.listAccessTokens(ctx, filter, page));
  }
  async createAccessToken(input: NewTokenInput & { owner?: string }): Promise<CreatedAccessTokenView> {
    return tokens.createAccessToken(await this.context("write"), input);
  }
  async revokeAccessToken(input: { id: number }): Promise<AccessTokenView> {
    return tokens.revokeAccessToken(await this.context("write"), input.id);
  }
  async listRobots(filter: { namespace?: string }): Promise<RobotView[]> {
    const ctx = await this.context("read");
    return allPages(async (page) => robots.listRobots(ctx, filter, page));
  }
  async createRobot(input: { namespace?: string; name: string; description?: string }): Promise<RobotView> {
    return robots.createRobot(await this.context("write"), input);
  }
  async deleteRobot(input: { name: string }): Promise<RobotView> {
    return robots.deleteRobot(await this.context("write"), input.name);
  }
  async createRobotToken(input: NewTokenInput & { robot: string }): Promise<CreatedAccessTokenView> {
    return tokens.createRobotToken(await this.context("write"), input);
  }
  async queryAudit(filter: AuditFilter, page: PageRequest): Promise<Page<AuditEventView>> {
    return audit.queryAudit(await this.context("read"), { ...filter, ...page });
  }
  async listWebhooks() {
    const ctx = await this.context("read");
    return allPages(async (page) => webhooks.listWebhooks(ctx, page));
  }
  async getWebhook(input: { webhook: string }) {
    return webhooks.getWebhook(await this.context("read"), input.webhook);
  }
  async createWebhook(input: NewWebhookInput) {
    return webhooks.createWebhook(await this.context("write"), input);
  }
  async updateWebhook(input: WebhookChanges & { webhook: string }) {
    const { webhook, ...changes } = input;
    return webhooks.updateWebhook(await this.context("write"), webhook, changes);
  }
  async deleteWebhook(input: { webhook: string }) {
    return webhooks.deleteWebhook(await this.context("write"), input.webhook);
  }
  async rotateWebhookSecret(input: { webhook: string }) {
    return webhooks.rotateSecret(await this.context("write"), input.webhook);
  }
  async testWebhook(input: { webhook: string }) {
    return webhooks.testWebhook(await this.context("write"), input.webhook);
  }
  async listDeliveries(input: { webhook: string }, page: PageRequest) {
    return webhooks.listDeliveries(await this.context("read"), input.webhook, page);
  }
  async redeliver(input: { id: number }) {
    return webhooks.redeliver(await this.context("write"), input.id);
  }
  /** A read context with the registry's host, for the `docker pull` lines. */
  private async catalogContext(): Promise<ManagementContext> {
    const ctx = await this.context("read");
    const notifications = this.opened?.loaded.config.notifications;
    const registryHost = notifications ? registryHostOf(notifications) : null;
    return {
      ...ctx,
      registryIndex: { pullCheck: async () => async () => new Set(), registryHost, sync: null },
    };
  }
  // The image index: the local administrator sees every repository.
  async listRepositories(filter: { pattern?: string }, page: PageRequest): Promise<Page<RepositoryView>> {
    const ctx = await this.catalogContext();
    const repositories = await catalogOperations();
    return repositories.listRepositories(ctx, repositories.viewerOf(ctx), { ...filter, ...page });
  }
  async getRepository(input: { name: string }): Promise<RepositoryDetailView> {
    const ctx = await this.catalogContext();
    const repositories = await catalogOperations();
    return repositories.getRepository(ctx, repositories.viewerOf(ctx), input.name);
  }
  async listTags(input: { name: string }, page: PageRequest): Promise<Page<TagView>> {
    const ctx = await this.catalogContext();
    const repositories = await catalogOperations();
    return repositories.listTags(ctx, repositories.viewerOf(ctx), input.name, page);
  }
  async getTag(input: { name: string; tag: string }): Promise<TagView> {
    const ctx = await this.catalogContext();
    const repositories = await catalogOperations();
    return repositories.getTag(ctx, repositories.viewerOf(ctx), input.name, input.tag);
  }
  /** Crawls with the data directory's signing key (the one `regauth serve` signs with now). */
  async syncRepositories(): Promise<SyncReportView> {
    const ctx = await this.context("write");
    const repositories = await catalogOperations();
    const { IndexSync, syncSettingsFrom } = await import("../registry-index/sync.ts");
    const { CrawlFailed } = await import("../registry-index/crawler.ts");
    const loaded = this.opened?.loaded;
    if (!loaded) throw new Error("unreachable: the context opened the data directory");
    const keySet = loaded.keySet ?? (await generatedKeySet(loaded));
    // What the crawl finds new is queued for the webhooks, as under serve; serve's dispatcher sends it.
    const { WebhookCache, webhookSink } = await import("../webhooks/sink.ts");
    const sink = webhookSink({
      enabled: ctx.webhooks?.enabled ?? false,
      registryHost: ctx.webhooks?.registryHost ?? null,
      cache: new WebhookCache(),
    });
    const settings = syncSettingsFrom(loaded, () => keySet.signingKeyAt(Math.floor(Date.now() / 1000)), {
      audit: ctx.audit,
      sink,
    });
    const sync = settings ? new IndexSync(ctx.db, settings) : null;
    try {
      return await repositories.syncRepositories({
        ...ctx,
        registryIndex: {
          pullCheck: async () => async () => new Set(),
          registryHost: null,
          sync: sync ? (trigger) => sync.run(trigger) : null,
        },
      });
    } catch (error) {
      // The CLI's one line: what could not be reached and what to check.
      if (error instanceof CrawlFailed) throw new CommandFailed(error.message);
      throw error;
    }
  }
  close(): void {
    this.opened?.db.close();
    this.opened = null;
  }
}
