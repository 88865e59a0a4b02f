/**
 * Users, the caller and retired names: authorize → validate → change → audit → return the
 * changed object (design §3). Over src/accounts/users.ts, which the offline CLI used directly.
 */
import {
  checkPassword,
  checkUsername,
  createUser as insertUser,
  deleteUser as removeUser,
  findUser,
  getUser as readUser,
  hashNewPassword,
  listUsers as readUsers,
  releaseName as freeName,
  retiredName,
  setAdmin,
  setEnabled,
  setPasswordHash,
  type User,
} from "../accounts/users.ts";
import type { AuditKind } from "../audit/audit-log.ts";
import { BadRequest, Forbidden, NotFound } from "../errors.ts";
import { authorizeOrThrow, callerOf } from "./caller.ts";
import { actorName, type ManagementContext } from "./context.ts";
import { paginate } from "./paging.ts";
import type {
  CreateUserRequest,
  ListUsersQuery,
  MeView,
  Page,
  PageRequest,
  RetiredNameView,
  SetPasswordRequest,
  UpdateUserRequest,
  UserView,
} from "./schemas.ts";
import { type UserKind, retiredNameView, userView } from "./views.ts";

/** users.kind (migration 0004): robots are users rows whose only credentials are tokens. */
export function kindOf(_ctx: ManagementContext, user: User): UserKind {
  return user.kind;
}

function view(ctx: ManagementContext, user: User): UserView {
  return userView({ ...user, kind: kindOf(ctx, user) });
}

function flags(user: User) {
  return { is_admin: user.isAdmin, is_enabled: user.isEnabled, is_pending_approval: user.isPendingApproval };
}

export function record(
  ctx: ManagementContext,
  kind: AuditKind,
  details: Record<string, unknown>,
  repository: string | null = null,
): void {
  ctx.audit.recordNow({ kind, actor: actorName(ctx.actor), ip: ctx.ip, repository, outcome: "ok", details });
}

export function me(ctx: ManagementContext): MeView {
  const caller = callerOf(ctx);
  authorizeOrThrow(caller, { op: "me" });
  const actor = ctx.actor;
  if (actor.kind === "local-admin")
    return { user: null, authenticated_by: "local", token_scopes: null, admin_namespaces: [] };
  const user = findUser(ctx.db, actor.name);
  if (!user) throw new NotFound(`no user ${JSON.stringify(actor.name)}`);
  return {
    user: view(ctx, user),
    authenticated_by: actor.via,
    token_scopes: actor.tokenScopes ? [...actor.tokenScopes] : null,
    admin_namespaces: caller.adminNamespaces as string[],
  };
}

function stateOf(user: User): "enabled" | "disabled" | "pending" {
  return user.isEnabled ? "enabled" : user.isPendingApproval ? "pending" : "disabled";
}

/** People only; robots are listed by listRobots (design §1). */
export function listUsers(ctx: ManagementContext, filter: ListUsersQuery = {}, page: PageRequest = filter) {
  authorizeOrThrow(callerOf(ctx), { op: "listUsers" });
  const users = readUsers(ctx.db).filter(
    (user) =>
      kindOf(ctx, user) === "person" &&
      (filter.q === undefined || user.name.includes(filter.q)) &&
      (filter.state === undefined ||
        (filter.state === "admin" ? user.isAdmin : stateOf(user) === filter.state)),
  );
  return paginate(
    users,
    (user) => user.name,
    page,
    (user) => view(ctx, user),
  ) as Page<UserView>;
}

export function getUser(ctx: ManagementContext, name: string): UserView {
  authorizeOrThrow(callerOf(ctx), { op: "getUser", target: name });
  return view(ctx, readUser(ctx.db, name));
}

