/**
 * The crawl's reconcile (issue 11 item 2: the registry keeps undelivered notifications in memory
 * only, so the index must heal): what the registry holds now, compared with the index, becomes a
 * list of operations (`diffIndex`, pure), applied through the index's own writes in transactions
 * of bounded size (`applyOperations`), each handing its changes to the webhooks' sink.
 *
 * Notifications keep arriving while a crawl runs. Whatever the index changed since the crawl
 * began (the index at its start, compared with the index now) is newer than what the crawl saw,
 * so the diff leaves it alone: a tag pushed or deleted while the crawl ran is neither deleted
 * nor revived by it (the next crawl settles it).
 */
import type { Database } from "bun:sqlite";
import type { IndexChange, IndexChangeSink } from "./changes.ts";
import {
  findRepository,
  findTag,
  type IndexedRepository,
  listAllTags,
  recordManifestPush,
  recordRepositoryDelete,
  recordTagDelete,
  type TagRow,
} from "./index-store.ts";

/** One tag as the registry reports it (tags/list, then the manifest's HEAD). */
export interface CrawledTag {
  tag: string;
  digest: string;
  mediaType: string;
  sizeBytes: number;
}

export interface CrawledRepository {
  name: string;
  tags: CrawledTag[];
  /**
   * Some tags could not be read (a manifest that failed, a page that did not come): the tags
   * found are indexed, but nothing of this repository is deleted on this crawl's word.
   */
  isIncomplete: boolean;
}

export interface CrawlResult {
  /** When the crawl began. */
  startedAtUnixMs: number;
  /** Every repository of the registry's catalog (the catalog itself was read whole). */
  repositories: CrawledRepository[];
}

/**
 * `expected`: the state the diff saw (tagState, or repositoryState) of what the operation
 * changes. It is applied only if that is still the state inside its transaction: `regauth repo
 * sync` offline runs in another process than serve, whose notifications may commit between the
 * diff and any batch, and a tag pushed then must not be deleted on the crawl's older word.
 */
export type SyncOperation = { expected: string } & (
  | ({ kind: "push"; repository: string; isMove: boolean } & CrawledTag)
  | { kind: "delete-tag"; repository: string; tag: string }
  | { kind: "delete-repository"; repository: string }
);

type Snapshot = ReadonlyMap<string, IndexedRepository>;

/** A tag's state as far as the reconcile cares. */
function tagState(tag: TagRow | undefined): string {
  return tag === undefined ? "" : `${tag.digest} ${tag.lastPushAt} ${tag.deletedAt}`;
}

/** A repository's state and its tags', for a delete-repository's `expected`. */
function repositoryState(indexed: IndexedRepository | undefined): string {
  if (indexed === undefined) return "";
  const { repository, tags } = indexed;
  return [
    `${repository.lastPushAt} ${repository.deletedAt}`,
    ...tags.map((t) => `${t.tag} ${tagState(t)}`),
  ].join("\n");
}

/**
 * The operations that make the index say what the crawl saw: tags new to the index (or deleted
 * in it) and moved tags are pushes, live tags the registry no longer has are tag deletions, live
 * repositories missing from the catalog are repository deletions. Nothing changed: no operations.
 *
 * `atStart` is the index as it was when the crawl began: what differs from it in `index` was
 * changed while the crawl ran (a notification), is newer than the crawl, and is left alone.
 */
export function diffIndex(index: Snapshot, crawl: CrawlResult, atStart: Snapshot): SyncOperation[] {
  const operations: SyncOperation[] = [];
  const startTags = new Map<string, Map<string, TagRow>>();
  const tagsAtStart = (repository: string) => {
    let tags = startTags.get(repository);
    if (!tags) {
      tags = new Map((atStart.get(repository)?.tags ?? []).map((tag) => [tag.tag, tag]));
      startTags.set(repository, tags);
    }
    return tags;
  };
  const isTouched = (repository: string, tag: TagRow) =>
    tagState(tag) !== tagState(tagsAtStart(repository).get(tag.tag));
  const crawled = new Set<string>();
  for (const repository of [...crawl.repositories].sort((a, b) => compare(a.name, b.name))) {
    crawled.add(repository.name);
    const indexed = index.get(repository.name);
    const known = new Map((indexed?.tags ?? []).map((tag) => [tag.tag, tag]));
    const seen = new Set<string>();
    for (const tag of [...repository.tags].sort((a, b) => compare(a.tag, b.tag))) {
      if (seen.has(tag.tag)) continue;
      seen.add(tag.tag);
      const before = known.get(tag.tag);
      const isLive = before !== undefined && before.deletedAt === null;
      if (isLive && before.digest === tag.digest) continue;
      if (before !== undefined && isTouched(repository.name, before)) continue;
      operations.push({
        kind: "push",
        repository: repository.name,
        isMove: isLive,
        ...tag,
        expected: tagState(before),
      });
    }
    if (repository.isIncomplete) continue;
    for (const tag of indexed?.tags ?? []) {
      if (tag.deletedAt !== null || seen.has(tag.tag) || isTouched(repository.name, tag)) continue;
      operations.push({
        kind: "delete-tag",
        repository: repository.name,
        tag: tag.tag,
        expected: tagState(tag),
      });
    }
  }
  for (const [name, indexed] of index) {
    if (crawled.has(name) || indexed.repository.deletedAt !== null) continue;
    const start = atStart.get(name)?.repository;
    if (start === undefined || start.deletedAt !== null || start.lastPushAt !== indexed.repository.lastPushAt)
      continue;
    if (indexed.tags.some((tag) => isTouched(name, tag))) continue;
    operations.push({ kind: "delete-repository", repository: name, expected: repositoryState(indexed) });
  }
  return operations;
}

