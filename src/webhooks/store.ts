/**
 * The webhooks and their deliveries in the database (migrations/0007): plain functions over
 * bun:sqlite, portable SQL. A delivery is the queue entry and, once finished, its history.
 */
import type { Database } from "bun:sqlite";
import { Conflict } from "../errors.ts";
import type { WebhookEventType } from "./payload.ts";

export interface Webhook {
  id: number;
  name: string;
  url: string;
  repositoryPatterns: string[];
  events: WebhookEventType[];
  isEnabled: boolean;
  isDeclared: boolean;
  secretNonce: Uint8Array | null;
  createdBy: string;
  createdAtUnix: number;
  updatedAtUnix: number;
}

export type DeliveryStatus = "pending" | "delivered" | "failed";

export interface Delivery {
  id: number;
  webhookId: number;
  eventId: string;
  eventType: string;
  payload: string;
  status: DeliveryStatus;
  attempts: number;
  createdAtMs: number;
  nextAttemptAtMs: number;
  lastAttemptAtMs: number | null;
  responseStatus: number | null;
  latencyMs: number | null;
  lastError: string | null;
  responseExcerpt: string | null;
  redeliveryOf: number | null;
}

interface WebhookRow {
  id: number;
  name: string;
  url: string;
  repository_patterns: string;
  events: string;
  is_enabled: number;
  is_declared: number;
  secret_nonce: Uint8Array | null;
  created_by: string;
  created_at_unix: number;
  updated_at_unix: number;
}

interface DeliveryRow {
  id: number;
  webhook_id: number;
  event_id: string;
  event_type: string;
  payload: string;
  status: DeliveryStatus;
  attempts: number;
  created_at_ms: number;
  next_attempt_at_ms: number;
  last_attempt_at_ms: number | null;
  response_status: number | null;
  latency_ms: number | null;
  last_error: string | null;
  response_excerpt: string | null;
  redelivery_of: number | null;
}

function webhookOf(row: WebhookRow): Webhook {
  return {
    id: row.id,
    name: row.name,
    url: row.url,
    repositoryPatterns: JSON.parse(row.repository_patterns) as string[],
    events: JSON.parse(row.events) as WebhookEventType[],
    isEnabled: row.is_enabled === 1,
    isDeclared: row.is_declared === 1,
    secretNonce: row.secret_nonce,
    createdBy: row.created_by,
    createdAtUnix: row.created_at_unix,
    updatedAtUnix: row.updated_at_unix,
  };
}

function deliveryOf(row: DeliveryRow): Delivery {
  return {
    id: row.id,
    webhookId: row.webhook_id,
    eventId: row.event_id,
    eventType: row.event_type,
    payload: row.payload,
    status: row.status,
    attempts: row.attempts,
    createdAtMs: row.created_at_ms,
    nextAttemptAtMs: row.next_attempt_at_ms,
    lastAttemptAtMs: row.last_attempt_at_ms,
    responseStatus: row.response_status,
    latencyMs: row.latency_ms,
    lastError: row.last_error,
    responseExcerpt: row.response_excerpt,
    redeliveryOf: row.redelivery_of,
  };
}

export function listWebhooks(db: Database, filter: { enabledOnly?: boolean } = {}): Webhook[] {
  const where = filter.enabledOnly ? "WHERE is_enabled = 1" : "";
  return db.query<WebhookRow, []>(`SELECT * FROM webhooks ${where} ORDER BY id`).all().map(webhookOf);
}

export function countWebhooks(db: Database): number {
  return db.query<{ n: number }, []>("SELECT count(*) AS n FROM webhooks").get()?.n ?? 0;
}

export function findWebhook(db: Database, idOrName: number | string): Webhook | null {
  const row =
    typeof idOrName === "number"
      ? db.query<WebhookRow, [number]>("SELECT * FROM webhooks WHERE id = ?").get(idOrName)
      : db.query<WebhookRow, [string]>("SELECT * FROM webhooks WHERE name = ?").get(idOrName);
  return row ? webhookOf(row) : null;
}

export interface NewWebhook {
  name: string;
  url: string;
  repositoryPatterns: string[];
  events: WebhookEventType[];
  isEnabled: boolean;
  isDeclared: boolean;
  secretNonce: Uint8Array | null;
  createdBy: string;
  nowUnix: number;
}

export function insertWebhook(db: Database, input: NewWebhook): Webhook {
  if (findWebhook(db, input.name)) throw new Conflict(`a webhook ${JSON.stringify(input.name)} exists`);
  const row = db
    .query<{ id: number }, Record<string, string | number | Uint8Array | null>>(
      `INSERT INTO webhooks (name, url, repository_patterns, events, is_enabled, is_declared, secret_nonce,
                             created_by, created_at_unix, updated_at_unix)
       VALUES ($name, $url, $patterns, $events, $enabled, $declared, $nonce, $by, $now, $now) RETURNING id`,
    )
    .get({
      name: input.name,
      url: input.url,
      patterns: JSON.stringify(input.repositoryPatterns),
      events: JSON.stringify(input.events),
      enabled: input.isEnabled ? 1 : 0,
      declared: input.isDeclared ? 1 : 0,
      nonce: input.secretNonce,
      by: input.createdBy,
      now: input.nowUnix,
    });
  const created = row ? findWebhook(db, row.id) : null;
  if (!created) throw new Error("webhook vanished right after it was written");
  return created;
}

