/**
 * Config section `webhooks` (issue 11 item 4; docs/webhooks.md): outgoing webhooks, their
 * delivery queue and history. Switches: `enabled: false` sends nothing (and queues nothing);
 * `history: false` keeps no delivery history beyond what the queue needs.
 */
import { type Static, Type } from "@sinclair/typebox";

export const DeclaredWebhookConfig = Type.Object(
  {
    name: Type.String({
      minLength: 1,
      maxLength: 64,
      pattern: "^[a-z][a-z0-9._-]*$",
      description: "Unique name: a lowercase letter, then letters, digits, . _ or -.",
    }),
    url: Type.String({ minLength: 1, description: "http(s) URL that receives the POSTs." }),
    repositories: Type.Array(Type.String({ minLength: 1 }), {
      minItems: 1,
      default: ["*"],
      description: "Repository patterns (docker_auth globs: team/*, *) this webhook is for.",
    }),
    events: Type.Array(
      Type.Union([
        Type.Literal("repository.created"),
        Type.Literal("tag.pushed"),
        Type.Literal("tag.deleted"),
      ]),
      { minItems: 1, default: ["repository.created", "tag.pushed", "tag.deleted"] },
    ),
    secret_file: Type.String({
      minLength: 1,
      description: "File holding the HMAC-SHA256 signing secret (at least 16 bytes).",
    }),
  },
  { additionalProperties: false },
);

export const WebhooksConfig = Type.Object(
  {
    enabled: Type.Boolean({ default: true, description: "Send webhooks. false: none is queued or sent." }),
    history: Type.Boolean({
      default: true,
      description: "Keep a delivery history per webhook. false: a delivery is forgotten once done.",
    }),
    history_limit: Type.Integer({
      minimum: 1,
      maximum: 100_000,
      default: 100,
      description: "Finished deliveries kept per webhook (the newest).",
    }),
    max_pending: Type.Integer({
      minimum: 1,
      maximum: 10_000_000,
      default: 10_000,
      description:
        "Deliveries queued per webhook at most (a receiver down for days must not grow the database without bound): beyond it the oldest after the one being tried are marked failed, and test or redeliver answer 409.",
    }),
    max_webhooks: Type.Integer({
      minimum: 1,
      maximum: 100_000,
      default: 1_000,
      description:
        "Webhooks at most, declared ones included: every push fans out to each matching one, and each may hold max_pending queued deliveries. Beyond it creating one answers 409.",
    }),
    allow_private_networks: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description:
        "CIDRs (e.g. 127.0.0.0/8, 10.0.0.0/8) webhook URLs may reach although loopback, link-local or private. Default: none.",
    }),
    timeout_seconds: Type.Integer({
      minimum: 1,
      maximum: 60,
      default: 10,
      description: "Time for one delivery attempt: look up the name, connect, send and read the answer.",
    }),
    max_attempts: Type.Integer({
      minimum: 1,
      maximum: 100,
      default: 12,
      description: "Attempts per delivery before it is marked failed (exponential backoff with jitter).",
    }),
    retry_base_seconds: Type.Integer({
      minimum: 1,
      maximum: 3600,
      default: 5,
      description:
        "Backoff before the first retry; doubled for each further one (full jitter: a random wait up to it).",
    }),
    retry_max_seconds: Type.Integer({
      minimum: 1,
      maximum: 86_400,
      default: 3600,
      description: "Longest backoff between two attempts.",
    }),
    declared: Type.Array(DeclaredWebhookConfig, {
      default: [],
      description: "Webhooks declared in the config (managed here, read-only in the API and CLI).",
    }),
  },
  { additionalProperties: false, default: {} },
);

export type WebhooksConfig = Static<typeof WebhooksConfig>;
export type DeclaredWebhookConfig = Static<typeof DeclaredWebhookConfig>;
