/**
 * Config section `identity_providers` (issue 15; docs/identity-providers.md): sign-in to the web
 * interface with an OpenID Connect provider (Keycloak, Authelia, Authentik, Dex, Google, GitLab,
 * ...). The result is a web session of a database account, from which the user makes access
 * tokens for `docker login` on the tokens page.
 */
import { type Static, Type } from "@sinclair/typebox";

/** Asymmetric JWS algorithms only: never `none`, never an HMAC keyed by the client secret. */
export const ID_TOKEN_ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
] as const;

/** A day: an outage of the provider over a night or a weekend morning does not lock people out. */
export const DEFAULT_MAX_UNCHECKED_SECONDS = 86_400;

/**
 * The outage cap: an identity the provider could not re-check for this long loses access as a
 * refusal would. Without it an unreachable provider (or one an attacker keeps unreachable from
 * regauth) would postpone the re-check for ever, and a user removed there meanwhile keep access.
 */
const MaxUncheckedSeconds = Type.Integer({
  minimum: 10,
  maximum: 30 * 86_400,
  description:
    "While the provider cannot be reached, re-checks are postponed; an identity whose last successful check is older than this loses access (its tokens deleted, its sessions ended) until it signs in again. At least revalidate_after_seconds. Default: 86400 (a day), or twice revalidate_after_seconds when that is longer.",
});

/**
 * The effective cap. An omitted one never sits below the re-check interval: twice it when that is
 * over a day, so one re-check missed in an outage never ends access by itself (and a config with
 * revalidate_after_seconds over a day, valid before this key existed, still loads).
 */
export function maxUncheckedSecondsOf(provider: {
  revalidate_after_seconds: number;
  max_unchecked_seconds?: number | undefined;
}): number {
  return (
    provider.max_unchecked_seconds ??
    Math.max(DEFAULT_MAX_UNCHECKED_SECONDS, 2 * provider.revalidate_after_seconds)
  );
}

/** Why a provider's max_unchecked_seconds cannot work, or null (config-check.ts reports it). */
export function maxUncheckedProblem(provider: {
  revalidate_after_seconds: number;
  max_unchecked_seconds?: number | undefined;
}): string | null {
  const cap = provider.max_unchecked_seconds;
  if (cap === undefined || cap >= provider.revalidate_after_seconds) return null;
  return `max_unchecked_seconds (${cap}) must be at least revalidate_after_seconds (${provider.revalidate_after_seconds}): an identity is re-checked only that often, so a shorter cap would end access at the first re-check the provider misses`;
}

export const OidcProviderConfig = Type.Object(
  {
    name: Type.String({
      pattern: "^[a-z0-9][a-z0-9-]{0,31}$",
      description: "Short name, in URLs (/sign-in/oidc/NAME) and in `regauth identity link --provider NAME`.",
    }),
    display_name: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        description: 'The button says "Sign in with DISPLAY_NAME". Default: name.',
      }),
    ),
    issuer: Type.String({
      pattern: "^https?://",
      description:
        "The issuer URL; its /.well-known/openid-configuration is read at start-up. https, except on loopback.",
    }),
    client_id: Type.String({ minLength: 1 }),
    client_secret: Type.Optional(Type.String({ minLength: 1 })),
    client_secret_file: Type.Optional(
      Type.String({
        minLength: 1,
        description: "A file holding the client secret (trailing newline ignored).",
      }),
    ),
    redirect_url: Type.Optional(
      Type.String({
        pattern: "^https?://",
        description:
          "The URL to register at the provider. Default: identity_providers.public_url + server.path_prefix + /sign-in/oidc/NAME/callback.",
      }),
    ),
    scopes: Type.Array(Type.String({ pattern: "^[\\x21\\x23-\\x5b\\x5d-\\x7e]+$" }), {
      default: ["openid", "profile", "email"],
      description:
        "Requested scopes; openid is added when missing. Add offline_access where the provider needs it for refresh tokens.",
    }),
    authorization_params: Type.Optional(
      Type.Record(Type.String({ pattern: "^[a-z_]{1,32}$" }), Type.String({ maxLength: 200 }), {
        description:
          "Extra parameters of the authorization URL, e.g. Google's {access_type: offline, prompt: consent} for a refresh token. The flow's own (state, nonce, PKCE, scope, ...) cannot be set.",
      }),
    ),
    user_claim: Type.String({
      minLength: 1,
      default: "preferred_username",
      description:
        "The claim naming the account; for `email`, the address's local part. Validated as any account name (lowercase letters, digits, . _ -).",
    }),
    allowed_email_domains: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        description: "Only users whose verified email claim is in one of these domains.",
      }),
    ),
    groups_claim: Type.String({
      minLength: 1,
      default: "groups",
      description: "The claim listing the user's groups.",
    }),
    allowed_groups: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        description: "Only members of at least one of these groups.",
      }),
    ),
    labels_from_claims: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
      default: [],
      description:
        "Claims (strings or lists of strings) that become ACL labels of the same name for the account's access tokens, e.g. [groups] for `match: {labels: {groups: dev}}`. Refreshed at each sign-in and re-check.",
    }),
    database_groups: Type.Optional(
      Type.Record(Type.String({ minLength: 1 }), Type.String({ minLength: 1 }), {
        description:
          "Provider group → regauth database group. At each sign-in and re-check the account joins or leaves each group named here; others are untouched.",
      }),
    ),
    first_sign_in: Type.Union([Type.Literal("create"), Type.Literal("link_only")], {
      default: "link_only",
      description:
        "create: a first sign-in creates the account (its name from user_claim; an existing account is never taken over). link_only: only accounts an administrator linked.",
    }),
    revalidate_after_seconds: Type.Integer({
      minimum: 10,
      maximum: 7 * 86_400,
      default: 3600,
      description: "Re-check each signed-in identity with the provider (refresh token grant) this often.",
    }),
    max_unchecked_seconds: Type.Optional(MaxUncheckedSeconds),
    id_token_algorithms: Type.Array(Type.Union(ID_TOKEN_ALGORITHMS.map((alg) => Type.Literal(alg))), {
      minItems: 1,
      default: ["RS256", "ES256", "PS256", "EdDSA"],
      description: "ID token signature algorithms accepted.",
    }),
  },
  { additionalProperties: false },
);

