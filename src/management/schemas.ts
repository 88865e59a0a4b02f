/**
 * The management API's views and requests (issue 10, design §3): the single source of truth for
 * request validation and responses in src/http/api/, for the OpenAPI document, and for what the
 * CLI prints. Every request object is closed (additionalProperties false): a field the schema
 * does not name is a 400 with its path, never silently dropped or, worse, applied (Harbor
 * CVE-2019-16097: `has_admin_role: true` on self-registration). JSON keys are snake_case; times
 * are RFC 3339 strings, null for never.
 */
import { type Static, type TSchema, Type } from "@sinclair/typebox";
import { WebhookPayload as WebhookPayloadSchema } from "../webhooks/payload.ts";

const closed = { additionalProperties: false } as const;

/** Longest name accepted anywhere (users 64, robots `<namespace>+<name>` 129): bounds the work. */
const MAX_NAME_FIELD = 160;
const Name = Type.String({ minLength: 1, maxLength: MAX_NAME_FIELD });
const Password = Type.String({ minLength: 1, maxLength: 1024 });
const Pattern = Type.String({ minLength: 1, maxLength: 256, description: "team/app, team/* or *" });
const Time = Type.String({ format: "date-time", description: "RFC 3339" });
const NullableTime = Type.Union([Time, Type.Null()]);

export const TOKEN_SCOPES = ["pull", "push", "delete", "api"] as const;
export type TokenScope = (typeof TOKEN_SCOPES)[number];
export const TokenScopeSchema = Type.Union(TOKEN_SCOPES.map((s) => Type.Literal(s)));
export const LevelSchema = Type.Union([Type.Literal("read"), Type.Literal("write"), Type.Literal("admin")]);

// ---- Views ----

export const UserView = Type.Object(
  {
    name: Type.String(),
    kind: Type.Union([Type.Literal("person"), Type.Literal("robot")]),
    is_admin: Type.Boolean(),
    is_enabled: Type.Boolean(),
    is_pending_approval: Type.Boolean(),
    created_at: Time,
    last_login_at: NullableTime,
  },
  closed,
);
export type UserView = Static<typeof UserView>;

export const GroupView = Type.Object(
  { name: Type.String(), members: Type.Array(Type.String()), created_at: Time },
  closed,
);
export type GroupView = Static<typeof GroupView>;

export const PermissionView = Type.Object(
  {
    grantee: Type.String({ description: "a user or robot name, @group, or * (everyone)" }),
    pattern: Type.String(),
    level: LevelSchema,
    created_at: Time,
  },
  closed,
);
export type PermissionView = Static<typeof PermissionView>;

export const AccessTokenView = Type.Object(
  {
    id: Type.Integer(),
    owner: Type.String(),
    name: Type.String(),
    scopes: Type.Array(TokenScopeSchema),
    repository_patterns: Type.Array(Type.String()),
    created_at: Time,
    expires_at: NullableTime,
    last_used_at: NullableTime,
    last_used_ip: Type.String(),
  },
  closed,
);
export type AccessTokenView = Static<typeof AccessTokenView>;

export const CreatedAccessTokenView = Type.Object(
  {
    ...AccessTokenView.properties,
    secret: Type.String({ description: "regauth_pat_...; shown once, never stored in the clear" }),
  },
  closed,
);
export type CreatedAccessTokenView = Static<typeof CreatedAccessTokenView>;

export const RobotView = Type.Object(
  {
    name: Type.String({ description: "<namespace>+<name>, or regauth+<name> when the registry owns it" }),
    owner_namespace: Type.Union([Type.String(), Type.Null()]),
    description: Type.String(),
    is_enabled: Type.Boolean(),
    created_at: Time,
    last_login_at: NullableTime,
  },
  closed,
);
export type RobotView = Static<typeof RobotView>;

export const AuditEventView = Type.Object(
  {
    id: Type.Integer(),
    at: Time,
    kind: Type.String(),
    actor: Type.String(),
    ip: Type.String(),
    repository: Type.Union([Type.String(), Type.Null()]),
    outcome: Type.Union([Type.Literal("ok"), Type.Literal("denied"), Type.Literal("failed")]),
    details: Type.Record(Type.String(), Type.Unknown()),
  },
  closed,
);
export type AuditEventView = Static<typeof AuditEventView>;

