/**
 * The dispatcher (runs inside `regauth serve`): takes due deliveries from the queue in the
 * database and sends them (docs/webhooks.md "Delivery"). Per webhook in order: only the head of
 * a webhook's queue is ever sent, and its later deliveries wait while it waits for a retry.
 * Across webhooks at most MAX_CONCURRENT at once. Polls every POLL_MS and is woken by the sink
 * when something was queued. Every state is in the table, so a restart continues where it
 * stopped; a store fault (a locked or full database) is logged and retried with backoff, never
 * a crash of the server.
 */
import type { Database } from "bun:sqlite";
import { withLockRetries, withoutBusyWait } from "../db/lock-retries.ts";
import type { IpRange } from "../ip.ts";
import { log } from "../log.ts";
import { type BackoffPolicy, backoffMs } from "./backoff.ts";
import { type AttemptOutcome, attemptDelivery } from "./deliver.ts";
import {
  beginAttempt,
  type Delivery,
  deleteDelivery,
  deleteFinished,
  dropExcessPending,
  dueHeads,
  findWebhook,
  finishAttempt,
  pruneHistory,
  type Webhook,
} from "./store.ts";

export const POLL_MS = 1_000;
export const MAX_CONCURRENT = 8;
const STORE_FAULT_BACKOFF_MS = { first: 1_000, max: 60_000 };
/** How often the queue's bound (webhooks.max_pending) is enforced: off the receiver's fast path. */
export const CAP_CHECK_MS = 10_000;

export interface DispatcherOptions {
  timeoutMs: number;
  maxAttempts: number;
  backoff: BackoffPolicy;
  /** webhooks.history: false deletes a delivery once it is finished. */
  keepHistory: boolean;
  historyLimit: number;
  /** webhooks.max_pending: deliveries queued per webhook at most. */
  maxPending?: number;
  allowed: readonly IpRange[];
  userAgent: string;
  /** The signing secret of a webhook; null when it has none here (a declared one without its file). */
  secretOf(webhook: Webhook): string | null;
  nowMs?: () => number;
  random?: () => number;
  pollMs?: number;
  maxConcurrent?: number;
  capCheckMs?: number;
  resolve?: (host: string) => Promise<string[]>;
  fetch?: typeof fetch;
}

export class WebhookDispatcher {
  readonly #db: Database;
  readonly #options: DispatcherOptions;
  readonly #nowMs: () => number;
  /** Webhooks with an attempt in flight (one per webhook: that is the order). */
  readonly #inFlight = new Map<number, Promise<void>>();
  /** Of those, the webhooks whose attempt in flight is a retry. */
  readonly #retriesInFlight = new Set<number>();
  #timer: ReturnType<typeof setTimeout> | null = null;
  #running = false;
  #storeFaultMs = 0;
  #ticking = false;
  #capCheckedAtMs = Number.NEGATIVE_INFINITY;

  constructor(db: Database, options: DispatcherOptions) {
    this.#db = db;
    this.#options = options;
    this.#nowMs = options.nowMs ?? Date.now;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule(0);
  }

