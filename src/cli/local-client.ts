/**
 * ManagementClient on the data directory: the offline CLI, acting as the local administrator
 * (whoever may open regauth.db may do anything). Read-only commands open the database
 * read-only. Results are the same views the API returns, so the commands print the same thing.
 */
import type { Database } from "bun:sqlite";
import * as groups from "../accounts/groups.ts";
import * as permissions from "../accounts/permissions.ts";
import * as users from "../accounts/users.ts";
import { CommandFailed } from "./args.ts";
import type { ManagementClient, PageRequest, PermissionFilter, UserFilter } from "./management-client.ts";
import type {
  AccessTokenView,
  AuditEventView,
  CreatedAccessTokenView,
  GroupView,
  Level,
  Page,
  PermissionView,
  RetiredNameView,
  RobotView,
  UserView,
} from "./views.ts";

export type DatabaseAccess = "read" | "write";
export type OpenDatabase = (access: DatabaseAccess) => Promise<Database>;

function rfc3339(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toISOString().replace(/\.000Z$/, "Z");
}

function orNull(unixSeconds: number): string | null {
  return unixSeconds === 0 ? null : rfc3339(unixSeconds);
}

function nowUnix(): number {
  return Math.floor(Date.now() / 1000);
}

export function userView(user: users.User): UserView {
  return {
    name: user.name,
    kind: "person",
    is_admin: user.isAdmin,
    is_enabled: user.isEnabled,
    is_pending_approval: user.isPendingApproval,
    created_at: rfc3339(user.createdAtUnix),
    last_login_at: orNull(user.lastLoginAtUnix),
  };
}

function groupView(group: groups.Group): GroupView {
  return { name: group.name, members: group.members, created_at: rfc3339(group.createdAtUnix) };
}

function permissionView(permission: permissions.Permission): PermissionView {
  return {
    grantee: permissions.formatGrantee(permission.grantee),
    pattern: permission.pattern,
    level: permission.level,
    created_at: rfc3339(permission.createdAtUnix),
  };
}

function onePage<T>(items: T[]): Page<T> {
  return { items, next_cursor: null };
}

function notOffline(what: string): never {
  throw new CommandFailed(`${what} is not available offline in this build; use a server (regauth login URL)`);
}

export class LocalClient implements ManagementClient {
  private db: Database | null = null;
  private access: DatabaseAccess | null = null;

  constructor(
    private readonly open: OpenDatabase,
    readonly description = "the data directory",
  ) {}

  private async database(access: DatabaseAccess): Promise<Database> {
    if (this.db !== null && (this.access === "write" || access === "read")) return this.db;
    this.db?.close();
    this.db = await this.open(access);
    this.access = access;
    return this.db;
  }

  private async group(db: Database, name: string): Promise<GroupView> {
    const found = groups.listGroups(db).find((g) => g.name === name);
    if (!found) throw new CommandFailed(`no group ${JSON.stringify(name)}`);
    return groupView(found);
  }

