/**
 * The config file's schema: the single source of truth for what regauth accepts. Section and key
 * names are cesanta/docker_auth's (examples/reference.yml), so an existing auth_config.yml loads
 * unchanged; unlike docker_auth, an unknown key or a wrong type is an error, never ignored.
 */
import { type Static, Type } from "@sinclair/typebox";
import { ExtAuthConfig, ExtAuthzConfig } from "../hooks/hook-config.ts";
import { AccessTokensConfig } from "../access-tokens/config-schema.ts";
import { AccountsConfig, RegistrationConfig } from "../accounts/config-schema.ts";
import { AuditConfig } from "../audit/config-schema.ts";
import { LdapAuthConfig } from "../ldap/config.ts";
import { AclXormConfig, XormAuthConfig } from "../sql-backends/config.ts";
import { NotificationsConfig } from "../registry-index/config-schema.ts";
import { WebhooksConfig } from "../webhooks/config-schema.ts";
import { WebConfig } from "../web/config-schema.ts";
import { IdentityProvidersConfig } from "../identity/config-schema.ts";
import { LetsEncryptConfig } from "../acme/config-schema.ts";

const strict = { additionalProperties: false } as const;

export const ServerConfig = Type.Object(
  {
    addr: Type.String({
      default: "127.0.0.1:5001",
      description: "Listen address HOST:PORT, or a socket path when net is unix.",
    }),
    net: Type.Union([Type.Literal("tcp"), Type.Literal("unix")], { default: "tcp" }),
    path_prefix: Type.String({ default: "", description: "Prefix for every route, e.g. /registry-auth." }),
    certificate: Type.Optional(
      Type.String({ description: "PEM certificate for HTTPS; also signs tokens unless token.key is set." }),
    ),
    key: Type.Optional(Type.String({ description: "PEM private key for HTTPS." })),
    real_ip_header: Type.Optional(
      Type.String({
        description:
          "Take the client address from this header (set by your reverse proxy). By default the last entry, the one your nearest proxy appended (real_ip_pos -1): earlier entries are written by the client.",
      }),
    ),
    // Review M5: behind an appending proxy (nginx $proxy_add_x_forwarded_for, HAProxy forwardfor)
    // entry 0 is whatever the client sent. docker_auth defaults to 0; we deliberately do not
    // (docs/acl-compatibility.md).
    real_ip_pos: Type.Integer({
      default: -1,
      description:
        "Which comma-separated entry of real_ip_header to use; negative counts from the end. Default -1: the entry the nearest proxy appended (docker_auth: 0, the client-written first one).",
    }),
    hsts: Type.Boolean({ default: false, description: "Send Strict-Transport-Security on every response." }),
    tls_min_version: Type.Optional(
      Type.Union([Type.String(), Type.Integer()], {
        description:
          "Lowest TLS version offered: TLS12 (default) or TLS13, or 0x0303 / 0x0304 (src/config/tls.ts).",
      }),
    ),
    tls_cipher_suites: Type.Optional(
      Type.Array(Type.Union([Type.String(), Type.Integer()]), {
        description:
          "TLS 1.2 suites offered, by Go name, number or OpenSSL name. Default: ECDHE with AES-GCM or ChaCha20-Poly1305.",
      }),
    ),
    tls_curve_preferences: Type.Optional(
      Type.Array(Type.Union([Type.String(), Type.Integer()]), {
        description:
          "Key exchange groups: P256, P384, P521, X25519, X25519MLKEM768, or numbers. Default: Bun's.",
      }),
    ),
    // Issue 16: HTTPS with a certificate from an ACME CA (src/acme/, docs/https-acme.md).
    letsencrypt: Type.Optional(LetsEncryptConfig),
    // Issue 17: one process per CPU behind one port (src/serve/supervisor.ts).
    workers: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 64,
        description:
          "Processes serving the port (SO_REUSEPORT under one supervisor). Default: the CPUs regauth may use (affinity, cgroup quota); 1: one process. TCP only.",
      }),
    ),
  },
  strict,
);

export const TokenConfig = Type.Object(
  {
    issuer: Type.String({
      minLength: 1,
      description: "The iss claim; must equal auth.token.issuer in the registry.",
    }),
    expiration: Type.Integer({
      minimum: 60,
      maximum: 86_400,
      default: 300,
      description: "Token lifetime in seconds. token.md: never less than 60.",
    }),
    refresh_expiration: Type.Integer({
      minimum: 0,
      maximum: 31_536_000,
      default: 2_592_000,
      description:
        "regauth extension: refresh token (docker's identity token) lifetime in seconds; 0 issues none (docs/refresh-tokens.md).",
    }),
    certificate: Type.Optional(
      Type.String({ description: "PEM certificate of the signing key; sent as x5c." }),
    ),
    key: Type.Optional(
      Type.String({ description: "PEM signing key: RSA (RS256) or EC P-256/384/521 (ES256/384/512)." }),
    ),
    rotation_overlap_seconds: Type.Integer({
      minimum: 0,
      maximum: 31_536_000,
      default: 86_400,
      description:
        "regauth extension: seconds between `regauth key rotate` and the new key signing, so that registries restarted with the new bundle trust it first (docs/deployment.md).",
    }),
    disable_legacy_key_id: Type.Boolean({
      default: false,
      description:
        "Use the RFC 7638 thumbprint as kid (registry 3.x) instead of the libtrust key ID (registry 2.x).",
    }),
    services: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        description: "regauth extension: the only `service` values accepted (the token's aud). Unset: any.",
      }),
    ),
  },
  strict,
);