  /** Something was queued or changed: look at the queue now. */
  wake(): void {
    if (this.#running && this.#storeFaultMs === 0) this.#schedule(0);
  }

  /** Stops taking deliveries and waits for those in flight (each bounded by its timeout). */
  async stop(): Promise<void> {
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await Promise.allSettled([...this.#inFlight.values()]);
  }

  /** Starts every due head it may (tests call it directly); resolves when those attempts end. */
  async runOnce(): Promise<number> {
    const started = this.#startDue();
    await Promise.allSettled(started);
    return started.length;
  }

  #schedule(ms: number): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#tick(), ms);
  }

  #tick(): void {
    this.#timer = null;
    if (!this.#running || this.#ticking) return;
    this.#ticking = true;
    try {
      this.#boundQueues();
      this.#startDue();
      this.#storeFaultMs = 0;
      this.#schedule(this.#options.pollMs ?? POLL_MS);
    } catch (error) {
      this.#storeFault(error);
    } finally {
      this.#ticking = false;
    }
  }

  #storeFault(error: unknown): void {
    this.#storeFaultMs =
      this.#storeFaultMs === 0
        ? STORE_FAULT_BACKOFF_MS.first
        : Math.min(STORE_FAULT_BACKOFF_MS.max, this.#storeFaultMs * 2);
    log.warn("webhook dispatcher cannot use the database; retrying", {
      error: (error as Error).message,
      retry_in_seconds: this.#storeFaultMs / 1000,
    });
    if (this.#running) this.#schedule(this.#storeFaultMs);
  }

  /** Enforces webhooks.max_pending every CAP_CHECK_MS; throws a store fault. */
  #boundQueues(): void {
    const maxPending = this.#options.maxPending;
    const now = this.#nowMs();
    if (maxPending === undefined || now - this.#capCheckedAtMs < (this.#options.capCheckMs ?? CAP_CHECK_MS))
      return;
    this.#capCheckedAtMs = now;
    const error = `not sent: more than ${maxPending} deliveries were queued for this webhook (webhooks.max_pending); dropped, oldest first`;
    for (const { webhookId, dropped } of dropExcessPending(this.#db, maxPending, now, error)) {
      log.warn("webhook queue full; dropped the oldest pending deliveries", {
        webhook: findWebhook(this.#db, webhookId)?.name ?? webhookId,
        dropped,
        max_pending: maxPending,
      });
      if (!this.#options.keepHistory) deleteFinished(this.#db, webhookId);
      else pruneHistory(this.#db, webhookId, this.#options.historyLimit);
    }
  }

  /** Throws a store fault (from reading the queue); the attempts it starts never throw. */
  #startDue(): Promise<void>[] {
    const limit = this.#options.maxConcurrent ?? MAX_CONCURRENT;
    const free = limit - this.#inFlight.size;
    if (free <= 0) return [];
    const now = this.#nowMs();
    // Fetch a few more than free slots: heads of webhooks already in flight are skipped.
    const heads = dueHeads(this.#db, now, free + this.#inFlight.size);
    // Retries may take all slots but a quarter: receivers that accept a connection and never
    // answer (a tarpit; any namespace administrator can point webhooks at one) would otherwise
    // hold every slot for timeout_seconds, round after round, and starve everyone's first
    // attempts. First attempts are taken first (dueHeads) and may use every slot.
    const retrySlots = Math.max(1, limit - Math.floor(limit / 4));
    const started: Promise<void>[] = [];
    for (const head of heads) {
      if (started.length >= free) break;
      if (this.#inFlight.has(head.webhookId)) continue;
      const isRetry = head.attempts > 0;
      if (isRetry && this.#retriesInFlight.size >= retrySlots) continue;
      const webhook = findWebhook(this.#db, head.webhookId);
      if (!webhook) continue;
      // Counted before it is sent: a crash during the attempt leaves it due again after this.
      const attempt = head.attempts + 1;
      if (!beginAttempt(this.#db, head.id, now, now + this.#options.timeoutMs + this.#backoff(attempt)))
        continue;
      if (isRetry) this.#retriesInFlight.add(head.webhookId);
      const running = this.#attempt(webhook, head, attempt).finally(() => {
        this.#inFlight.delete(head.webhookId);
        this.#retriesInFlight.delete(head.webhookId);
        // Its next delivery may be due at once.
        this.wake();
      });
      this.#inFlight.set(head.webhookId, running);
      started.push(running);
    }
    return started;
  }

  #backoff(attempt: number): number {
    return backoffMs(attempt, this.#options.backoff, this.#options.random);
  }

  async #attempt(webhook: Webhook, delivery: Delivery, attempt: number): Promise<void> {
    const secret = this.#options.secretOf(webhook);
    let outcome: AttemptOutcome;
    if (secret === null) {
      outcome = {
        kind: "failed",
        error: "no signing secret for this webhook here (its secret_file could not be read)",
        status: null,
        latencyMs: null,
        excerpt: null,
      };
    } else {
      try {
        outcome = await attemptDelivery({
          url: webhook.url,
          body: delivery.payload,
          secret,
          eventType: delivery.eventType,
          eventId: delivery.eventId,
          deliveryId: delivery.id,
          attempt,
          timeoutMs: this.#options.timeoutMs,
          allowed: this.#options.allowed,
          userAgent: this.#options.userAgent,
          nowMs: this.#nowMs,
          ...(this.#options.resolve ? { resolve: this.#options.resolve } : {}),
          ...(this.#options.fetch ? { fetch: this.#options.fetch } : {}),
        });
      } catch (error) {
        outcome = {
          kind: "failed",
          error: (error as Error).message,
          status: null,
          latencyMs: null,
          excerpt: null,
        };
      }
    }
    try {
      // A delivered attempt left unrecorded is sent again: wait out a lock held for milliseconds
      // (the receiver's writes, with server.workers in another process) instead of giving up.
      await withLockRetries(() =>
        withoutBusyWait(this.#db, () => this.#record(webhook, delivery, attempt, outcome)),
      );
    } catch (error) {
      // The attempt stays counted and due again later (beginAttempt): at least once.
      log.warn("webhook dispatcher cannot record a delivery attempt", {
        webhook: webhook.name,
        delivery: delivery.id,
        error: (error as Error).message,
      });
    }
  }

  #record(webhook: Webhook, delivery: Delivery, attempt: number, outcome: AttemptOutcome): void {
    const now = this.#nowMs();
    const db = this.#db;
    const finished =
      outcome.kind === "delivered" || outcome.kind === "refused" || attempt >= this.#options.maxAttempts;
    const status = outcome.kind === "delivered" ? "delivered" : finished ? "failed" : "pending";
    db.transaction(() => {
      finishAttempt(db, delivery.id, {
        status,
        nextAttemptAtMs: status === "pending" ? now + this.#backoff(attempt) : now,
        responseStatus: outcome.kind === "refused" ? null : outcome.status,
        latencyMs: outcome.kind === "refused" ? null : outcome.latencyMs,
        lastError: outcome.kind === "delivered" ? null : outcome.error,
        responseExcerpt: outcome.kind === "refused" ? null : outcome.excerpt,
      });
      if (status === "pending") return;
      if (!this.#options.keepHistory) deleteDelivery(db, delivery.id);
      else pruneHistory(db, webhook.id, this.#options.historyLimit);
    })();
    if (status === "failed")
      log.warn("webhook delivery failed", {
        webhook: webhook.name,
        delivery: delivery.id,
        event: delivery.eventId,
        attempts: attempt,
        error: outcome.kind === "delivered" ? "" : outcome.error,
      });
  }
}
