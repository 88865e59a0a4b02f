/**
 * One sync run: crawl the registry (src/registry-index/crawler.ts), reconcile the index with what
 * it holds (src/registry-index/reconcile.ts), record one `repository.synced` audit event with the
 * counts. `IndexSync` makes sure two runs never overlap in one process (a run asked for while one
 * is going joins it), and `startPeriodicSync` runs it every notifications.sync_interval_seconds
 * in `regauth serve` (issue 11 item 2: "on demand and at a configurable interval").
 */
import type { Database } from "bun:sqlite";
import { randomUUID } from "node:crypto";
import type { AuditLog, NewAuditEvent } from "../audit/audit-log.ts";
import type { LoadedConfig } from "../config/load.ts";
import { log } from "../log.ts";
import type { SigningKey } from "../token/keys.ts";
import { signRegistryToken } from "../token/sign.ts";
import { INDEX_CRAWLER_SUBJECT, type IndexChangeSink } from "./changes.ts";
import { CrawlFailed, crawlRegistry, type CrawlerOptions } from "./crawler.ts";
import { indexSnapshot } from "./index-store.ts";
import { applyOperations, diffIndex, type SyncCounts } from "./reconcile.ts";

/** The crawler's tokens live this long: enough for a request, useless soon after if they leak. */
const CRAWL_TOKEN_TTL_SECONDS = 120;

export interface SyncSettings {
  registryUrl: string;
  caFile?: string;
  /** token.issuer, and the registry's service (token.services[0] ?? "registry", as registry-config prints). */
  issuer: string;
  service: string;
  /** The key that signs now (the key set's current one: a rotation is followed). */
  signingKey: () => SigningKey;
  /** The webhooks' sink; called in each reconcile transaction. */
  sink?: IndexChangeSink;
  audit?: AuditLog;
  /** Crawler limits, for tests. */
  crawler?: Partial<Pick<CrawlerOptions, "timeoutMs" | "maxResponseBytes" | "concurrency" | "pageSize">>;
}

export interface SyncReport extends SyncCounts {
  repositories: number;
  tags: number;
  /** Repositories the crawl could not read whole: nothing of them was deleted. */
  incompleteRepositories: string[];
  durationMs: number;
}

/** The sync settings of a config, or null when there is nothing to crawl (no registry_url, or the feature off). */
export function syncSettingsFrom(
  loaded: LoadedConfig,
  signingKey: () => SigningKey,
  extra: Pick<SyncSettings, "sink" | "audit"> = {},
): SyncSettings | null {
  const { notifications, token } = loaded.config;
  if (!notifications.enabled || notifications.registry_url === undefined) return null;
  return {
    registryUrl: notifications.registry_url,
    ...(notifications.registry_ca_file !== undefined ? { caFile: notifications.registry_ca_file } : {}),
    issuer: token.issuer,
    service: token.services?.[0] ?? "registry",
    signingKey,
    ...extra,
  };
}

/** Who asked for a run, for the audit event. */
export interface SyncTrigger {
  actor: string;
  ip: string;
}

/** Crawls and reconciles once. Throws CrawlFailed when the registry cannot be read (the index is then untouched). */
export async function syncIndex(
  db: Database,
  settings: SyncSettings,
  trigger: SyncTrigger,
  signal?: AbortSignal,
): Promise<SyncReport> {
  const startedMs = performance.now();
  try {
    // The index as the crawl begins: what changes in it meanwhile is newer than the crawl.
    const atStart = indexSnapshot(db);
    const crawl = await crawlRegistry({
      registryUrl: settings.registryUrl,
      ...(settings.caFile !== undefined ? { caFile: settings.caFile } : {}),
      ...settings.crawler,
      ...(signal ? { signal } : {}),
      signToken: (access) => {
        const issuedAtSeconds = Math.floor(Date.now() / 1000);
        return signRegistryToken(settings.signingKey(), {
          issuer: settings.issuer,
          subject: INDEX_CRAWLER_SUBJECT,
          audience: settings.service,
          access,
          issuedAtSeconds,
          ttlSeconds: CRAWL_TOKEN_TTL_SECONDS,
        });
      },
    });
    if (signal?.aborted) throw new CrawlFailed("the crawl was stopped");
    // Read after the crawl, in the same synchronous stretch as the writes: nothing of this
    // process changes the index in between (bun:sqlite is synchronous).
    const operations = diffIndex(indexSnapshot(db), crawl, atStart);
    const counts = applyOperations(db, operations, {
      runId: randomUUID().slice(0, 8),
      nowUnixMs: Date.now(),
      ...(settings.sink ? { sink: settings.sink } : {}),
    });
    const report: SyncReport = {
      ...counts,
      repositories: crawl.repositories.length,
      tags: crawl.repositories.reduce((sum, r) => sum + r.tags.length, 0),
      incompleteRepositories: crawl.repositories.filter((r) => r.isIncomplete).map((r) => r.name),
      durationMs: Math.round(performance.now() - startedMs),
    };
    recordSyncEvent(settings.audit, {
      kind: "repository.synced",
      actor: trigger.actor,
      ip: trigger.ip,
      repository: null,
      outcome: "ok",
      details: {
        registry_url: settings.registryUrl,
        repositories: report.repositories,
        tags: report.tags,
        added: report.added,
        moved: report.moved,
        deleted_tags: report.deletedTags,
        deleted_repositories: report.deletedRepositories,
        incomplete_repositories: report.incompleteRepositories.slice(0, 20),
        duration_ms: report.durationMs,
      },
    });
    return report;
  } catch (error) {
    if (error instanceof CrawlFailed)
      recordSyncEvent(settings.audit, {
        kind: "repository.synced",
        actor: trigger.actor,
        ip: trigger.ip,
        repository: null,
        outcome: "failed",
        details: { registry_url: settings.registryUrl, error: error.message },
      });
    throw error;
  }
}

