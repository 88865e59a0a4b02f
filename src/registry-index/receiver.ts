/**
 * Applies the registry's notifications to the image index (issue 11 items 1, 2 and 5;
 * docs/registry-index.md). Each event is one transaction: its id is marked seen, the index is
 * written, and the changes are handed to the sink (the webhooks) in the same transaction, so a
 * retry after a crash re-applies nothing twice and loses nothing. Pushes, pulls and deletes go
 * to the audit log once committed.
 *
 * Everything here is synchronous SQLite: the registry waits for the answer, and its queue for
 * this endpoint stalls while it waits (§C.1), so nothing here awaits anything.
 */
import type { Database } from "bun:sqlite";
import type { AuditLog } from "../audit/audit-log.ts";
import type { BackgroundWriter } from "../db/background-writer.ts";
import { withLockRetries, withoutBusyWait } from "../db/lock-retries.ts";
import { INDEX_CRAWLER_SUBJECT, type IndexChange, type IndexChangeSink } from "./changes.ts";
import type { RegistryEvent } from "./envelope.ts";
import {
  MAX_SEEN_EVENTS,
  markEventSeen,
  PRUNE_SEEN_EVENTS_SQL,
  SEEN_EVENTS_PRUNE_DUE_SQL,
  recordManifestDelete,
  recordManifestPush,
  recordPull,
  recordRepositoryDelete,
  recordTagDelete,
} from "./index-store.ts";

/**
 * How long applied event ids are remembered. The registry retries from memory only, until it is
 * restarted: a week covers a regauth that was down over a long weekend.
 */
export const SEEN_EVENT_RETENTION_MS = 7 * 86_400_000;
/** Forgetting old event ids: at start and then this often, on the background writer's thread. */
export const SEEN_EVENT_PRUNE_INTERVAL_MS = 60 * 60 * 1000;

export interface ReceiverOptions {
  db: Database;
  audit?: AuditLog;
  /** The webhooks (src/webhooks/ webhookSink), called inside each event's transaction. */
  sink?: IndexChangeSink;
  /** Where the periodic prune runs; without it, prune() on this thread only. */
  writer?: BackgroundWriter;
  now?: () => number;
  /** Event ids remembered at most (index-store MAX_SEEN_EVENTS). */
  maxSeenEvents?: number;
}

export interface ReceiveResult {
  /** Events applied now (the index may not have changed: a pull of an unknown tag). */
  applied: number;
  /** Events applied before (the registry's retries). */
  duplicates: number;
  /** Blob events, unknown actions, the crawler's own pulls, HEAD requests. */
  ignored: number;
}

export class NotificationReceiver {
  readonly #db: Database;
  readonly #audit: AuditLog | undefined;
  readonly #sink: IndexChangeSink | undefined;
  readonly #writer: BackgroundWriter | undefined;
  readonly #now: () => number;
  readonly #maxSeenEvents: number;
  #pruneTimer: ReturnType<typeof setInterval> | null = null;

  constructor(options: ReceiverOptions) {
    this.#db = options.db;
    this.#audit = options.audit;
    this.#sink = options.sink;
    this.#writer = options.writer;
    this.#now = options.now ?? Date.now;
    this.#maxSeenEvents = options.maxSeenEvents ?? MAX_SEEN_EVENTS;
  }

  /**
   * Applies `events` in order, each in its own transaction. Throws only for a store fault (the
   * caller answers 503 and the registry retries; events applied before the fault are then
   * recognised as duplicates).
   */
  receive(events: readonly RegistryEvent[]): ReceiveResult {
    const result: ReceiveResult = { applied: 0, duplicates: 0, ignored: 0 };
    for (const event of events) this.#count(result, event, isIndexed(event) && this.#applyOne(event));
    return result;
  }

