/**
 * The audit log (issue 10 item 6): logins, token decisions, token and robot use, management
 * changes, in the audit_events table (migrations/0005). Recording never blocks a request and
 * never throws: events go through the database's BackgroundWriter (src/db/background-writer.ts),
 * a worker thread that writes them in batches. The queue is bounded: while the disk is stuck,
 * events beyond AUDIT_MAX_PENDING are dropped and counted (`stats.dropped`), so that the audit
 * log can never fill memory nor crowd out the last-login writes that share the writer.
 *
 * Details never hold a secret: keys that name one are dropped and values that look like a token
 * secret are replaced, whatever a caller passes (redactSecrets).
 *
 * Token decisions are recorded with a coalescing key (recordCoalesced): identical events within
 * COALESCE_WINDOW_MS become one row whose details carry `count`. Docker asks for a token per blob
 * and a busy CI runner for thousands a minute; one row per request cost a quarter of the token
 * server's throughput at saturation (bun run bench), and said nothing a count does not.
 */
import type { Database } from "bun:sqlite";
import type { BackgroundWriter } from "../db/background-writer.ts";
import { log } from "../log.ts";

export type AuditKind =
  | "login"
  | "token"
  | "access-token.used"
  | "user.created"
  | "user.updated"
  | "user.deleted"
  | "user.password-changed"
  | "group.created"
  | "group.deleted"
  | "group.member-added"
  | "group.member-removed"
  | "permission.granted"
  | "permission.revoked"
  | "access-token.created"
  | "access-token.revoked"
  | "robot.created"
  | "robot.deleted"
  | "name.released"
  // From the registry's notifications (issue 11 item 5): who pushed, pulled or deleted what.
  | "image.pushed"
  | "image.pulled"
  | "image.deleted"
  | "repository.synced"
  | "webhook.created"
  | "webhook.updated"
  | "webhook.deleted"
  // Identity providers (issue 15): an administrator linked or unlinked an identity; a re-check ended access.
  | "identity.linked"
  | "identity.unlinked"
  | "identity.revoked";

export const AUDIT_KINDS: readonly AuditKind[] = [
  "login",
  "token",
  "access-token.used",
  "user.created",
  "user.updated",
  "user.deleted",
  "user.password-changed",
  "group.created",
  "group.deleted",
  "group.member-added",
  "group.member-removed",
  "permission.granted",
  "permission.revoked",
  "access-token.created",
  "access-token.revoked",
  "robot.created",
  "robot.deleted",
  "name.released",
  "image.pushed",
  "image.pulled",
  "image.deleted",
  "repository.synced",
  "webhook.created",
  "webhook.updated",
  "webhook.deleted",
  "identity.linked",
  "identity.unlinked",
  "identity.revoked",
];

export type AuditOutcome = "ok" | "denied" | "failed";

export interface AuditEvent {
  id: number;
  atUnixMs: number;
  kind: AuditKind;
  /** The account name; "" for anonymous clients, "local-admin" for the offline CLI. */
  actor: string;
  ip: string;
  repository: string | null;
  outcome: AuditOutcome;
  details: Record<string, unknown>;
}

export type NewAuditEvent = Omit<AuditEvent, "id" | "atUnixMs"> & { atUnixMs?: number };

export interface AuditOptions {
  enabled: boolean;
  /** Events older than this are pruned; 0 keeps them for ever (then only maxEvents bounds). */
  retentionDays: number;
  /** The newest this many are kept; 0: no bound by count. */
  maxEvents: number;
}

export interface AuditFilter {
  sinceUnixMs?: number;
  untilUnixMs?: number;
  actor?: string;
  repository?: string;
  kind?: AuditKind;
  /** 1..MAX_AUDIT_QUERY_LIMIT. */
  limit: number;
  /** Keyset pagination, oldest first: events with a larger id (what `regauth audit --follow` polls with). */
  afterId?: number;
  /** Newest first: events with a smaller id than this (the next page of a newest-first listing). */
  beforeId?: number;
  /** Order by id descending (newest first); default ascending. */
  newestFirst?: boolean;
}