export interface WebhookChanges {
  url?: string;
  repositoryPatterns?: string[];
  events?: WebhookEventType[];
  isEnabled?: boolean;
}

export function updateWebhook(db: Database, id: number, changes: WebhookChanges, nowUnix: number): Webhook {
  const sets: string[] = ["updated_at_unix = $now"];
  const values: Record<string, string | number> = { id, now: nowUnix };
  if (changes.url !== undefined) {
    sets.push("url = $url");
    values.url = changes.url;
  }
  if (changes.repositoryPatterns !== undefined) {
    sets.push("repository_patterns = $patterns");
    values.patterns = JSON.stringify(changes.repositoryPatterns);
  }
  if (changes.events !== undefined) {
    sets.push("events = $events");
    values.events = JSON.stringify(changes.events);
  }
  if (changes.isEnabled !== undefined) {
    sets.push("is_enabled = $enabled");
    values.enabled = changes.isEnabled ? 1 : 0;
  }
  db.query(`UPDATE webhooks SET ${sets.join(", ")} WHERE id = $id`).run(values);
  const updated = findWebhook(db, id);
  if (!updated) throw new Error("webhook vanished right after it was written");
  return updated;
}

export function setSecretNonce(db: Database, id: number, nonce: Uint8Array, nowUnix: number): void {
  db.query("UPDATE webhooks SET secret_nonce = ?, updated_at_unix = ? WHERE id = ?").run(nonce, nowUnix, id);
}

export function deleteWebhook(db: Database, id: number): void {
  db.query("DELETE FROM webhooks WHERE id = ?").run(id);
}

export interface NewDelivery {
  webhookId: number;
  eventId: string;
  eventType: string;
  payload: string;
  nowMs: number;
  redeliveryOf?: number;
}

/** Queues a delivery; false when this webhook already has one for this event id (a duplicate). */
export function enqueueDelivery(db: Database, input: NewDelivery): boolean {
  const result = db
    .query(
      // WHERE EXISTS: a webhook another process deleted a moment ago is skipped, not a
      // foreign-key failure in the caller's (the index's) transaction.
      `INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, payload, created_at_ms, next_attempt_at_ms, redelivery_of)
       SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = ?1)
       ON CONFLICT (webhook_id, event_id) DO NOTHING`,
    )
    .run(
      input.webhookId,
      input.eventId,
      input.eventType,
      input.payload,
      input.nowMs,
      input.nowMs,
      input.redeliveryOf ?? null,
    );
  return result.changes > 0;
}

export function findDelivery(db: Database, id: number): Delivery | null {
  const row = db.query<DeliveryRow, [number]>("SELECT * FROM webhook_deliveries WHERE id = ?").get(id);
  return row ? deliveryOf(row) : null;
}

export function findDeliveryByEvent(db: Database, webhookId: number, eventId: string): Delivery | null {
  const row = db
    .query<DeliveryRow, [number, string]>(
      "SELECT * FROM webhook_deliveries WHERE webhook_id = ? AND event_id = ?",
    )
    .get(webhookId, eventId);
  return row ? deliveryOf(row) : null;
}

/** A webhook's deliveries, newest first, after `beforeId` (keyset paging). */
export function listDeliveries(
  db: Database,
  webhookId: number,
  beforeId: number | null,
  limit: number,
): Delivery[] {
  return db
    .query<DeliveryRow, [number, number, number]>(
      `SELECT * FROM webhook_deliveries WHERE webhook_id = ? AND id < ? ORDER BY id DESC LIMIT ?`,
    )
    .all(webhookId, beforeId ?? Number.MAX_SAFE_INTEGER, limit)
    .map(deliveryOf);
}

/**
 * dueHeads' query: per enabled webhook, one seek on webhook_deliveries_queue (status, webhook_id,
 * id) for its oldest pending delivery. The dispatcher runs it on every wake-up; a GROUP BY over
 * the pending deliveries read the whole queue each time (up to max_pending per webhook), so a
 * busy or unreachable receiver slowed every later push (scripts/bench.ts, notifications).
 */
export const DUE_HEADS_SQL = `SELECT d.* FROM webhooks w
  JOIN webhook_deliveries d ON d.id = (
    SELECT q.id FROM webhook_deliveries q
    WHERE q.status = 'pending' AND q.webhook_id = w.id ORDER BY q.id LIMIT 1)
  WHERE w.is_enabled = 1 AND d.next_attempt_at_ms <= ?
  ORDER BY CASE WHEN d.attempts > 0 THEN 1 ELSE 0 END, d.next_attempt_at_ms, d.id
  LIMIT ?`;

