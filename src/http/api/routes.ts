/**
 * The management API's routes (design §4) as one table: method, path, the TypeBox schemas of
 * each request part and of the answer (src/management/schemas.ts), and the operation it calls.
 * The plugin registers them with Elysia and the OpenAPI document is generated from the same
 * table, so the two cannot drift (test/http/api-openapi.test.ts checks it against the router).
 */
import { type TSchema, Type } from "@sinclair/typebox";
import type { ManagementContext } from "../../management/context.ts";
import * as audit from "../../management/audit.ts";
import * as groups from "../../management/groups.ts";
import * as permissions from "../../management/permissions.ts";
import * as repositories from "../../management/repositories.ts";
import * as robots from "../../management/robots.ts";
import * as S from "../../management/schemas.ts";
import * as tokens from "../../management/tokens.ts";
import * as users from "../../management/users.ts";
import * as webhooks from "../../management/webhooks.ts";

export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

export interface ApiInput {
  // biome-ignore lint/suspicious/noExplicitAny: each route's schema decides the shape
  params: any;
  // biome-ignore lint/suspicious/noExplicitAny: each route's schema decides the shape
  query: any;
  // biome-ignore lint/suspicious/noExplicitAny: each route's schema decides the shape
  body: any;
}

export interface ApiRoute {
  method: Method;
  /** Relative to /api/v1, Elysia syntax (`:name`). */
  path: string;
  summary: string;
  tag: string;
  params?: TSchema;
  query?: TSchema;
  body?: TSchema;
  status: 200 | 201;
  response: TSchema;
  run(ctx: ManagementContext, input: ApiInput): unknown;
  /**
   * How the route answers a call with no Authorization header at all (issue 11: anonymous callers
   * see the public repositories); absent: such a call is a 401 like any other.
   */
  runAnonymous?(ctx: AnonymousContext, input: ApiInput): unknown;
}

/** A ManagementContext without an actor: what an anonymous call's operation gets. */
export type AnonymousContext = Omit<ManagementContext, "actor" | "passwords">;

const NoQuery = Type.Object({}, { additionalProperties: false });
const PageOnly = Type.Object(S.PageQuery, { additionalProperties: false });

