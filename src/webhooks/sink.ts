/**
 * The index's IndexChangeSink (src/registry-index/changes.ts): for every change the index applied,
 * one delivery per matching webhook, inserted in the index's own write transaction, so a change
 * is queued exactly when it is indexed (at least once, never lost), and once per (webhook, event
 * id) whoever reports it twice. Cheap, since the receiver must answer the registry fast: the
 * enabled webhooks are held in memory (a few patterns each), re-read when this process changes
 * one, when another connection committed (another worker, an offline `regauth webhook add`), and
 * at least every CACHE_TTL_MS.
 */
import type { Database } from "bun:sqlite";
import { patternMatches } from "../accounts/permissions.ts";
import type { IndexChange, IndexChangeSink } from "../registry-index/changes.ts";
import { payloadOf } from "./payload.ts";
import { enqueueDelivery, listWebhooks, type Webhook } from "./store.ts";

export const CACHE_TTL_MS = 5_000;

export class WebhookCache {
  #webhooks: Webhook[] | null = null;
  #loadedAtMs = 0;
  #dataVersion: number | undefined;

  constructor(private readonly nowMs: () => number = Date.now) {}

  /**
   * The enabled webhooks, from memory unless changed or older than CACHE_TTL_MS. "Changed"
   * includes a commit by another connection (PRAGMA data_version): another worker's API call
   * (issue 17) or the CLI, as src/authz/database-permissions.ts's answer cache does.
   */
  enabled(db: Database): readonly Webhook[] {
    const now = this.nowMs();
    const version = db.query<{ v: number }, []>("SELECT data_version AS v FROM pragma_data_version").get()?.v;
    if (this.#webhooks === null || now - this.#loadedAtMs >= CACHE_TTL_MS || version !== this.#dataVersion) {
      this.#webhooks = listWebhooks(db, { enabledOnly: true });
      this.#loadedAtMs = now;
      this.#dataVersion = version;
    }
    return this.#webhooks;
  }

  /** A webhook was created, changed or deleted: read them again on next use. */
  invalidate(): void {
    this.#webhooks = null;
  }
}

export function matches(webhook: Webhook, change: IndexChange): boolean {
  return (
    webhook.events.includes(change.type) &&
    webhook.repositoryPatterns.some((pattern) => patternMatches(pattern, change.repository))
  );
}

export interface SinkOptions {
  /** webhooks.enabled: false queues nothing. */
  enabled: boolean;
  registryHost: string | null;
  cache: WebhookCache;
  /** Told after the transaction that something was queued (the dispatcher wakes up). */
  queued?: () => void;
  nowMs?: () => number;
}

export function webhookSink(options: SinkOptions): IndexChangeSink {
  const nowMs = options.nowMs ?? Date.now;
  return (db: Database, changes: readonly IndexChange[]) => {
    if (!options.enabled || changes.length === 0) return;
    const webhooks = options.cache.enabled(db);
    if (webhooks.length === 0) return;
    let queued = 0;
    const now = nowMs();
    for (const change of changes) {
      let body: string | null = null;
      for (const webhook of webhooks) {
        if (!matches(webhook, change)) continue;
        body ??= JSON.stringify(payloadOf(change, options.registryHost));
        if (
          enqueueDelivery(db, {
            webhookId: webhook.id,
            eventId: change.eventId,
            eventType: change.type,
            payload: body,
            nowMs: now,
          })
        )
          queued++;
      }
    }
    // After the caller's transaction commits: the dispatcher runs on the next turn of the loop.
    if (queued > 0 && options.queued) setTimeout(options.queued, 0);
  };
}