  async me(): Promise<UserView> {
    return notOffline("regauth me");
  }
  async listUsers(filter: UserFilter, _page: PageRequest): Promise<Page<UserView>> {
    const all = users.listUsers(await this.database("read")).map(userView);
    return onePage(
      all.filter(
        (u) =>
          (filter.q === undefined || u.name.includes(filter.q)) &&
          (filter.state === undefined ||
            (filter.state === "enabled" && u.is_enabled) ||
            (filter.state === "pending" && u.is_pending_approval) ||
            (filter.state === "disabled" && !u.is_enabled && !u.is_pending_approval)),
      ),
    );
  }
  async getUser(input: { name: string }) {
    return userView(users.getUser(await this.database("read"), input.name));
  }
  async createUser(input: { name: string; password: string; admin?: boolean; disabled?: boolean }) {
    users.checkUsername(input.name);
    users.checkPassword(input.password);
    const passwordHash = await users.hashNewPassword(input.password);
    const created = users.createUser(await this.database("write"), {
      name: input.name,
      passwordHash,
      isAdmin: input.admin === true,
      isEnabled: input.disabled !== true,
      nowUnix: nowUnix(),
    });
    return userView(created);
  }
  async setPassword(input: { name: string; password: string }) {
    users.checkPassword(input.password);
    const db = await this.database("write");
    users.setPasswordHash(db, input.name, await users.hashNewPassword(input.password));
    return userView(users.getUser(db, input.name));
  }
  async updateUser(input: { name: string; enabled?: boolean; admin?: boolean }) {
    const db = await this.database("write");
    if (input.enabled !== undefined) users.setEnabled(db, input.name, input.enabled);
    if (input.admin !== undefined) users.setAdmin(db, input.name, input.admin);
    return userView(users.getUser(db, input.name));
  }
  async deleteUser(input: { name: string }) {
    const db = await this.database("write");
    const before = userView(users.getUser(db, input.name));
    users.deleteUser(db, input.name, nowUnix());
    return before;
  }
  async releaseName(input: { name: string }) {
    const db = await this.database("write");
    const retired = users.retiredName(db, input.name);
    users.releaseName(db, input.name);
    return { name: input.name, retired_at: rfc3339(retired?.retiredAtUnix ?? 0) };
  }
  async listRetiredNames(): Promise<RetiredNameView[]> {
    return users
      .listRetiredNames(await this.database("read"))
      .map((r) => ({ name: r.name, retired_at: rfc3339(r.retiredAtUnix) }));
  }
  async listGroups(_page: PageRequest) {
    return onePage(groups.listGroups(await this.database("read")).map(groupView));
  }
  async getGroup(input: { name: string }) {
    const db = await this.database("read");
    groups.getGroupId(db, input.name);
    return this.group(db, input.name);
  }
  async createGroup(input: { name: string }) {
    const db = await this.database("write");
    groups.createGroup(db, input.name, nowUnix());
    return this.group(db, input.name);
  }
  async deleteGroup(input: { name: string }) {
    const db = await this.database("write");
    groups.getGroupId(db, input.name);
    const before = await this.group(db, input.name);
    groups.deleteGroup(db, input.name);
    return before;
  }
  async addMember(input: { group: string; user: string }) {
    const db = await this.database("write");
    groups.addMember(db, input.group, input.user);
    return this.group(db, input.group);
  }
  async removeMember(input: { group: string; user: string }) {
    const db = await this.database("write");
    groups.removeMember(db, input.group, input.user);
    return this.group(db, input.group);
  }
  async listPermissions(filter: PermissionFilter, _page: PageRequest) {
    const all = permissions.listPermissions(await this.database("read")).map(permissionView);
    return onePage(
      all.filter(
        (p) =>
          (filter.user === undefined || p.grantee === filter.user) &&
          (filter.group === undefined || p.grantee === `@${filter.group}`) &&
          (filter.pattern === undefined || p.pattern === filter.pattern),
      ),
    );
  }
  async grant(input: { grantee: string; pattern: string; level: Level }) {
    const db = await this.database("write");
    permissions.grant(db, permissions.parseGrantee(input.grantee), input.pattern, input.level, nowUnix());
    const found = permissions
      .listPermissions(db)
      .map(permissionView)
      .find((p) => p.grantee === input.grantee && p.pattern === input.pattern);
    if (!found) throw new CommandFailed("the grant did not stick");
    return found;
  }
  async revoke(input: { grantee: string; pattern: string }) {
    const db = await this.database("write");
    const before = permissions
      .listPermissions(db)
      .map(permissionView)
      .find((p) => p.grantee === input.grantee && p.pattern === input.pattern);
    permissions.revoke(db, permissions.parseGrantee(input.grantee), input.pattern);
    return before as PermissionView;
  }
  async listAccessTokens(): Promise<AccessTokenView[]> {
    return notOffline("access tokens");
  }
  async createAccessToken(): Promise<CreatedAccessTokenView> {
    return notOffline("access tokens");
  }
  async revokeAccessToken(): Promise<AccessTokenView> {
    return notOffline("access tokens");
  }
  async listRobots(): Promise<RobotView[]> {
    return notOffline("robot accounts");
  }
  async createRobot(): Promise<RobotView> {
    return notOffline("robot accounts");
  }
  async deleteRobot(): Promise<RobotView> {
    return notOffline("robot accounts");
  }
  async createRobotToken(): Promise<CreatedAccessTokenView> {
    return notOffline("robot accounts");
  }
  async queryAudit(): Promise<Page<AuditEventView>> {
    return notOffline("the audit log");
  }
  close(): void {
    this.db?.close();
    this.db = null;
  }
}