export const API_ROUTES: readonly ApiRoute[] = [
  {
    method: "GET",
    path: "/me",
    summary: "The caller: account, how it authenticated, namespaces it administers",
    tag: "me",
    query: NoQuery,
    status: 200,
    response: S.MeView,
    run: (ctx) => users.me(ctx),
  },
  {
    method: "GET",
    path: "/users",
    summary: "List people (robots: /robots)",
    tag: "users",
    query: S.ListUsersQuery,
    status: 200,
    response: S.Page(S.UserView),
    run: (ctx, { query }) => users.listUsers(ctx, query, query),
  },
  {
    method: "POST",
    path: "/users",
    summary: "Create a user",
    tag: "users",
    body: S.CreateUserRequest,
    status: 201,
    response: S.UserView,
    run: (ctx, { body }) => users.createUser(ctx, body),
  },
  {
    method: "GET",
    path: "/users/:name",
    summary: "Show a user",
    tag: "users",
    params: S.NameParam,
    query: NoQuery,
    status: 200,
    response: S.UserView,
    run: (ctx, { params }) => users.getUser(ctx, params.name),
  },
  {
    method: "PATCH",
    path: "/users/:name",
    summary: "Enable, disable, promote or demote a user",
    tag: "users",
    params: S.NameParam,
    body: S.UpdateUserBody,
    status: 200,
    response: S.UserView,
    run: (ctx, { params, body }) => users.updateUser(ctx, { ...body, name: params.name }),
  },
  {
    method: "DELETE",
    path: "/users/:name",
    summary: "Delete a user (the name stays retired until released)",
    tag: "users",
    params: S.NameParam,
    query: NoQuery,
    status: 200,
    response: S.UserView,
    run: (ctx, { params }) => users.deleteUser(ctx, params.name),
  },
  {
    method: "PUT",
    path: "/users/:name/password",
    summary: "Set a password (your own: current_password required)",
    tag: "users",
    params: S.NameParam,
    body: S.SetPasswordBody,
    status: 200,
    response: S.UserView,
    run: (ctx, { params, body }) => users.setPassword(ctx, { ...body, name: params.name }),
  },
  {
    method: "DELETE",
    path: "/retired-names/:name",
    summary: "Release a deleted user's name",
    tag: "users",
    params: S.NameParam,
    query: NoQuery,
    status: 200,
    response: S.RetiredNameView,
    run: (ctx, { params }) => users.releaseName(ctx, params.name),
  },
  {
    method: "GET",
    path: "/groups",
    summary: "List groups",
    tag: "groups",
    query: PageOnly,
    status: 200,
    response: S.Page(S.GroupView),
    run: (ctx, { query }) => groups.listGroups(ctx, query),
  },
  {
    method: "POST",
    path: "/groups",
    summary: "Create a group",
    tag: "groups",
    body: S.CreateGroupRequest,
    status: 201,
    response: S.GroupView,
    run: (ctx, { body }) => groups.createGroup(ctx, body),
  },
  {
    method: "GET",
    path: "/groups/:name",
    summary: "Show a group",
    tag: "groups",
    params: S.NameParam,
    query: NoQuery,
    status: 200,
    response: S.GroupView,
    run: (ctx, { params }) => groups.getGroup(ctx, params.name),
  },
  {
    method: "DELETE",
    path: "/groups/:name",
    summary: "Delete a group with its grants",
    tag: "groups",
    params: S.NameParam,
    query: NoQuery,
    status: 200,
    response: S.GroupView,
    run: (ctx, { params }) => groups.deleteGroup(ctx, params.name),
  },
  {
    method: "PUT",
    path: "/groups/:name/members/:user",
    summary: "Add a member",
    tag: "groups",
    params: S.MemberParams,
    status: 200,
    response: S.GroupView,
    run: (ctx, { params }) => groups.addMember(ctx, { group: params.name, user: params.user }),
  },
  {
    method: "DELETE",
    path: "/groups/:name/members/:user",
    summary: "Remove a member",
    tag: "groups",
    params: S.MemberParams,
    query: NoQuery,
    status: 200,
    response: S.GroupView,
    run: (ctx, { params }) => groups.removeMember(ctx, { group: params.name, user: params.user }),
  },
  {
    method: "GET",
    path: "/permissions",
    summary: "List grants you may see, filtered by user, group or repository pattern",
    tag: "permissions",
    query: S.ListPermissionsQuery,
    status: 200,
    response: S.Page(S.PermissionView),
    run: (ctx, { query }) => permissions.listPermissions(ctx, query, query),
  },
  {
    method: "POST",
    path: "/permissions",
    summary: "Grant a level on a pattern",
    tag: "permissions",
    body: S.GrantRequest,
    status: 201,
    response: S.PermissionView,
    run: (ctx, { body }) => permissions.grant(ctx, body),
  },
  {
    method: "DELETE",
    path: "/permissions",
    summary: "Revoke a grant",
    tag: "permissions",
    query: S.RevokeQuery,
    status: 200,
    response: S.PermissionView,
    run: (ctx, { query }) => permissions.revoke(ctx, query),
  },
  {
    method: "GET",
    path: "/tokens",
    summary: "List access tokens: yours, an owner's (a robot you administer), or all (administrators)",
    tag: "tokens",
    query: S.ListTokensQuery,
    status: 200,
    response: S.Page(S.AccessTokenView),
    run: (ctx, { query }) => tokens.listAccessTokens(ctx, query, query),
  },
  {
    method: "POST",
    path: "/tokens",
    summary: "Create an access token (the secret is in this answer only)",
    tag: "tokens",
    body: S.CreateAccessTokenRequest,
    status: 201,
    response: S.CreatedAccessTokenView,
    run: (ctx, { body }) => tokens.createAccessToken(ctx, body),
  },
  {
    method: "DELETE",
    path: "/tokens/:id",
    summary: "Revoke an access token",
    tag: "tokens",
    params: S.IdParam,
    query: NoQuery,
    status: 200,
    response: S.AccessTokenView,
    run: (ctx, { params }) => tokens.revokeAccessToken(ctx, params.id),
  },
  {
    method: "GET",
    path: "/robots",
    summary: "List robot accounts you may see",
    tag: "robots",
    query: S.ListRobotsQuery,
    status: 200,
    response: S.Page(S.RobotView),
    run: (ctx, { query }) => robots.listRobots(ctx, query, query),
  },
  {
    method: "POST",
    path: "/robots",
    summary: "Create a robot account (namespace absent: the registry's)",
    tag: "robots",
    body: S.CreateRobotRequest,
    status: 201,
    response: S.RobotView,
    run: (ctx, { body }) => robots.createRobot(ctx, body),
  },
  {
    method: "GET",
    path: "/robots/:name",
    summary: "Show a robot account",
    tag: "robots",
    params: S.RobotParam,
    query: NoQuery,
    status: 200,
    response: S.RobotView,
    run: (ctx, { params }) => robots.getRobot(ctx, params.name),
  },
  {
    method: "DELETE",
    path: "/robots/:name",
    summary: "Delete a robot account with its tokens and grants",
    tag: "robots",
    params: S.RobotParam,
    query: NoQuery,
    status: 200,
    response: S.RobotView,
    run: (ctx, { params }) => robots.deleteRobot(ctx, params.name),
  },
  {
    method: "POST",
    path: "/robots/:name/tokens",
    summary: "Create a token for a robot account (never with the api scope)",
    tag: "robots",
    params: S.RobotParam,
    body: S.CreateRobotTokenBody,
    status: 201,
    response: S.CreatedAccessTokenView,
    run: (ctx, { params, body }) => tokens.createRobotToken(ctx, { ...body, robot: params.name }),
  },
  {
    method: "GET",
    path: "/audit",
    summary: "Query the audit log (administrators), oldest first",
    tag: "audit",
    query: S.AuditQuery,
    status: 200,
    response: S.Page(S.AuditEventView),
    run: (ctx, { query }) => audit.queryAudit(ctx, query),
  },
  // Webhooks (issue 11 item 4; docs/webhooks.md). :name is the webhook's name or id.
  {
    method: "GET",
    path: "/webhooks",
    summary: "List the webhooks you may manage",
    tag: "webhooks",
    query: PageOnly,
    status: 200,
    response: S.Page(S.WebhookView),
    run: (ctx, { query }) => webhooks.listWebhooks(ctx, query),
  },
  {
    method: "POST",
    path: "/webhooks",
    summary: "Create a webhook (the signing secret is in this answer only)",
    tag: "webhooks",
    body: S.CreateWebhookRequest,
    status: 201,
    response: S.CreatedWebhookView,
    run: (ctx, { body }) => webhooks.createWebhook(ctx, body),
  },
  {
    method: "GET",
    path: "/webhooks/:name",
    summary: "Show a webhook",
    tag: "webhooks",
    params: S.WebhookParam,
    query: NoQuery,
    status: 200,
    response: S.WebhookView,
    run: (ctx, { params }) => webhooks.getWebhook(ctx, params.name),
  },
  {
    method: "PATCH",
    path: "/webhooks/:name",
    summary: "Change a webhook's URL, patterns or events, or enable or disable it",
    tag: "webhooks",
    params: S.WebhookParam,
    body: S.UpdateWebhookBody,
    status: 200,
    response: S.WebhookView,
    run: (ctx, { params, body }) => webhooks.updateWebhook(ctx, params.name, body),
  },
  {
    method: "DELETE",
    path: "/webhooks/:name",
    summary: "Delete a webhook with its queue and history",
    tag: "webhooks",
    params: S.WebhookParam,
    query: NoQuery,
    status: 200,
    response: S.WebhookView,
    run: (ctx, { params }) => webhooks.deleteWebhook(ctx, params.name),
  },
  {
    method: "POST",
    path: "/webhooks/:name/secret",
    summary: "Rotate the signing secret (the new one is in this answer only; the old one stops at once)",
    tag: "webhooks",
    params: S.WebhookParam,
    body: S.EmptyBody,
    status: 200,
    response: S.CreatedWebhookView,
    run: (ctx, { params }) => webhooks.rotateSecret(ctx, params.name),
  },
  {
    method: "POST",
    path: "/webhooks/:name/test",
    summary: "Send a test event (type webhook.test); answers the queued delivery",
    tag: "webhooks",
    params: S.WebhookParam,
    body: S.EmptyBody,
    status: 201,
    response: S.DeliveryView,
    run: (ctx, { params }) => webhooks.testWebhook(ctx, params.name),
  },
  {
    method: "GET",
    path: "/webhooks/:name/deliveries",
    summary: "A webhook's deliveries (queue and history), newest first, with the payload sent",
    tag: "webhooks",
    params: S.WebhookParam,
    query: PageOnly,
    status: 200,
    response: S.Page(S.DeliveryView),
    run: (ctx, { params, query }) => webhooks.listDeliveries(ctx, params.name, query),
  },
  {
    method: "POST",
    path: "/deliveries/:id/redeliver",
    summary: "Send a past delivery again, behind the webhook's pending ones",
    tag: "webhooks",
    params: S.IdParam,
    body: S.EmptyBody,
    status: 201,
    response: S.DeliveryView,
    run: (ctx, { params }) => webhooks.redeliver(ctx, params.id),
  },
  // The image index (issue 11 items 2 and 3). A repository name in a path is one segment: its
  // slashes are written %2F (/repositories/team%2Fapp), as GitLab's API does.
  {
    method: "GET",
    path: "/repositories",
    summary: "Repositories you may pull (anonymous: the public ones), optionally matching a glob",
    tag: "repositories",
    query: S.ListRepositoriesQuery,
    status: 200,
    response: S.Page(S.RepositoryView),
    run: (ctx, { query }) => repositories.listRepositories(ctx, repositories.viewerOf(ctx), query),
    runAnonymous: (ctx, { query }) =>
      repositories.listRepositories(ctx, repositories.ANONYMOUS_VIEWER, query),
  },
  {
    method: "POST",
    path: "/repositories/sync",
    summary: "Crawl the registry and reconcile the index now (administrators)",
    tag: "repositories",
    query: NoQuery,
    body: S.SyncRequest,
    status: 200,
    response: S.SyncReportView,
    run: (ctx) => repositories.syncRepositories(ctx),
  },
  {
    method: "GET",
    path: "/repositories/:name",
    summary: "A repository you may pull (name URL-encoded: team%2Fapp)",
    tag: "repositories",
    params: S.RepositoryParam,
    query: NoQuery,
    status: 200,
    response: S.RepositoryDetailView,
    run: (ctx, { params }) => repositories.getRepository(ctx, repositories.viewerOf(ctx), params.name),
    runAnonymous: (ctx, { params }) =>
      repositories.getRepository(ctx, repositories.ANONYMOUS_VIEWER, params.name),
  },
  {
    method: "GET",
    path: "/repositories/:name/tags",
    summary: "The tags of a repository you may pull",
    tag: "repositories",
    params: S.RepositoryParam,
    query: PageOnly,
    status: 200,
    response: S.Page(S.TagView),
    run: (ctx, { params, query }) =>
      repositories.listTags(ctx, repositories.viewerOf(ctx), params.name, query),
    runAnonymous: (ctx, { params, query }) =>
      repositories.listTags(ctx, repositories.ANONYMOUS_VIEWER, params.name, query),
  },
  {
    method: "GET",
    path: "/repositories/:name/tags/:tag",
    summary: "One tag: digest, media type, size, who pushed it from where, pulls, a docker pull line",
    tag: "repositories",
    params: S.TagParams,
    query: NoQuery,
    status: 200,
    response: S.TagView,
    run: (ctx, { params }) => repositories.getTag(ctx, repositories.viewerOf(ctx), params.name, params.tag),
    runAnonymous: (ctx, { params }) =>
      repositories.getTag(ctx, repositories.ANONYMOUS_VIEWER, params.name, params.tag),
  },
];