  /**
   * As receive, for the route: each event's write waits out a lock held for milliseconds (the
   * background writer, the webhooks' dispatcher, with server.workers another process of this
   * server) without blocking the event loop; two workers answered the registry 503 for those.
   */
  async receiveWaitingOutLocks(events: readonly RegistryEvent[]): Promise<ReceiveResult> {
    const result: ReceiveResult = { applied: 0, duplicates: 0, ignored: 0 };
    for (const event of events) {
      const applied =
        isIndexed(event) &&
        (await withLockRetries(() => withoutBusyWait(this.#db, () => this.#applyOne(event))));
      this.#count(result, event, applied);
    }
    return result;
  }

  /** One event's transaction: false when its id was seen already (a retry). */
  #applyOne(event: IndexedEvent): boolean {
    return this.#db
      .transaction(() => {
        if (!markEventSeen(this.#db, event.id, this.#now())) return false;
        const changes = applyToIndex(this.#db, event);
        this.#sink?.(this.#db, changes);
        return true;
      })
      .immediate();
  }

  #count(result: ReceiveResult, event: RegistryEvent, applied: boolean): void {
    if (!isIndexed(event)) result.ignored++;
    else if (!applied) result.duplicates++;
    else {
      result.applied++;
      this.#recordAudit(event);
    }
  }

  /** Forgets event ids older than SEEN_EVENT_RETENTION_MS or beyond maxSeenEvents, on this thread; returns how many. */
  prune(): number {
    return this.#db.query(PRUNE_SEEN_EVENTS_SQL).run(this.#pruneParams()).changes;
  }

  /**
   * Prunes now and every SEEN_EVENT_PRUNE_INTERVAL_MS on the writer's thread (no request waits),
   * when something is due: queuing a DELETE of nothing would start the writer's worker (~5 MiB)
   * at every idle serve's start (issue 12 item 6). The check is index lookups on this thread.
   */
  startPruning(): void {
    if (this.#pruneTimer) return;
    const schedule = () => {
      if (this.#writer && !this.#pruneDue()) return;
      if (this.#writer)
        this.#writer.enqueue({
          key: "registry-events-seen:prune",
          sql: PRUNE_SEEN_EVENTS_SQL,
          params: this.#pruneParams(),
        });
      else this.prune();
    };
    schedule();
    this.#pruneTimer = setInterval(schedule, SEEN_EVENT_PRUNE_INTERVAL_MS);
    this.#pruneTimer.unref?.();
  }

  #pruneDue(): boolean {
    try {
      const row = this.#db
        .query<{ due: number | null }, { cutoff: number; maxRows: number }>(SEEN_EVENTS_PRUNE_DUE_SQL)
        .get(this.#pruneParams());
      return row?.due === 1;
    } catch {
      return true; // unreadable now: let the writer try, and report, as it did before
    }
  }

  stopPruning(): void {
    if (this.#pruneTimer) clearInterval(this.#pruneTimer);
    this.#pruneTimer = null;
  }

  get isPruning(): boolean {
    return this.#pruneTimer !== null;
  }

  #pruneParams(): { cutoff: number; maxRows: number } {
    return {
      cutoff: Math.floor((this.#now() - SEEN_EVENT_RETENTION_MS) / 1000),
      maxRows: this.#maxSeenEvents,
    };
  }

  #recordAudit(event: IndexedEvent): void {
    const audit = this.#audit;
    if (!audit) return;
    const common = {
      actor: event.actor ?? "",
      ip: event.address ?? "",
      repository: event.repository,
      outcome: "ok" as const,
      atUnixMs: event.atUnixMs,
    };
    const userAgent = event.userAgent ? { user_agent: event.userAgent } : {};
    switch (event.kind) {
      case "manifest.push":
        audit.record({
          ...common,
          kind: "image.pushed",
          details: {
            ...(event.tag !== undefined ? { tag: event.tag } : {}),
            digest: event.digest,
            media_type: event.mediaType,
            size_bytes: event.sizeBytes,
            event_id: event.id,
            ...userAgent,
          },
        });
        return;
      case "manifest.pull": {
        // A busy CI pulls the same image again and again: identical pulls within a second are
        // one row with a count, as token decisions are (src/audit/audit-log.ts recordCoalesced).
        const reference = event.tag ?? event.digest;
        const key = [
          "image.pulled",
          common.actor,
          common.ip,
          event.repository,
          reference,
          event.userAgent ?? "",
        ];
        audit.recordCoalesced(key.join("\u0000"), () => ({
          ...common,
          kind: "image.pulled",
          details: {
            ...(event.tag !== undefined ? { tag: event.tag } : {}),
            digest: event.digest,
            ...userAgent,
          },
        }));
        return;
      }
      case "tag.delete":
      case "digest.delete":
      case "repository.delete":
        audit.record({
          ...common,
          kind: "image.deleted",
          details: {
            ...(event.kind === "tag.delete" ? { tag: event.tag } : {}),
            ...(event.kind === "digest.delete" ? { digest: event.digest } : {}),
            ...(event.kind === "repository.delete" ? { whole_repository: true } : {}),
            event_id: event.id,
            ...userAgent,
          },
        });
        return;
    }
  }
}

type IndexedEvent = Exclude<RegistryEvent, { kind: "ignored" }>;

/**
 * Whether an event touches the index. The crawl's own pulls (INDEX_CRAWLER_SUBJECT) are nobody's
 * pulls; a HEAD is an existence check (containerd resolves a tag with HEAD, then GETs by digest:
 * counting both would count one pull twice).
 */
function isIndexed(event: RegistryEvent): event is IndexedEvent {
  if (event.kind === "ignored") return false;
  if (event.kind === "manifest.pull") return event.actor !== INDEX_CRAWLER_SUBJECT && event.method !== "HEAD";
  return true;
}

function applyToIndex(db: Database, event: IndexedEvent): IndexChange[] {
  const deletion = {
    repository: event.repository,
    atUnixMs: event.atUnixMs,
    eventId: event.id,
    source: "notification" as const,
    actor: event.actor,
    actorAddress: event.address,
  };
  switch (event.kind) {
    case "manifest.push":
      return recordManifestPush(db, {
        repository: event.repository,
        ...(event.tag !== undefined ? { tag: event.tag } : {}),
        digest: event.digest,
        mediaType: event.mediaType,
        sizeBytes: event.sizeBytes,
        pusher: event.actor,
        pusherAddress: event.address,
        atUnixMs: event.atUnixMs,
        eventId: event.id,
        source: "notification",
      });
    case "manifest.pull":
      recordPull(db, {
        repository: event.repository,
        ...(event.tag !== undefined ? { tag: event.tag } : { digest: event.digest }),
        atUnixMs: event.atUnixMs,
      });
      return [];
    case "tag.delete":
      return recordTagDelete(db, { ...deletion, tag: event.tag });
    case "digest.delete":
      return recordManifestDelete(db, { ...deletion, digest: event.digest });
    case "repository.delete":
      return recordRepositoryDelete(db, deletion);
  }
}
