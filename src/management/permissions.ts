/**
 * Grants: list (filtered to what the caller may see), grant, revoke. Namespace administrators
 * (an `admin` grant on `team/*`) grant and revoke read/write inside team/ only (design §3;
 * Harbor CVE-2019-16919 was a project admin granting outside the project).
 */
import type { Database } from "bun:sqlite";
import {
  formatGrantee,
  type Grantee,
  grant as insertGrant,
  type Level,
  listPermissions as readPermissions,
  type Permission,
  parseGrantee,
  patternMatches,
  revoke as deleteGrant,
  checkPattern,
} from "../accounts/permissions.ts";
import { findUser } from "../accounts/users.ts";
import { NotFound } from "../errors.ts";
import { administeredNamespaceOf, type Caller, type GranteeFacts } from "./authorization.ts";
import { authorizeOrThrow, callerOf } from "./caller.ts";
import type { ManagementContext } from "./context.ts";
import { paginate } from "./paging.ts";
import type {
  GrantRequest,
  ListPermissionsQuery,
  Page,
  PageRequest,
  PermissionView,
  RevokeRequest,
} from "./schemas.ts";
import { record } from "./users.ts";
import { permissionView } from "./views.ts";

/** The namespace owning a robot `team+ci` ("team"), null for a registry robot `regauth+ci`. */
export function robotOwnerNamespace(fullName: string): string | null {
  const owner = fullName.slice(0, fullName.indexOf("+"));
  return owner === "regauth" ? null : owner;
}

export function granteeFacts(grantee: Grantee): GranteeFacts {
  if (grantee.kind === "user" && grantee.name.includes("+"))
    return { kind: "robot", name: grantee.name, ownerNamespace: robotOwnerNamespace(grantee.name) };
  return grantee;
}

function groupsOf(db: Database, userName: string): Set<string> {
  const rows = db
    .query<{ name: string }, [string]>(
      `SELECT g.name FROM groups g JOIN group_members m ON m.group_id = g.id JOIN users u ON u.id = m.user_id
       WHERE u.name = ?`,
    )
    .all(userName);
  return new Set(rows.map((row) => row.name));
}

function visibleTo(caller: Caller, groups: Set<string>): (p: Permission) => boolean {
  if (caller.kind === "local-admin" || caller.isAdmin) return () => true;
  return (p) =>
    (p.grantee.kind === "user" && p.grantee.name === caller.name) ||
    (p.grantee.kind === "group" && groups.has(p.grantee.name)) ||
    p.grantee.kind === "public" ||
    administeredNamespaceOf(caller, p.pattern) !== null;
}

function coversPattern(grantPattern: string, asked: string): boolean {
  if (grantPattern === asked || patternMatches(grantPattern, asked)) return true;
  return asked.endsWith("/*") && grantPattern.startsWith(asked.slice(0, -1));
}

const permissionKey = (p: Permission) => `${p.pattern}\u0000${formatGrantee(p.grantee)}`;

export function listPermissions(
  ctx: ManagementContext,
  filter: ListPermissionsQuery = {},
  page: PageRequest = filter,
): Page<PermissionView> {
  const caller = callerOf(ctx);
  const visible = visibleTo(caller, caller.kind === "account" ? groupsOf(ctx.db, caller.name) : new Set());
  const items = readPermissions(ctx.db)
    .filter(
      (p) =>
        visible(p) &&
        (filter.user === undefined || (p.grantee.kind === "user" && p.grantee.name === filter.user)) &&
        (filter.group === undefined || (p.grantee.kind === "group" && p.grantee.name === filter.group)) &&
        (filter.pattern === undefined || coversPattern(p.pattern, filter.pattern)),
    )
    .sort((a, b) => (permissionKey(a) < permissionKey(b) ? -1 : 1));
  return paginate(items, permissionKey, page, permissionView);
}

function existingGrant(ctx: ManagementContext, grantee: Grantee, pattern: string): Permission | null {
  const text = formatGrantee(grantee);
  return (
    readPermissions(ctx.db).find((p) => p.pattern === pattern && formatGrantee(p.grantee) === text) ?? null
  );
}

export function grant(ctx: ManagementContext, input: GrantRequest): PermissionView {
  const grantee = parseGrantee(input.grantee);
  const before = existingGrant(ctx, grantee, input.pattern);
  authorizeOrThrow(callerOf(ctx), {
    op: "grant",
    grantee: granteeFacts(grantee),
    pattern: input.pattern,
    level: input.level as Level,
    existingLevel: before?.level ?? null,
  });
  checkPattern(input.pattern);
  if (grantee.kind === "user" && !findUser(ctx.db, grantee.name))
    throw new NotFound(`no user ${JSON.stringify(grantee.name)}`);
  insertGrant(ctx.db, grantee, input.pattern, input.level as Level, ctx.nowUnix);
  const after = existingGrant(ctx, grantee, input.pattern);
  if (!after) throw new Error("grant vanished right after it was written");
  record(
    ctx,
    "permission.granted",
    { grantee: input.grantee, pattern: input.pattern, before: before?.level ?? null, after: after.level },
    input.pattern,
  );
  return permissionView(after);
}

export function revoke(ctx: ManagementContext, input: RevokeRequest): PermissionView {
  const grantee = parseGrantee(input.grantee);
  const caller = callerOf(ctx);
  const before = existingGrant(ctx, grantee, input.pattern);
  if (!before) {
    // Only someone who could see the grant learns whether it exists.
    authorizeOrThrow(caller, { op: "revoke", pattern: input.pattern, existingLevel: "read" });
    throw new NotFound(`${input.grantee} has no grant on ${JSON.stringify(input.pattern)}`);
  }
  authorizeOrThrow(caller, { op: "revoke", pattern: input.pattern, existingLevel: before.level });
  deleteGrant(ctx.db, grantee, input.pattern);
  record(
    ctx,
    "permission.revoked",
    { grantee: input.grantee, pattern: input.pattern, before: before.level, after: null },
    input.pattern,
  );
  return permissionView(before);
}