export const LabelsConfig = Type.Record(Type.String(), Type.Array(Type.String()));

export const UserConfig = Type.Object(
  {
    password: Type.Optional(
      Type.String({ description: "bcrypt hash ($2a$, $2b$, $2y$), e.g. from `regauth hash-password`." }),
    ),
    labels: Type.Optional(LabelsConfig),
  },
  strict,
);

export const AclEntryConfig = Type.Object(
  {
    match: Type.Object(
      {
        account: Type.Optional(Type.String()),
        type: Type.Optional(Type.String()),
        name: Type.Optional(Type.String()),
        service: Type.Optional(Type.String()),
        ip: Type.Optional(Type.String()),
        labels: Type.Optional(Type.Record(Type.String(), Type.String())),
      },
      strict,
    ),
    actions: Type.Array(Type.String()),
    comment: Type.Optional(Type.String()),
  },
  strict,
);

/** The management API (docs/api.md, issue 10). */
export const ApiConfig = Type.Object(
  {
    enabled: Type.Boolean({ default: true, description: "Serve the management API under /api/v1." }),
    addr: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "Serve the API on its own listener HOST:PORT (e.g. 127.0.0.1:5002) instead of the token server's.",
      }),
    ),
    max_body_bytes: Type.Integer({
      minimum: 1024,
      maximum: 1_048_576,
      default: 65_536,
      description: "Largest request body the API reads; larger ones are refused with 413.",
    }),
  },
  { ...strict, default: {} },
);

/** Prometheus metrics at `${path_prefix}/metrics` (issue 12, item 4); off by default. */
export const MetricsConfig = Type.Object(
  {
    enabled: Type.Boolean({ default: false, description: "Serve Prometheus metrics at /metrics." }),
    bearer_token: Type.Optional(
      Type.String({
        minLength: 16,
        description: "Require `Authorization: Bearer <this>` on /metrics (at least 16 characters).",
      }),
    ),
    bearer_token_file: Type.Optional(
      Type.String({ minLength: 1, description: "Read the bearer token from this file (one line)." }),
    ),
  },
  { ...strict, default: {} },
);

/** Logs on stderr (src/log.ts, issue 12 item 5). */
export const LogConfig = Type.Object(
  {
    format: Type.Union([Type.Literal("logfmt"), Type.Literal("json")], {
      default: "logfmt",
      description: "logfmt (key=value) or json (one object a line).",
    }),
    level: Type.Union(
      [Type.Literal("debug"), Type.Literal("info"), Type.Literal("warn"), Type.Literal("error")],
      {
        default: "info",
        description:
          "Lowest level logged; docker_auth's -v=2 is debug. $REGAUTH_LOG_LEVEL, when set, wins over this.",
      },
    ),
  },
  { ...strict, default: {} },
);

export const Config = Type.Object(
  {
    server: Type.Object(ServerConfig.properties, { ...strict, default: {} }),
    api: ApiConfig,
    log: LogConfig,
    metrics: MetricsConfig,
    token: TokenConfig,
    users: Type.Optional(Type.Record(Type.String(), UserConfig)),
    acl: Type.Optional(Type.Array(AclEntryConfig)),
    ext_auth: Type.Optional(ExtAuthConfig),
    ext_authz: Type.Optional(ExtAuthzConfig),
    registration: RegistrationConfig,
    accounts: AccountsConfig,
    access_tokens: AccessTokensConfig,
    audit: AuditConfig,
    notifications: NotificationsConfig,
    webhooks: WebhooksConfig,
    web: WebConfig,
    identity_providers: IdentityProvidersConfig,
    ldap_auth: Type.Optional(LdapAuthConfig),
    xorm_auth: Type.Optional(XormAuthConfig),
    acl_xorm: Type.Optional(AclXormConfig),
    data_dir: Type.Optional(
      Type.String({
        description:
          "Where regauth keeps its database and generated keys. Default: ./regauth-data or $STATE_DIRECTORY.",
      }),
    ),
  },
  strict,
);

export type Config = Static<typeof Config>;
export type UserConfig = Static<typeof UserConfig>;