export const RetiredNameView = Type.Object({ name: Type.String(), retired_at: Time }, closed);
export type RetiredNameView = Static<typeof RetiredNameView>;

export const MeView = Type.Object(
  {
    user: Type.Union([UserView, Type.Null()], { description: "null for the offline CLI" }),
    authenticated_by: Type.Union([
      Type.Literal("password"),
      Type.Literal("access-token"),
      Type.Literal("local"),
    ]),
    /** Scopes of the access token the caller used; null for a password. */
    token_scopes: Type.Union([Type.Array(TokenScopeSchema), Type.Null()]),
    /** Namespaces the caller administers through an `admin` grant on `<namespace>/*`. */
    admin_namespaces: Type.Array(Type.String()),
  },
  closed,
);
export type MeView = Static<typeof MeView>;

export function Page<T extends TSchema>(item: T) {
  return Type.Object(
    {
      items: Type.Array(item),
      next_cursor: Type.Union([Type.String(), Type.Null()], {
        description: "pass as cursor for the next page; null on the last",
      }),
    },
    closed,
  );
}
export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

// ---- Requests ----

export const PageQuery = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
  cursor: Type.Optional(Type.String({ maxLength: 512 })),
};
export interface PageRequest {
  limit?: number;
  cursor?: string;
}

export const UserState = Type.Union([
  Type.Literal("enabled"),
  Type.Literal("disabled"),
  Type.Literal("pending"),
  Type.Literal("admin"),
]);
export const ListUsersQuery = Type.Object(
  { q: Type.Optional(Type.String({ maxLength: 64 })), state: Type.Optional(UserState), ...PageQuery },
  closed,
);
export type ListUsersQuery = Static<typeof ListUsersQuery>;

export const CreateUserRequest = Type.Object(
  {
    name: Name,
    password: Password,
    admin: Type.Optional(Type.Boolean()),
    disabled: Type.Optional(Type.Boolean()),
  },
  closed,
);
export type CreateUserRequest = Static<typeof CreateUserRequest>;

export const SetPasswordBody = Type.Object(
  { password: Password, current_password: Type.Optional(Password) },
  closed,
);
export type SetPasswordBody = Static<typeof SetPasswordBody>;
export type SetPasswordRequest = SetPasswordBody & { name: string };

export const UpdateUserBody = Type.Object(
  { enabled: Type.Optional(Type.Boolean()), admin: Type.Optional(Type.Boolean()) },
  closed,
);
export type UpdateUserBody = Static<typeof UpdateUserBody>;
export type UpdateUserRequest = UpdateUserBody & { name: string };

export const CreateGroupRequest = Type.Object({ name: Name }, closed);
export type CreateGroupRequest = Static<typeof CreateGroupRequest>;

export const ListPermissionsQuery = Type.Object(
  {
    user: Type.Optional(Name),
    group: Type.Optional(Name),
    pattern: Type.Optional(Pattern),
    ...PageQuery,
  },
  closed,
);
export type ListPermissionsQuery = Static<typeof ListPermissionsQuery>;

export const GrantRequest = Type.Object({ grantee: Name, pattern: Pattern, level: LevelSchema }, closed);
export type GrantRequest = Static<typeof GrantRequest>;

export const RevokeQuery = Type.Object({ grantee: Name, pattern: Pattern }, closed);
export type RevokeRequest = Static<typeof RevokeQuery>;

export const ListTokensQuery = Type.Object({ owner: Type.Optional(Name), ...PageQuery }, closed);
export type ListTokensQuery = Static<typeof ListTokensQuery>;

const tokenFields = {
  name: Type.String({ minLength: 1, maxLength: 64 }),
  scopes: Type.Array(TokenScopeSchema, { minItems: 1, maxItems: 4 }),
  repository_patterns: Type.Array(Pattern, { minItems: 1, maxItems: 32 }),
  expires_at: Type.Optional(Type.Union([Time, Type.Null()])),
};

export const CreateAccessTokenRequest = Type.Object({ ...tokenFields, owner: Type.Optional(Name) }, closed);
export type CreateAccessTokenRequest = Static<typeof CreateAccessTokenRequest>;

export const CreateRobotTokenBody = Type.Object(tokenFields, closed);
export type CreateRobotTokenBody = Static<typeof CreateRobotTokenBody>;
export type CreateRobotTokenRequest = CreateRobotTokenBody & { robot: string };

