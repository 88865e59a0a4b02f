/**
 * Webhooks: list, show, create, change, delete, send a test event, delivery history, redeliver
 * (issue 11 item 4; docs/webhooks.md). Administrators manage all; a namespace administrator
 * those whose every repository pattern lies inside a namespace they administer (as with grants);
 * another's webhook is a 404. Webhooks declared in the config are read-only here (409). The
 * secret is in the answer to create only; never in listings, the audit log or the log.
 */
import { randomUUID } from "node:crypto";
import type { TSchema } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { checkPattern } from "../accounts/permissions.ts";
import { BadRequest, Conflict, NotFound, Unavailable } from "../errors.ts";
import {
  TEST_EVENT_TYPE,
  testPayload,
  type WebhookEventType,
  type WebhookPayload,
} from "../webhooks/payload.ts";
import { newNonce } from "../webhooks/secrets.ts";
import {
  type Delivery,
  deleteWebhook as removeWebhook,
  countWebhooks,
  enqueueDelivery,
  findDelivery,
  findDeliveryByEvent,
  findWebhook,
  insertWebhook,
  listDeliveries as readDeliveries,
  listWebhooks as readWebhooks,
  pendingCount,
  setSecretNonce,
  updateWebhook as writeWebhook,
  type Webhook,
} from "../webhooks/store.ts";
import { checkWebhookUrl, redactUrl } from "../webhooks/url-policy.ts";
import type { WebhookServices } from "../webhooks/webhooks.ts";
import { decide } from "./authorization.ts";
import { authorizeOrThrow, callerOf } from "./caller.ts";
import { actorName, type ManagementContext } from "./context.ts";
import { decodeCursor, encodeCursor, paginate, pageLimit } from "./paging.ts";
import {
  type CreatedWebhookView,
  CreateWebhookRequest,
  type DeliveryView,
  type Page,
  type PageRequest,
  UpdateWebhookBody,
  type WebhookView,
} from "./schemas.ts";
import { record } from "./users.ts";
import { rfc3339 } from "./views.ts";

const ALL_EVENTS: WebhookEventType[] = ["repository.created", "tag.pushed", "tag.deleted"];

function servicesOf(ctx: ManagementContext): WebhookServices {
  if (!ctx.webhooks) throw new Unavailable("webhooks are not available here");
  return ctx.webhooks;
}