/** GitHub OAuth app sign-in (GitHub is not OpenID Connect; src/identity/github.ts). */
export const GithubProviderConfig = Type.Object(
  {
    name: Type.String({ pattern: "^[a-z0-9][a-z0-9-]{0,31}$", default: "github" }),
    display_name: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    client_id: Type.String({ minLength: 1 }),
    client_secret: Type.Optional(Type.String({ minLength: 1 })),
    client_secret_file: Type.Optional(Type.String({ minLength: 1 })),
    redirect_url: Type.Optional(Type.String({ pattern: "^https?://" })),
    web_url: Type.String({
      pattern: "^https?://[^/]+(/[^?#]*)?$",
      default: "https://github.com",
      description: "GitHub's web URL; for GitHub Enterprise Server https://HOST.",
    }),
    api_url: Type.String({
      pattern: "^https?://[^/]+(/[^?#]*)?$",
      default: "https://api.github.com",
      description: "GitHub's API URL; for GitHub Enterprise Server https://HOST/api/v3.",
    }),
    organization: Type.Optional(
      Type.String({
        pattern: "^[A-Za-z0-9][A-Za-z0-9-]{0,38}$",
        description: "Only members of this organization (checked with the API at each sign-in and re-check).",
      }),
    ),
    allowed_teams: Type.Optional(
      Type.Array(Type.String({ pattern: "^[a-z0-9][a-z0-9_-]*$" }), {
        minItems: 1,
        description: "Only members of one of these teams (slugs) of the organization.",
      }),
    ),
    teams_as_labels: Type.Boolean({
      default: true,
      description:
        "The organization's teams of the user (and their parents) become the ACL label `teams` of the account's access tokens.",
    }),
    database_groups: Type.Optional(
      Type.Record(Type.String({ minLength: 1 }), Type.String({ minLength: 1 }), {
        description: "Team slug → regauth database group.",
      }),
    ),
    first_sign_in: Type.Union([Type.Literal("create"), Type.Literal("link_only")], { default: "link_only" }),
    revalidate_after_seconds: Type.Integer({ minimum: 10, maximum: 7 * 86_400, default: 3600 }),
    max_unchecked_seconds: Type.Optional(MaxUncheckedSeconds),
  },
  { additionalProperties: false },
);

export type GithubProviderConfig = Static<typeof GithubProviderConfig>;

export const IdentityProvidersConfig = Type.Object(
  {
    public_url: Type.Optional(
      Type.String({
        pattern: "^https?://[^/]+$",
        description:
          "regauth's URL as browsers reach it (scheme and host, no path), for the default redirect URLs.",
      }),
    ),
    oidc: Type.Array(OidcProviderConfig, { default: [] }),
    github: Type.Array(GithubProviderConfig, { default: [] }),
  },
  { additionalProperties: false, default: {} },
);

export type OidcProviderConfig = Static<typeof OidcProviderConfig>;
export type IdentityProvidersConfig = Static<typeof IdentityProvidersConfig>;