export const ListRobotsQuery = Type.Object({ namespace: Type.Optional(Name), ...PageQuery }, closed);
export type ListRobotsQuery = Static<typeof ListRobotsQuery>;

export const CreateRobotRequest = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 64 }),
    namespace: Type.Optional(Type.Union([Name, Type.Null()])),
    description: Type.Optional(Type.String({ maxLength: 256 })),
  },
  closed,
);
export type CreateRobotRequest = Static<typeof CreateRobotRequest>;

export const AuditQuery = Type.Object(
  {
    since: Type.Optional(Time),
    until: Type.Optional(Time),
    actor: Type.Optional(Type.String({ maxLength: MAX_NAME_FIELD })),
    repository: Type.Optional(Type.String({ maxLength: 256 })),
    kind: Type.Optional(Type.String({ maxLength: 64 })),
    after_id: Type.Optional(
      Type.Integer({ minimum: 0, description: "only events after this id (what --follow polls with)" }),
    ),
    ...PageQuery,
  },
  closed,
);
export type AuditQuery = Static<typeof AuditQuery>;

export const NameParam = Type.Object({ name: Name }, closed);
export const IdParam = Type.Object({ id: Type.Integer({ minimum: 1 }) }, closed);
export const MemberParams = Type.Object({ name: Name, user: Name }, closed);
export const RobotParam = Type.Object({ name: Name }, closed);

export const ErrorEnvelope = Type.Object({
  errors: Type.Array(Type.Object({ code: Type.String(), message: Type.String() })),
});

// ---- Webhooks (issue 11 item 4; docs/webhooks.md) ----

export { WebhookPayload } from "../webhooks/payload.ts";

const WebhookEvent = Type.Union([
  Type.Literal("repository.created"),
  Type.Literal("tag.pushed"),
  Type.Literal("tag.deleted"),
]);
const WebhookName = Type.String({
  minLength: 1,
  maxLength: 64,
  pattern: "^[a-z][a-z0-9._-]*$",
  description: "a lowercase letter, then letters, digits, . _ or -",
});
const WebhookUrl = Type.String({
  minLength: 1,
  maxLength: 2048,
  description: "http(s) URL that receives the POSTs; loopback, link-local and private addresses are refused",
});

export const WebhookView = Type.Object(
  {
    id: Type.Integer(),
    name: Type.String(),
    url: Type.String({ description: "user name and password, if any, shown as ***" }),
    repository_patterns: Type.Array(Type.String()),
    events: Type.Array(WebhookEvent),
    enabled: Type.Boolean(),
    state: Type.Union([Type.Literal("active"), Type.Literal("disabled"), Type.Literal("switched-off")], {
      description: "switched-off: webhooks.enabled is false in the config, nothing is queued or sent",
    }),
    declared: Type.Boolean({ description: "declared in the config: read-only here" }),
    created_by: Type.String(),
    created_at: Time,
    updated_at: Time,
  },
  closed,
);
export type WebhookView = Static<typeof WebhookView>;

export const CreatedWebhookView = Type.Object(
  {
    ...WebhookView.properties,
    secret: Type.String({ description: "whsec_...; the HMAC-SHA256 signing secret, shown once" }),
  },
  closed,
);
export type CreatedWebhookView = Static<typeof CreatedWebhookView>;

export const CreateWebhookRequest = Type.Object(
  {
    name: WebhookName,
    url: WebhookUrl,
    repository_patterns: Type.Array(Pattern, { minItems: 1, maxItems: 32 }),
    events: Type.Optional(Type.Array(WebhookEvent, { minItems: 1, maxItems: 3, uniqueItems: true })),
    enabled: Type.Optional(Type.Boolean()),
  },
  closed,
);
export type CreateWebhookRequest = Static<typeof CreateWebhookRequest>;

export const UpdateWebhookBody = Type.Object(
  {
    url: Type.Optional(WebhookUrl),
    repository_patterns: Type.Optional(Type.Array(Pattern, { minItems: 1, maxItems: 32 })),
    events: Type.Optional(Type.Array(WebhookEvent, { minItems: 1, maxItems: 3, uniqueItems: true })),
    enabled: Type.Optional(Type.Boolean()),
  },
  closed,
);
export type UpdateWebhookBody = Static<typeof UpdateWebhookBody>;

