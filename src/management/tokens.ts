/**
 * Access tokens: list, create, revoke (design §3). Anyone manages their own; namespace admins
 * their robots'; admins everyone's. Another user's token by id is a 404, as if it did not exist
 * (Harbor CVE-2022-31667). The secret is in the answer to create only, never in the audit log.
 */
import {
  type AccessToken,
  createAccessToken as insertToken,
  deleteAccessToken,
  findAccessToken,
  listAccessTokens as readTokens,
} from "../access-tokens/index.ts";
import { findUser } from "../accounts/users.ts";
import { BadRequest, NotFound } from "../errors.ts";
import { findRobot } from "../robots/index.ts";
import type { OwnerFacts } from "./authorization.ts";
import { authorizeOrThrow, callerOf } from "./caller.ts";
import type { ManagementContext } from "./context.ts";
import { paginate } from "./paging.ts";
import type {
  AccessTokenView,
  CreateAccessTokenRequest,
  CreatedAccessTokenView,
  CreateRobotTokenRequest,
  ListTokensQuery,
  Page,
  PageRequest,
} from "./schemas.ts";
import { record } from "./users.ts";
import { rfc3339, rfc3339OrNull } from "./views.ts";

export function accessTokenView(token: AccessToken): AccessTokenView {
  return {
    id: token.id,
    owner: token.owner,
    name: token.name,
    scopes: token.scopes,
    repository_patterns: token.repositoryPatterns,
    created_at: rfc3339(token.createdAtUnix),
    expires_at: rfc3339OrNull(token.expiresAtUnix),
    last_used_at: rfc3339OrNull(token.lastUsedAtUnix),
    last_used_ip: token.lastUsedIp,
  };
}

/** Who owns `name`, as authorization needs it; NotFound when no such account. */
function ownerFacts(ctx: ManagementContext, name: string): OwnerFacts {
  const user = findUser(ctx.db, name);
  if (!user) throw new NotFound(`no account ${JSON.stringify(name)}`);
  if (user.kind === "robot")
    return { kind: "robot", name, ownerNamespace: findRobot(ctx.db, name)?.ownerNamespace ?? null };
  return { kind: "person", name };
}

function tokenOwnerFacts(ctx: ManagementContext, token: AccessToken): OwnerFacts {
  if (token.ownerKind === "robot")
    return {
      kind: "robot",
      name: token.owner,
      ownerNamespace: findRobot(ctx.db, token.owner)?.ownerNamespace ?? null,
    };
  return { kind: "person", name: token.owner };
}

function selfName(ctx: ManagementContext): string {
  if (ctx.actor.kind === "local-admin")
    throw new BadRequest("the offline CLI has no account of its own: name the token's owner");
  return ctx.actor.name;
}

/**
 * `owner` absent: your own tokens (everyone's for an administrator or the offline CLI).
 * Tokens of robots you administer are listed with `owner=team+ci`.
 */
export function listAccessTokens(
  ctx: ManagementContext,
  filter: ListTokensQuery = {},
  page: PageRequest = filter,
): Page<AccessTokenView> {
  const caller = callerOf(ctx);
  let tokens: AccessToken[];
  if (filter.owner !== undefined) {
    // An unknown owner and one you may not see answer alike.
    const user = findUser(ctx.db, filter.owner);
    const facts: OwnerFacts = user ? ownerFacts(ctx, filter.owner) : { kind: "person", name: filter.owner };
    authorizeOrThrow(
      caller,
      { op: "readTokens", owner: facts },
      `no account ${JSON.stringify(filter.owner)}`,
    );
    if (!user) throw new NotFound(`no account ${JSON.stringify(filter.owner)}`);
    tokens = readTokens(ctx.db, { owner: filter.owner });
  } else if (caller.kind === "local-admin" || caller.isAdmin) {
    tokens = readTokens(ctx.db);
  } else {
    tokens = readTokens(ctx.db, { owner: caller.name });
  }
  return paginate(
    tokens.sort((a, b) => a.id - b.id),
    (t) => t.id,
    page,
    accessTokenView,
  );
}

function expiryUnix(expiresAt: string | null | undefined): number | null {
  if (expiresAt === undefined || expiresAt === null) return null;
  const ms = Date.parse(expiresAt);
  if (!Number.isFinite(ms)) throw new BadRequest("body.expires_at: not an RFC 3339 time");
  return Math.floor(ms / 1000);
}

function create(
  ctx: ManagementContext,
  owner: OwnerFacts,
  input: Omit<CreateAccessTokenRequest, "owner">,
): CreatedAccessTokenView {
  authorizeOrThrow(
    callerOf(ctx),
    { op: "createToken", owner, scopes: input.scopes },
    `no account ${JSON.stringify(owner.name)}`,
  );
  const { token, secret } = insertToken(ctx.db, ctx.accessTokenKey, {
    owner: owner.name,
    name: input.name,
    scopes: input.scopes,
    repositoryPatterns: input.repository_patterns,
    expiresAtUnix: expiryUnix(input.expires_at),
    nowUnix: ctx.nowUnix,
    maxLifetimeDays: ctx.config.maxTokenLifetimeDays,
  });
  const view = accessTokenView(token);
  record(ctx, "access-token.created", { after: view });
  return { ...view, secret };
}

export function createAccessToken(
  ctx: ManagementContext,
  input: CreateAccessTokenRequest,
): CreatedAccessTokenView {
  const ownerName = input.owner ?? selfName(ctx);
  // A non-admin naming someone else learns nothing about whether that account exists.
  const user = findUser(ctx.db, ownerName);
  const owner: OwnerFacts = user ? ownerFacts(ctx, ownerName) : { kind: "person", name: ownerName };
  if (!user) {
    authorizeOrThrow(
      callerOf(ctx),
      { op: "createToken", owner, scopes: input.scopes },
      `no account ${JSON.stringify(ownerName)}`,
    );
    throw new NotFound(`no account ${JSON.stringify(ownerName)}`);
  }
  const { owner: _owner, ...fields } = input;
  return create(ctx, owner, fields);
}

export function createRobotToken(
  ctx: ManagementContext,
  input: CreateRobotTokenRequest,
): CreatedAccessTokenView {
  const robot = findRobot(ctx.db, input.robot);
  const owner: OwnerFacts = {
    kind: "robot",
    name: input.robot,
    ownerNamespace: robot?.ownerNamespace ?? robotNamespaceOfName(input.robot),
  };
  if (!robot) {
    authorizeOrThrow(callerOf(ctx), { op: "readTokens", owner }, `no account ${JSON.stringify(input.robot)}`);
    throw new NotFound(`no account ${JSON.stringify(input.robot)}`);
  }
  const { robot: _robot, ...fields } = input;
  return create(ctx, owner, fields);
}

function robotNamespaceOfName(name: string): string | null {
  const plus = name.indexOf("+");
  const owner = plus > 0 ? name.slice(0, plus) : "";
  return owner === "" || owner === "regauth" ? null : owner;
}

export function revokeAccessToken(ctx: ManagementContext, id: number): AccessTokenView {
  const token = findAccessToken(ctx.db, id);
  // Someone else's token is "no such token": ids are sequential and must not confirm guesses.
  if (!token) throw new NotFound(`no access token ${id}`);
  authorizeOrThrow(
    callerOf(ctx),
    { op: "revokeToken", owner: tokenOwnerFacts(ctx, token) },
    `no access token ${id}`,
  );
  const deleted = deleteAccessToken(ctx.db, id);
  const view = accessTokenView(deleted);
  record(ctx, "access-token.revoked", { before: view });
  return view;
}