export function webhookView(webhook: Webhook, services: WebhookServices | undefined): WebhookView {
  return {
    id: webhook.id,
    name: webhook.name,
    url: redactUrl(webhook.url),
    repository_patterns: webhook.repositoryPatterns,
    events: webhook.events,
    enabled: webhook.isEnabled,
    state: services && !services.enabled ? "switched-off" : webhook.isEnabled ? "active" : "disabled",
    declared: webhook.isDeclared,
    created_by: webhook.createdBy,
    created_at: rfc3339(webhook.createdAtUnix),
    updated_at: rfc3339(webhook.updatedAtUnix),
  };
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

export function deliveryView(delivery: Delivery, webhook: Webhook): DeliveryView {
  const payload = JSON.parse(delivery.payload) as WebhookPayload;
  return {
    id: delivery.id,
    webhook: webhook.name,
    event_id: payload.id,
    type: delivery.eventType,
    test: payload.test,
    status: delivery.status,
    attempts: delivery.attempts,
    created_at: new Date(delivery.createdAtMs).toISOString(),
    next_attempt_at: delivery.status === "pending" ? iso(delivery.nextAttemptAtMs) : null,
    last_attempt_at: iso(delivery.lastAttemptAtMs),
    response_status: delivery.responseStatus,
    latency_ms: delivery.latencyMs,
    last_error: delivery.lastError,
    response_excerpt: delivery.responseExcerpt,
    redelivery_of: delivery.redeliveryOf,
    payload,
  };
}

/** A webhook by id ("12") or name, if the caller may see it; NotFound alike when not. */
function visibleWebhook(ctx: ManagementContext, idOrName: string): Webhook {
  const webhook = findWebhook(ctx.db, /^\d{1,15}$/.test(idOrName) ? Number(idOrName) : idOrName);
  const missing = `no webhook ${JSON.stringify(idOrName)}`;
  authorizeOrThrow(
    callerOf(ctx),
    { op: "readWebhook", patterns: webhook?.repositoryPatterns ?? ["*"] },
    missing,
  );
  if (!webhook) throw new NotFound(missing);
  return webhook;
}

function refuseDeclared(webhook: Webhook): void {
  if (webhook.isDeclared)
    throw new Conflict(
      `the webhook ${webhook.name} is declared in the config (webhooks.declared); change it there`,
    );
}

function checkedUrl(services: WebhookServices, url: string): string {
  const check = checkWebhookUrl(url, services.allowed);
  if (!check.ok) throw new BadRequest(`body.url: ${check.reason}`);
  return check.url.href;
}

/**
 * The request schema again, for callers that do not come through the API's validation: the
 * offline CLI (src/cli/local-client.ts) took a name like `Upper` or `../x` and a 100 KB URL
 * that the API refuses.
 */
function checkedRequest<T>(schema: TSchema, input: T): T {
  if (Value.Check(schema, input)) return input;
  const first = Value.Errors(schema, input).First();
  const path = first ? `body${first.path.replaceAll("/", ".")}` : "body";
  throw new BadRequest(
    `${path}: ${first ? first.message.charAt(0).toLowerCase() + first.message.slice(1) : "invalid"}`,
  );
}

function checkedPatterns(patterns: readonly string[]): string[] {
  for (const pattern of patterns) checkPattern(pattern);
  return [...new Set(patterns)];
}

export function listWebhooks(ctx: ManagementContext, page: PageRequest = {}): Page<WebhookView> {
  const caller = callerOf(ctx);
  authorizeOrThrow(caller, { op: "listWebhooks" });
  const visible = readWebhooks(ctx.db).filter(
    (w) => decide(caller, { op: "readWebhook", patterns: w.repositoryPatterns }).allowed,
  );
  return paginate(
    visible,
    (w) => w.id,
    page,
    (w) => webhookView(w, ctx.webhooks),
  );
}

export function getWebhook(ctx: ManagementContext, idOrName: string): WebhookView {
  return webhookView(visibleWebhook(ctx, idOrName), ctx.webhooks);
}

export function createWebhook(ctx: ManagementContext, request: CreateWebhookRequest): CreatedWebhookView {
  const input = checkedRequest(CreateWebhookRequest, request);
  const services = servicesOf(ctx);
  const patterns = checkedPatterns(input.repository_patterns);
  authorizeOrThrow(callerOf(ctx), { op: "createWebhook", patterns });
  const url = checkedUrl(services, input.url);
  if (!services.key) throw new Unavailable("the webhook key cannot be read here");
  if (countWebhooks(ctx.db) >= services.maxWebhooks)
    throw new Conflict(
      `there are ${services.maxWebhooks} webhooks already (webhooks.max_webhooks); delete one or raise the limit`,
    );
  const nonce = newNonce();
  const webhook = insertWebhook(ctx.db, {
    name: input.name,
    url,
    repositoryPatterns: patterns,
    events: input.events ? [...new Set(input.events)] : ALL_EVENTS,
    isEnabled: input.enabled ?? true,
    isDeclared: false,
    secretNonce: nonce,
    createdBy: actorName(ctx.actor),
    nowUnix: ctx.nowUnix,
  });
  const view = webhookView(webhook, services);
  record(ctx, "webhook.created", { after: view });
  services.changed();
  return { ...view, secret: services.key().secretFor(nonce) };
}

export function updateWebhook(
  ctx: ManagementContext,
  idOrName: string,
  request: UpdateWebhookBody,
): WebhookView {
  const input = checkedRequest(UpdateWebhookBody, request);
  const services = servicesOf(ctx);
  const webhook = findWebhook(ctx.db, /^\d{1,15}$/.test(idOrName) ? Number(idOrName) : idOrName);
  const missing = `no webhook ${JSON.stringify(idOrName)}`;
  const patterns = input.repository_patterns ? checkedPatterns(input.repository_patterns) : undefined;
  authorizeOrThrow(
    callerOf(ctx),
    {
      op: "changeWebhook",
      patterns: webhook?.repositoryPatterns ?? ["*"],
      newPatterns: patterns ?? webhook?.repositoryPatterns ?? ["*"],
    },
    missing,
  );
  if (!webhook) throw new NotFound(missing);
  refuseDeclared(webhook);
  const before = webhookView(webhook, services);
  const updated = writeWebhook(
    ctx.db,
    webhook.id,
    {
      ...(input.url !== undefined ? { url: checkedUrl(services, input.url) } : {}),
      ...(patterns ? { repositoryPatterns: patterns } : {}),
      ...(input.events ? { events: [...new Set(input.events)] } : {}),
      ...(input.enabled !== undefined ? { isEnabled: input.enabled } : {}),
    },
    ctx.nowUnix,
  );
  const after = webhookView(updated, services);
  record(ctx, "webhook.updated", { before, after });
  services.changed();
  return after;
}

/**
 * A new signing secret, shown in this answer only; the old one stops at once (deliveries still
 * queued are signed with the new one when they are sent).
 */
export function rotateSecret(ctx: ManagementContext, idOrName: string): CreatedWebhookView {
  const services = servicesOf(ctx);
  const found = findWebhook(ctx.db, /^\d{1,15}$/.test(idOrName) ? Number(idOrName) : idOrName);
  const missing = `no webhook ${JSON.stringify(idOrName)}`;
  const patterns = found?.repositoryPatterns ?? ["*"];
  authorizeOrThrow(callerOf(ctx), { op: "changeWebhook", patterns, newPatterns: patterns }, missing);
  if (!found) throw new NotFound(missing);
  refuseDeclared(found);
  if (!services.key) throw new Unavailable("the webhook key cannot be read here");
  const nonce = newNonce();
  setSecretNonce(ctx.db, found.id, nonce, ctx.nowUnix);
  const updated = findWebhook(ctx.db, found.id);
  if (!updated) throw new NotFound(missing);
  const view = webhookView(updated, services);
  record(ctx, "webhook.updated", { before: webhookView(found, services), after: view, secret: "rotated" });
  services.changed();
  return { ...view, secret: services.key().secretFor(nonce) };
}

export function deleteWebhook(ctx: ManagementContext, idOrName: string): WebhookView {
  const webhook = visibleWebhook(ctx, idOrName);
  refuseDeclared(webhook);
  const view = webhookView(webhook, ctx.webhooks);
  removeWebhook(ctx.db, webhook.id);
  record(ctx, "webhook.deleted", { before: view });
  ctx.webhooks?.changed();
  return view;
}

function refuseWhenOff(services: WebhookServices, webhook: Webhook): void {
  if (!services.enabled)
    throw new Conflict("webhooks are switched off in the config (webhooks.enabled: false); nothing is sent");
  if (!webhook.isEnabled) throw new Conflict(`the webhook ${webhook.name} is disabled; enable it first`);
}

/** Test and redeliver add to the queue only below webhooks.max_pending (no spamming it full). */
function refuseWhenFull(ctx: ManagementContext, services: WebhookServices, webhook: Webhook): void {
  if (pendingCount(ctx.db, webhook.id, services.maxPending) >= services.maxPending)
    throw new Conflict(
      `the webhook ${webhook.name} already has ${services.maxPending} deliveries queued (webhooks.max_pending); wait for them or fix the receiver`,
    );
}

/** Queues a webhook.test event; the answer is the pending delivery (its history shows the outcome). */
export function testWebhook(ctx: ManagementContext, idOrName: string): DeliveryView {
  const services = servicesOf(ctx);
  const webhook = visibleWebhook(ctx, idOrName);
  refuseWhenOff(services, webhook);
  refuseWhenFull(ctx, services, webhook);
  const eventId = `test-${randomUUID()}`;
  const nowMs = Date.now();
  const payload = testPayload(eventId, Date.now(), actorName(ctx.actor), services.registryHost);
  enqueueDelivery(ctx.db, {
    webhookId: webhook.id,
    eventId,
    eventType: TEST_EVENT_TYPE,
    payload: JSON.stringify(payload),
    nowMs,
  });
  services.changed();
  const delivery = findDeliveryByEvent(ctx.db, webhook.id, eventId);
  if (!delivery) throw new Error("delivery vanished right after it was written");
  return deliveryView(delivery, webhook);
}

/** A webhook's deliveries, newest first. */
export function listDeliveries(
  ctx: ManagementContext,
  idOrName: string,
  page: PageRequest = {},
): Page<DeliveryView> {
  const webhook = visibleWebhook(ctx, idOrName);
  const limit = pageLimit(page);
  let before: number | null = null;
  if (page.cursor !== undefined) {
    const key = decodeCursor(page.cursor);
    if (typeof key !== "number") throw new BadRequest("query.cursor: not a cursor this server returned");
    before = key;
  }
  const rows = readDeliveries(ctx.db, webhook.id, before, limit + 1);
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return {
    items: items.map((d) => deliveryView(d, webhook)),
    next_cursor: rows.length > limit && last ? encodeCursor(last.id) : null,
  };
}

/** Queues a past delivery again, behind the webhook's pending ones (in order), with the same body. */
export function redeliver(ctx: ManagementContext, deliveryId: number): DeliveryView {
  const services = servicesOf(ctx);
  const past = findDelivery(ctx.db, deliveryId);
  const missing = `no delivery ${deliveryId}`;
  const webhook = past ? findWebhook(ctx.db, past.webhookId) : null;
  authorizeOrThrow(
    callerOf(ctx),
    { op: "readWebhook", patterns: webhook?.repositoryPatterns ?? ["*"] },
    missing,
  );
  if (!past || !webhook) throw new NotFound(missing);
  refuseWhenOff(services, webhook);
  if (past.status === "pending") throw new Conflict(`delivery ${deliveryId} is still pending`);
  refuseWhenFull(ctx, services, webhook);
  const original = past.redeliveryOf ?? past.id;
  // A new queue key per redelivery; the payload (and its event id) stays the original's.
  const eventId = `${JSON.parse(past.payload).id as string}#${randomUUID()}`;
  enqueueDelivery(ctx.db, {
    webhookId: webhook.id,
    eventId,
    eventType: past.eventType,
    payload: past.payload,
    nowMs: Date.now(),
    redeliveryOf: original,
  });
  services.changed();
  const delivery = findDeliveryByEvent(ctx.db, webhook.id, eventId);
  if (!delivery) throw new Error("delivery vanished right after it was written");
  return deliveryView(delivery, webhook);
}