export const DeliveryView = Type.Object(
  {
    id: Type.Integer(),
    webhook: Type.String(),
    event_id: Type.String(),
    type: Type.String(),
    test: Type.Boolean(),
    status: Type.Union([Type.Literal("pending"), Type.Literal("delivered"), Type.Literal("failed")]),
    attempts: Type.Integer(),
    created_at: Time,
    next_attempt_at: Type.Union([Time, Type.Null()], { description: "when pending: the next attempt" }),
    last_attempt_at: NullableTime,
    response_status: Type.Union([Type.Integer(), Type.Null()]),
    latency_ms: Type.Union([Type.Integer(), Type.Null()]),
    last_error: Type.Union([Type.String(), Type.Null()]),
    response_excerpt: Type.Union([Type.String(), Type.Null()], {
      description: "the first characters of the receiver's answer",
    }),
    redelivery_of: Type.Union([Type.Integer(), Type.Null()]),
    payload: WebhookPayloadSchema,
  },
  closed,
);
export type DeliveryView = Static<typeof DeliveryView>;

export const WebhookParam = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 64, description: "the webhook's name or id" }) },
  closed,
);

/** The body of POST /webhooks/:name/test and /deliveries/:id/redeliver: `{}` (nothing to say yet). */
export const EmptyBody = Type.Object({}, closed);
// ---- The image index's catalog and sync (issue 11 items 2 and 3; src/management/repositories.ts) ----

/** A repository name as the registry spells it; its grammar is checked by the operation (400). */
const RepositoryName = Type.String({
  minLength: 1,
  maxLength: 255,
  description: "team/app; in a path: team%2Fapp",
});

export const RepositoryView = Type.Object(
  { name: Type.String(), first_push_at: Time, last_push_at: Time },
  closed,
);
export type RepositoryView = Static<typeof RepositoryView>;

export const RepositoryDetailView = Type.Object(
  { ...RepositoryView.properties, tag_count: Type.Integer({ minimum: 0 }) },
  closed,
);
export type RepositoryDetailView = Static<typeof RepositoryDetailView>;

export const TagView = Type.Object(
  {
    repository: Type.String(),
    tag: Type.String(),
    digest: Type.String(),
    media_type: Type.String(),
    size_bytes: Type.Integer({ minimum: 0, description: "the manifest's size" }),
    pushed_by: Type.Union([Type.String(), Type.Null()], {
      description: "null: unknown (found by a sync), or the caller is anonymous",
    }),
    pushed_from: Type.Union([Type.String(), Type.Null()], {
      description: "the pusher's address: for administrators and for the pusher; null otherwise",
    }),
    first_push_at: Time,
    last_push_at: Time,
    pull_count: Type.Integer({ minimum: 0 }),
    last_pull_at: NullableTime,
    pull_command: Type.String({ description: "docker pull HOST/NAME:TAG, to copy" }),
  },
  closed,
);
export type TagView = Static<typeof TagView>;

export const SyncReportView = Type.Object(
  {
    repositories: Type.Integer({ minimum: 0, description: "repositories in the registry's catalog" }),
    tags: Type.Integer({ minimum: 0 }),
    added: Type.Integer({ minimum: 0, description: "tags new to the index" }),
    moved: Type.Integer({ minimum: 0, description: "tags that point at another digest now" }),
    deleted_tags: Type.Integer({ minimum: 0 }),
    deleted_repositories: Type.Integer({ minimum: 0 }),
    incomplete_repositories: Type.Array(Type.String(), {
      description: "could not be read whole; nothing of them was deleted",
    }),
    duration_ms: Type.Integer({ minimum: 0 }),
  },
  closed,
);
export type SyncReportView = Static<typeof SyncReportView>;

export const ListRepositoriesQuery = Type.Object(
  {
    pattern: Type.Optional(
      Type.String({ minLength: 1, maxLength: 255, description: "docker_auth glob: team/*, *-app" }),
    ),
    ...PageQuery,
  },
  closed,
);
export type ListRepositoriesQuery = Static<typeof ListRepositoriesQuery>;

/** POST /repositories/sync takes an empty object today (room for options later, e.g. one namespace). */
export const SyncRequest = Type.Object({}, closed);

export const RepositoryParam = Type.Object({ name: RepositoryName }, closed);
export const TagParams = Type.Object(
  { name: RepositoryName, tag: Type.String({ minLength: 1, maxLength: 128 }) },
  closed,
);