export const MAX_AUDIT_QUERY_LIMIT = 1000;
/** At most this many audit events wait for the writer; the writer's own bound is 10,000. */
export const AUDIT_MAX_PENDING = 5000;
/** Hand a batch to the writer as soon as this many wait, instead of waiting out its interval. */
const EARLY_FLUSH_PENDING = 500;
/** Identical coalesced events (token decisions) within this window are one row with a count. */
export const COALESCE_WINDOW_MS = 1000;
/** Distinct coalesced events held at once; reaching it releases them all early. */
const MAX_COALESCED_EVENTS = 2000;
/** Background pruning: at start and then this often (issue 10: pruned in the background). */
export const AUDIT_PRUNE_INTERVAL_MS = 10 * 60 * 1000;
/** Longest string kept in details; longer ones (a 64-scope request) are cut. */
const MAX_DETAIL_STRING_LENGTH = 1024;

const INSERT_SQL = `INSERT INTO audit_events (at_unix_ms, kind, actor, ip, repository, outcome, details)
  VALUES ($at, $kind, $actor, $ip, $repository, $outcome, $details)`;
const PRUNE_AGE_SQL = "DELETE FROM audit_events WHERE at_unix_ms < $cutoff";
// The id of the newest event beyond the bound; NULL (nothing deleted) when fewer are stored.
const PRUNE_COUNT_SQL = `DELETE FROM audit_events
  WHERE id <= (SELECT id FROM audit_events ORDER BY id DESC LIMIT 1 OFFSET $max)`;
// Whether a prune would delete anything, for startPruning: each subquery is one MIN or MAX,
// which SQLite answers from an index's end (O(log n)), never a scan. max - min + 1 bounds the
// count from above (ids only ever have gaps), so "over the bound" may be a false alarm, never a miss.
const PRUNE_DUE_SQL = `SELECT (SELECT MIN(at_unix_ms) FROM audit_events) AS oldest,
  (SELECT MAX(id) FROM audit_events) - (SELECT MIN(id) FROM audit_events) + 1 AS span`;

const SECRET_KEY = /pass(word)?|secret|hash|credential|authorization|^token$|refresh_token/i;
const SECRET_VALUE =
  /regauth_pat_[0-9A-Za-z]+|rt1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+|\$(argon2|2[aby])\$[^\s"]*/g;

/**
 * A copy of `details` without secrets: keys that name a secret (password, secret, hash, ...) are
 * dropped, and token secrets, refresh tokens and password hashes inside strings are replaced.
 */
export function redactSecrets(details: Record<string, unknown>): Record<string, unknown> {
  const clean = (value: unknown, depth: number): unknown => {
    if (typeof value === "string") {
      const cut =
        value.length > MAX_DETAIL_STRING_LENGTH ? `${value.slice(0, MAX_DETAIL_STRING_LENGTH)}…` : value;
      return cut.replace(SECRET_VALUE, "[redacted]");
    }
    if (value === null || typeof value !== "object") return value;
    if (depth > 4) return "[nested]";
    if (Array.isArray(value)) return value.slice(0, 100).map((v) => clean(v, depth + 1));
    const out: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value)) {
      if (SECRET_KEY.test(key)) continue;
      out[key] = clean(inner, depth + 1);
    }
    return out;
  };
  return clean(details, 0) as Record<string, unknown>;
}

interface AuditRow {
  id: number;
  at_unix_ms: number;
  kind: AuditKind;
  actor: string;
  ip: string;
  repository: string | null;
  outcome: AuditOutcome;
  details: string;
}

function toEvent(row: AuditRow): AuditEvent {
  let details: Record<string, unknown> = {};
  try {
    details = JSON.parse(row.details) as Record<string, unknown>;
  } catch {
    details = {};
  }
  return {
    id: row.id,
    atUnixMs: row.at_unix_ms,
    kind: row.kind,
    actor: row.actor,
    ip: row.ip,
    repository: row.repository,
    outcome: row.outcome,
    details,
  };
}

