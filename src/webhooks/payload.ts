/**
 * The JSON body of a webhook delivery (docs/webhooks.md "Payload"): one TypeBox schema, exported
 * so the OpenAPI document includes it (the deliveries route answers it as `payload`), snake_case
 * like the rest of the API, times RFC 3339.
 */
import { type Static, Type } from "@sinclair/typebox";
import type { IndexChange } from "../registry-index/changes.ts";

export const WEBHOOK_EVENT_TYPES = ["repository.created", "tag.pushed", "tag.deleted"] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];
/** What "send a test event" sends: never an index change, so a receiver can tell it apart. */
export const TEST_EVENT_TYPE = "webhook.test";

const Nullable = <T extends ReturnType<typeof Type.String>>(schema: T) => Type.Union([schema, Type.Null()]);

export const WebhookPayload = Type.Object(
  {
    id: Type.String({ description: "The event id: the same for every attempt and redelivery of it." }),
    type: Type.Union([...WEBHOOK_EVENT_TYPES.map((t) => Type.Literal(t)), Type.Literal(TEST_EVENT_TYPE)], {
      description: "repository.created, tag.pushed, tag.deleted, or webhook.test",
    }),
    test: Type.Boolean({ description: "true only for `regauth webhook test` (type webhook.test)" }),
    occurred_at: Type.String({ format: "date-time", description: "When it happened (RFC 3339)." }),
    repository: Type.String({ description: "e.g. team/app" }),
    tag: Nullable(Type.String()),
    digest: Nullable(Type.String({ description: "sha256:..." })),
    media_type: Nullable(Type.String()),
    size_bytes: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
    pusher: Nullable(Type.String({ description: "Who pushed (the token's subject); null when unknown." })),
    pusher_address: Nullable(Type.String()),
    source: Type.Union([Type.Literal("notification"), Type.Literal("sync"), Type.Literal("test")]),
    pull_command: Nullable(
      Type.String({
        description:
          "docker pull HOST/REPO:TAG (or @DIGEST), HOST from notifications.registry_host (else registry_url's host); null without a host or tag",
      }),
    ),
  },
  { additionalProperties: false, $id: "WebhookPayload" },
);
export type WebhookPayload = Static<typeof WebhookPayload>;

function iso(unixMs: number): string {
  return new Date(unixMs).toISOString();
}

function pullCommand(host: string | null, repository: string, tag?: string, digest?: string): string | null {
  if (host === null) return null;
  if (tag !== undefined) return `docker pull ${host}/${repository}:${tag}`;
  if (digest !== undefined) return `docker pull ${host}/${repository}@${digest}`;
  return null;
}

export function payloadOf(change: IndexChange, registryHost: string | null): WebhookPayload {
  return {
    id: change.eventId,
    type: change.type,
    test: false,
    occurred_at: iso(change.atUnixMs),
    repository: change.repository,
    tag: change.tag ?? null,
    digest: change.digest ?? null,
    media_type: change.mediaType ?? null,
    size_bytes: change.sizeBytes ?? null,
    pusher: change.pusher,
    pusher_address: change.pusherAddress,
    source: change.source,
    // A deleted tag cannot be pulled.
    pull_command:
      change.type === "tag.deleted" ? null : pullCommand(registryHost, change.repository, change.tag),
  };
}

/** The body of "send a test event". */
export function testPayload(eventId: string, nowMs: number, actor: string, registryHost: string | null) {
  const repository = "regauth/webhook-test";
  return {
    id: eventId,
    type: TEST_EVENT_TYPE,
    test: true,
    occurred_at: iso(nowMs),
    repository,
    tag: "test",
    digest: null,
    media_type: null,
    size_bytes: null,
    pusher: actor,
    pusher_address: null,
    source: "test",
    pull_command: pullCommand(registryHost, repository, "test"),
  } satisfies WebhookPayload;
}