/** Code-unit order, as SQLite's BINARY collation sorts the names. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export interface SyncCounts {
  /** Tags new to the index (or back after a deletion). */
  added: number;
  /** Tags that point at another digest now. */
  moved: number;
  deletedTags: number;
  deletedRepositories: number;
  /** IndexChanges handed to the sink (repository.created, tag.pushed, tag.deleted). */
  changes: number;
}

export interface ApplyOptions {
  /** Stamps every change of this run: `sync-<runId>:repository[:tag]`. */
  runId: string;
  nowUnixMs: number;
  /** The webhooks (src/webhooks/), called inside each transaction with its changes. */
  sink?: IndexChangeSink;
  /** Operations per transaction: long enough to be cheap, short enough not to hold the lock long. */
  batchSize?: number;
}

export const DEFAULT_APPLY_BATCH_SIZE = 200;

/** What `op` changes, as the index holds it now (inside the operation's transaction). */
function currentState(db: Database, op: SyncOperation): string {
  if (op.kind === "delete-repository") {
    const repository = findRepository(db, op.repository);
    return repository === null ? "" : repositoryState({ repository, tags: listAllTags(db, op.repository) });
  }
  return tagState(findTag(db, op.repository, op.tag) ?? undefined);
}

/** Applies `operations` through the index's writes, `batchSize` per transaction. No operations: no writes. */
export function applyOperations(
  db: Database,
  operations: readonly SyncOperation[],
  options: ApplyOptions,
): SyncCounts {
  const counts: SyncCounts = { added: 0, moved: 0, deletedTags: 0, deletedRepositories: 0, changes: 0 };
  const batchSize = Math.max(1, options.batchSize ?? DEFAULT_APPLY_BATCH_SIZE);
  const deletion = (repository: string, eventId: string) => ({
    repository,
    atUnixMs: options.nowUnixMs,
    eventId,
    source: "sync" as const,
    actor: null,
    actorAddress: null,
  });
  for (let start = 0; start < operations.length; start += batchSize) {
    const batch = operations.slice(start, start + batchSize);
    // IMMEDIATE: the write lock is taken (and waited for) up front. A deferred transaction that
    // reads first cannot wait to upgrade when another process (serve's writer) committed since.
    db.transaction(() => {
      const changes: IndexChange[] = [];
      for (const op of batch) {
        if (currentState(db, op) !== op.expected) continue; // changed since the diff: newer than the crawl
        const eventId =
          op.kind === "delete-repository"
            ? `sync-${options.runId}:${op.repository}`
            : `sync-${options.runId}:${op.repository}:${op.tag}`;
        switch (op.kind) {
          case "push": {
            // Found by a crawl: who pushed it and from where is not known (null), and the push
            // time is the crawl's.
            const made = recordManifestPush(db, {
              repository: op.repository,
              tag: op.tag,
              digest: op.digest,
              mediaType: op.mediaType,
              sizeBytes: op.sizeBytes,
              pusher: null,
              pusherAddress: null,
              atUnixMs: options.nowUnixMs,
              eventId,
              source: "sync",
            });
            if (made.some((change) => change.type === "tag.pushed")) {
              if (op.isMove) counts.moved++;
              else counts.added++;
            }
            changes.push(...made);
            break;
          }
          case "delete-tag": {
            const made = recordTagDelete(db, { ...deletion(op.repository, eventId), tag: op.tag });
            counts.deletedTags += made.length;
            changes.push(...made);
            break;
          }
          case "delete-repository": {
            const made = recordRepositoryDelete(db, deletion(op.repository, eventId));
            counts.deletedTags += made.length;
            counts.deletedRepositories++;
            changes.push(...made);
            break;
          }
        }
      }
      counts.changes += changes.length;
      options.sink?.(db, changes);
    }).immediate();
  }
  return counts;
}