export async function createUser(ctx: ManagementContext, input: CreateUserRequest): Promise<UserView> {
  authorizeOrThrow(callerOf(ctx), { op: "createUser" });
  checkUsername(input.name);
  checkPassword(input.password);
  const hash = await hashUnderLimit(ctx, input.password);
  const user = insertUser(ctx.db, {
    name: input.name,
    passwordHash: hash,
    isAdmin: input.admin === true,
    isEnabled: input.disabled !== true,
    nowUnix: ctx.nowUnix,
  });
  record(ctx, "user.created", { name: user.name, after: flags(user) });
  return view(ctx, user);
}

function hashUnderLimit(ctx: ManagementContext, password: string): Promise<string> {
  return ctx.passwords ? ctx.passwords.limited(() => hashNewPassword(password)) : hashNewPassword(password);
}

async function verifyCurrent(ctx: ManagementContext, user: User, password: string): Promise<boolean> {
  if (ctx.passwords) return ctx.passwords.verify(user.name, password, user.passwordHash);
  try {
    return await Bun.password.verify(password, user.passwordHash);
  } catch {
    return false;
  }
}

export async function setPassword(ctx: ManagementContext, input: SetPasswordRequest): Promise<UserView> {
  const caller = callerOf(ctx);
  authorizeOrThrow(caller, {
    op: "setPassword",
    target: input.name,
    hasCurrentPassword: input.current_password !== undefined,
  });
  const user = readUser(ctx.db, input.name);
  if (kindOf(ctx, user) === "robot")
    throw new BadRequest("robot accounts have no password; they use access tokens");
  checkPassword(input.password);
  if (input.current_password !== undefined && !(await verifyCurrent(ctx, user, input.current_password)))
    throw new Forbidden("the current password is wrong");
  const hash = await hashUnderLimit(ctx, input.password);
  setPasswordHash(ctx.db, user.name, hash);
  // Never the password or either hash (issue 10 item 6).
  record(ctx, "user.password-changed", { name: user.name });
  return view(ctx, readUser(ctx.db, user.name));
}

export function updateUser(ctx: ManagementContext, input: UpdateUserRequest): UserView {
  authorizeOrThrow(callerOf(ctx), { op: "updateUser", target: input.name });
  const before = readUser(ctx.db, input.name);
  if (input.admin === true && kindOf(ctx, before) === "robot")
    throw new BadRequest("a robot account cannot be an administrator");
  if (ctx.actor.kind === "account" && ctx.actor.name === before.name && input.admin === false)
    throw new Forbidden("you cannot demote yourself; another administrator can");
  // Disabling oneself would lock the caller out of the API they are using; another admin can.
  if (ctx.actor.kind === "account" && ctx.actor.name === before.name && input.enabled === false)
    throw new Forbidden("you cannot disable your own account; another administrator can");
  ctx.db
    .transaction(() => {
      if (input.enabled !== undefined && input.enabled !== before.isEnabled)
        setEnabled(ctx.db, before.name, input.enabled);
      if (input.admin !== undefined && input.admin !== before.isAdmin)
        setAdmin(ctx.db, before.name, input.admin);
    })
    .immediate();
  const after = readUser(ctx.db, before.name);
  record(ctx, "user.updated", { name: after.name, before: flags(before), after: flags(after) });
  return view(ctx, after);
}

export function deleteUser(ctx: ManagementContext, name: string): UserView {
  authorizeOrThrow(callerOf(ctx), { op: "deleteUser", target: name });
  const user = readUser(ctx.db, name);
  if (kindOf(ctx, user) === "robot") throw new BadRequest(`${name} is a robot account; delete it as a robot`);
  removeUser(ctx.db, name, ctx.nowUnix);
  record(ctx, "user.deleted", { name, before: flags(user) });
  return view(ctx, user);
}

export function releaseName(ctx: ManagementContext, name: string): RetiredNameView {
  authorizeOrThrow(callerOf(ctx), { op: "releaseName" });
  const retired = retiredName(ctx.db, name);
  if (!retired) throw new NotFound(`${JSON.stringify(name)} is not a retired name`);
  freeName(ctx.db, name);
  record(ctx, "name.released", { name });
  return retiredNameView(retired);
}