export class AuditLog {
  readonly #db: Database;
  readonly #writer: BackgroundWriter | null;
  readonly #options: AuditOptions;
  #sequence = 0;
  readonly #coalesced = new Map<string, { event: NewAuditEvent; count: number }>();
  #coalesceTimer: ReturnType<typeof setTimeout> | null = null;
  #pruneTimer: ReturnType<typeof setInterval> | null = null;
  #lastDropReportMs = 0;
  /** Counters for the log and for tests. */
  readonly stats = { queued: 0, dropped: 0 };

  /** `writer` null: no background recording (record() then writes synchronously, for the CLI). */
  constructor(db: Database, writer: BackgroundWriter | null, options: AuditOptions) {
    this.#db = db;
    this.#writer = writer;
    this.#options = options;
  }

  get enabled(): boolean {
    return this.#options.enabled;
  }

  /** Queues an event for the background writer. Never blocks, never throws; drops (and counts) when full. */
  record(event: NewAuditEvent): void {
    if (!this.#options.enabled) return;
    try {
      if (!this.#writer) return this.recordNow(event);
      this.#enqueue(event);
    } catch (error) {
      this.stats.dropped++;
      log.warn("audit event not recorded", { kind: event.kind, error });
    }
  }

  /**
   * Records the event `makeEvent` builds, unless one with the same `key` is waiting: then only its
   * count goes up. Waiting events are queued (with `details.count` when above 1) after at most
   * COALESCE_WINDOW_MS, and by flush(). Never blocks, never throws.
   */
  recordCoalesced(key: string, makeEvent: () => NewAuditEvent): void {
    if (!this.#options.enabled) return;
    if (!this.#writer) return this.record(makeEvent());
    const waiting = this.#coalesced.get(key);
    if (waiting) {
      waiting.count++;
      return;
    }
    if (this.#coalesced.size >= MAX_COALESCED_EVENTS) this.#releaseCoalesced();
    const event = makeEvent();
    this.#coalesced.set(key, { event: { ...event, atUnixMs: event.atUnixMs ?? Date.now() }, count: 1 });
    if (!this.#coalesceTimer) {
      this.#coalesceTimer = setTimeout(() => this.#releaseCoalesced(), COALESCE_WINDOW_MS);
      this.#coalesceTimer.unref?.();
    }
  }

  #releaseCoalesced(): void {
    if (this.#coalesceTimer) clearTimeout(this.#coalesceTimer);
    this.#coalesceTimer = null;
    const waiting = [...this.#coalesced.values()];
    this.#coalesced.clear();
    for (const { event, count } of waiting)
      this.record(count > 1 ? { ...event, details: { ...event.details, count } } : event);
  }

  #enqueue(event: NewAuditEvent): void {
    if (this.#writer) {
      // The writer's queue holds other writes too (last-login times): audit takes at most half.
      if (this.#writer.pending >= AUDIT_MAX_PENDING) {
        this.stats.dropped++;
        this.#reportDrops();
        return;
      }
      const queued = this.#writer.enqueue({
        key: `audit:${++this.#sequence}`,
        sql: INSERT_SQL,
        params: this.#params(event),
      });
      if (!queued) {
        this.stats.dropped++;
        return;
      }
      this.stats.queued++;
      if (this.#writer.pending >= EARLY_FLUSH_PENDING) void this.#writer.flush();
    }
  }

  /** Synchronous insert, for management changes made by the offline CLI. Throws on failure. */
  recordNow(event: NewAuditEvent): void {
    if (!this.#options.enabled) return;
    this.#db.query(INSERT_SQL).run(this.#params(event));
  }

  /** Waits until queued events are written (tests, shutdown). */
  async flush(): Promise<void> {
    this.#releaseCoalesced();
    if (!this.#writer) return;
    for (let i = 0; i < 100 && this.#writer.pending > 0; i++) await this.#writer.flush();
  }

  query(filter: AuditFilter): AuditEvent[] {
    const limit = Math.trunc(filter.limit);
    if (!(limit >= 1 && limit <= MAX_AUDIT_QUERY_LIMIT))
      throw new RangeError(`limit must be 1..${MAX_AUDIT_QUERY_LIMIT}`);
    const where: string[] = [];
    const params: Record<string, string | number> = { limit };
    const add = (clause: string, name: string, value: string | number | undefined) => {
      if (value === undefined) return;
      where.push(clause);
      params[name] = value;
    };
    add("at_unix_ms >= $since", "since", filter.sinceUnixMs);
    add("at_unix_ms < $until", "until", filter.untilUnixMs);
    add("actor = $actor", "actor", filter.actor);
    add("repository = $repository", "repository", filter.repository);
    add("kind = $kind", "kind", filter.kind);
    add("id > $afterId", "afterId", filter.afterId);
    add("id < $beforeId", "beforeId", filter.beforeId);
    const order = filter.newestFirst ? "DESC" : "ASC";
    const sql = `SELECT * FROM audit_events ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id ${order} LIMIT $limit`;
    return this.#db.query<AuditRow, Record<string, string | number>>(sql).all(params).map(toEvent);
  }

  /** Deletes what retention no longer keeps, synchronously; returns how many events went. */
  prune(nowUnixMs: number): number {
    let deleted = 0;
    this.#db
      .transaction(() => {
        if (this.#options.retentionDays > 0)
          deleted += this.#db.query(PRUNE_AGE_SQL).run(this.#pruneParams(nowUnixMs).age).changes;
        if (this.#options.maxEvents > 0)
          deleted += this.#db.query(PRUNE_COUNT_SQL).run(this.#pruneParams(nowUnixMs).count).changes;
      })
      .immediate();
    return deleted;
  }

  /**
   * Prunes now and every AUDIT_PRUNE_INTERVAL_MS, on the writer's thread (no request waits for it),
   * when something is due: a DELETE of nothing would start the writer's worker, a JavaScript VM
   * of ~5 MiB, within a second of an idle serve's start (issue 12 item 6). Whether anything is
   * due is two index lookups on this thread; the DELETE, which may take long, stays on the writer
   * (issue 9 item 2: no SQLite write on the request thread).
   */
  startPruning(now: () => number = Date.now): void {
    if (!this.#writer || this.#pruneTimer) return;
    const writer = this.#writer;
    const schedule = () => {
      const params = this.#pruneParams(now());
      if (!this.#pruneDue(params.age.cutoff)) return;
      if (this.#options.retentionDays > 0)
        writer.enqueue({ key: "audit-prune:age", sql: PRUNE_AGE_SQL, params: params.age });
      if (this.#options.maxEvents > 0)
        writer.enqueue({ key: "audit-prune:count", sql: PRUNE_COUNT_SQL, params: params.count });
    };
    schedule();
    this.#pruneTimer = setInterval(schedule, AUDIT_PRUNE_INTERVAL_MS);
    this.#pruneTimer.unref?.();
  }

  #pruneDue(cutoffUnixMs: number): boolean {
    try {
      const row = this.#db.query<{ oldest: number | null; span: number | null }, []>(PRUNE_DUE_SQL).get();
      if (!row || row.oldest === null) return false; // no events
      return (
        (this.#options.retentionDays > 0 && row.oldest < cutoffUnixMs) ||
        (this.#options.maxEvents > 0 && (row.span ?? 0) > this.#options.maxEvents)
      );
    } catch {
      return true; // unreadable now: let the writer try, and report, as it did before
    }
  }

  stopPruning(): void {
    if (this.#pruneTimer) clearInterval(this.#pruneTimer);
    this.#pruneTimer = null;
  }

  #pruneParams(nowUnixMs: number) {
    return {
      age: { cutoff: nowUnixMs - this.#options.retentionDays * 86_400_000 },
      count: { max: this.#options.maxEvents },
    };
  }

  #params(event: NewAuditEvent): Record<string, string | number | null> {
    return {
      at: event.atUnixMs ?? Date.now(),
      kind: event.kind,
      actor: event.actor.slice(0, 256),
      ip: event.ip.slice(0, 64),
      repository: event.repository === null ? null : event.repository.slice(0, 256),
      outcome: event.outcome,
      details: JSON.stringify(redactSecrets(event.details)),
    };
  }

  #reportDrops(): void {
    const now = Date.now();
    if (now - this.#lastDropReportMs < 60_000) return;
    this.#lastDropReportMs = now;
    log.warn("audit queue full; events dropped", { dropped_total: this.stats.dropped });
  }
}