/**
 * Written at once, like a management change (it is one row per run); when the database is busy
 * past serve's short lock wait, queued instead: the index is already reconciled, and a busy
 * audit table must not turn a finished sync into a failure.
 */
function recordSyncEvent(audit: AuditLog | undefined, event: NewAuditEvent): void {
  if (!audit) return;
  try {
    audit.recordNow(event);
  } catch {
    audit.record(event);
  }
}

/** At most one run at a time per process: a run asked for while one is going gets that one's report. */
export class IndexSync {
  #running: Promise<SyncReport> | null = null;
  readonly #stop = new AbortController();

  constructor(
    private readonly db: Database,
    readonly settings: SyncSettings,
  ) {}

  get isRunning(): boolean {
    return this.#running !== null;
  }

  run(trigger: SyncTrigger): Promise<SyncReport> {
    if (this.#stop.signal.aborted) return Promise.reject(new CrawlFailed("the server is shutting down"));
    this.#running ??= syncIndex(this.db, this.settings, trigger, this.#stop.signal).finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  /** Aborts a run in flight and waits for it to end (before the database closes). */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#running?.catch(() => {});
  }
}

/** One line for the log and the CLI: what changed and how long it took. */
export function describeSync(report: SyncReport): string {
  const incomplete =
    report.incompleteRepositories.length > 0
      ? `; ${report.incompleteRepositories.length} repositories could not be read whole (${report.incompleteRepositories.slice(0, 5).join(", ")})`
      : "";
  return (
    `synced ${report.repositories} repositories, ${report.tags} tags in ${(report.durationMs / 1000).toFixed(1)} s: ` +
    `${report.added} added, ${report.moved} moved, ${report.deletedTags} tags and ${report.deletedRepositories} repositories deleted${incomplete}`
  );
}

/**
 * Runs `sync` every `intervalSeconds` (first run after `firstDelayMs`), never two at once (a
 * run that is still going when the next is due is not doubled). A failure is logged and retried
 * at the next interval. Returns stop, which also aborts a run in flight.
 */
export function startPeriodicSync(
  sync: IndexSync,
  intervalSeconds: number,
  firstDelayMs = 5_000,
): () => Promise<void> {
  let timer: ReturnType<typeof setTimeout> | null = null;
  let stopped = false;
  const tick = async () => {
    timer = null;
    if (sync.isRunning) return schedule(intervalSeconds * 1000);
    try {
      const report = await sync.run({ actor: "regauth", ip: "" });
      log.info("registry sync", {
        repositories: report.repositories,
        tags: report.tags,
        added: report.added,
        moved: report.moved,
        deleted_tags: report.deletedTags,
        deleted_repositories: report.deletedRepositories,
        incomplete: report.incompleteRepositories.length,
        duration_ms: report.durationMs,
      });
    } catch (error) {
      if (!stopped)
        log.warn("registry sync failed; retrying at the next interval", {
          error: error instanceof Error ? error.message : String(error),
          registry_url: sync.settings.registryUrl,
          next_in_seconds: intervalSeconds,
        });
    }
    schedule(intervalSeconds * 1000);
  };
  const schedule = (delayMs: number) => {
    if (stopped) return;
    timer = setTimeout(() => void tick(), delayMs);
    timer.unref?.();
  };
  schedule(firstDelayMs);
  return async () => {
    stopped = true;
    if (timer !== null) clearTimeout(timer);
    await sync.stop();
  };
}