/**
 * The head of each enabled webhook's queue (its oldest pending delivery) when it is due: a
 * webhook's later deliveries wait behind a head that waits for its retry (delivery in order).
 * First attempts come before retries, so receivers that keep failing do not get ahead of
 * healthy ones.
 */
export function dueHeads(db: Database, nowMs: number, limit: number): Delivery[] {
  return db.query<DeliveryRow, [number, number]>(DUE_HEADS_SQL).all(nowMs, limit).map(deliveryOf);
}

/**
 * Counts an attempt before it is made, and sets when the delivery is due again if this attempt
 * never reports (a crash, a stop): at-least-once, and no delivery retried for ever by crashes.
 * It is also the claim: false when the delivery is no longer due, because another dispatcher
 * (a second serve on the same data directory) read the same head and claimed it first; only
 * the claimant sends it, so it is not sent twice at once nor out of order.
 */
export function beginAttempt(db: Database, id: number, nowMs: number, retryAtMs: number): boolean {
  const result = db
    .query(
      `UPDATE webhook_deliveries SET attempts = attempts + 1, last_attempt_at_ms = ?, next_attempt_at_ms = ?
       WHERE id = ? AND status = 'pending' AND next_attempt_at_ms <= ?`,
    )
    .run(nowMs, retryAtMs, id, nowMs);
  return result.changes === 1;
}

export interface AttemptResult {
  status: DeliveryStatus;
  nextAttemptAtMs: number;
  responseStatus: number | null;
  latencyMs: number | null;
  lastError: string | null;
  responseExcerpt: string | null;
}

export function finishAttempt(db: Database, id: number, result: AttemptResult): void {
  db.query(
    `UPDATE webhook_deliveries SET status = ?, next_attempt_at_ms = ?, response_status = ?, latency_ms = ?,
       last_error = ?, response_excerpt = ?
     WHERE id = ?`,
  ).run(
    result.status,
    result.nextAttemptAtMs,
    result.responseStatus,
    result.latencyMs,
    result.lastError,
    result.responseExcerpt,
    id,
  );
}

export function deleteDelivery(db: Database, id: number): void {
  db.query("DELETE FROM webhook_deliveries WHERE id = ?").run(id);
}

/** Keeps the newest `keep` finished deliveries of a webhook; pending ones are never pruned. */
export function pruneHistory(db: Database, webhookId: number, keep: number): void {
  db.query(
    `DELETE FROM webhook_deliveries
     WHERE webhook_id = $webhook AND status <> 'pending' AND id < coalesce(
       (SELECT id FROM webhook_deliveries WHERE webhook_id = $webhook AND status <> 'pending'
        ORDER BY id DESC LIMIT 1 OFFSET $offset), 0)`,
  ).run({ webhook: webhookId, offset: keep - 1 });
}

/** How many deliveries of a webhook are pending, counting no further than `atMost`. */
export function pendingCount(db: Database, webhookId: number, atMost: number): number {
  const row = db
    .query<{ n: number }, [number, number]>(
      `SELECT count(*) AS n FROM (SELECT 1 FROM webhook_deliveries
         WHERE status = 'pending' AND webhook_id = ? LIMIT ?)`,
    )
    .get(webhookId, atMost);
  return row?.n ?? 0;
}

/**
 * Bounds every webhook's queue to `maxPending` (webhooks.max_pending): the oldest pending
 * deliveries after the head (which may be in flight) are marked failed with `error`, so the
 * newest stay queued and the dropped ones show in the history and can be redelivered. Returns
 * how many were dropped per webhook.
 */
export function dropExcessPending(
  db: Database,
  maxPending: number,
  nowMs: number,
  error: string,
): { webhookId: number; dropped: number }[] {
  return db.transaction(() => {
    const over = db
      .query<{ webhook_id: number; n: number }, [number]>(
        `SELECT webhook_id, count(*) AS n FROM webhook_deliveries WHERE status = 'pending'
         GROUP BY webhook_id HAVING count(*) > ?`,
      )
      .all(maxPending);
    return over.map(({ webhook_id: webhookId, n }) => {
      const result = db
        .query(
          `UPDATE webhook_deliveries SET status = 'failed', next_attempt_at_ms = ?, last_error = ?
           WHERE id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending' AND webhook_id = ?
                        ORDER BY id LIMIT ? OFFSET 1)`,
        )
        .run(nowMs, error, webhookId, n - maxPending);
      return { webhookId, dropped: result.changes };
    });
  })();
}

/** Deletes every finished delivery, or a webhook's (history: false turned on while some were kept). */
export function deleteFinished(db: Database, webhookId?: number): void {
  if (webhookId === undefined) db.run("DELETE FROM webhook_deliveries WHERE status <> 'pending'");
  else db.run("DELETE FROM webhook_deliveries WHERE webhook_id = ? AND status <> 'pending'", [webhookId]);
}
