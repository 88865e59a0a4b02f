/**
 * The image index's reads and writes (migrations/0006; issue 11 item 2), shared by the
 * notification receiver and the crawler that heals the index. Every write returns the
 * IndexChanges it made (src/registry-index/changes.ts) so that the caller can hand them to the
 * webhooks inside the same transaction. Callers own the transaction: these functions never open one.
 *
 * A deleted tag or repository keeps its row with deleted_at set (the index remembers deletions);
 * a later push of it clears deleted_at, and a revived repository counts as created again.
 */
import type { Database } from "bun:sqlite";
import type { IndexChange } from "./changes.ts";

export interface ManifestPush {
  repository: string;
  /** Absent for a push by digest (an index's child manifest, `crane push repo@sha256:…`). */
  tag?: string;
  digest: string;
  mediaType: string;
  sizeBytes: number;
  pusher: string | null;
  pusherAddress: string | null;
  atUnixMs: number;
  eventId: string;
  source: IndexChange["source"];
}

export interface Deletion {
  repository: string;
  atUnixMs: number;
  eventId: string;
  source: IndexChange["source"];
  /** Who deleted (the event's actor); null when unknown. */
  actor: string | null;
  actorAddress: string | null;
}

export interface RepositoryRow {
  id: number;
  name: string;
  firstPushAt: number;
  lastPushAt: number;
  deletedAt: number | null;
}

export interface TagRow {
  repository: string;
  tag: string;
  digest: string;
  mediaType: string;
  sizeBytes: number;
  pushedBy: string | null;
  pushedFrom: string | null;
  firstPushAt: number;
  lastPushAt: number;
  pullCount: number;
  lastPullAt: number | null;
  deletedAt: number | null;
}

interface RawRepository {
  id: number;
  name: string;
  first_push_at: number;
  last_push_at: number;
  deleted_at: number | null;
}

interface RawTag {
  repository: string;
  tag: string;
  digest: string;
  media_type: string;
  size_bytes: number;
  pushed_by: string | null;
  pushed_from: string | null;
  first_push_at: number;
  last_push_at: number;
  pull_count: number;
  last_pull_at: number | null;
  deleted_at: number | null;
}

const toSeconds = (unixMs: number) => Math.floor(unixMs / 1000);

function toRepository(row: RawRepository): RepositoryRow {
  return {
    id: row.id,
    name: row.name,
    firstPushAt: row.first_push_at,
    lastPushAt: row.last_push_at,
    deletedAt: row.deleted_at,
  };
}

function toTag(row: RawTag): TagRow {
  return {
    repository: row.repository,
    tag: row.tag,
    digest: row.digest,
    mediaType: row.media_type,
    sizeBytes: row.size_bytes,
    pushedBy: row.pushed_by,
    pushedFrom: row.pushed_from,
    firstPushAt: row.first_push_at,
    lastPushAt: row.last_push_at,
    pullCount: row.pull_count,
    lastPullAt: row.last_pull_at,
    deletedAt: row.deleted_at,
  };
}

const TAG_COLUMNS = `r.name AS repository, t.tag, t.digest, t.media_type, t.size_bytes, t.pushed_by,
  t.pushed_from, t.first_push_at, t.last_push_at, t.pull_count, t.last_pull_at, t.deleted_at`;

export function findRepository(db: Database, name: string): RepositoryRow | null {
  const row = db
    .query<RawRepository, [string]>(
      "SELECT id, name, first_push_at, last_push_at, deleted_at FROM repositories WHERE name = ?",
    )
    .get(name);
  return row ? toRepository(row) : null;
}

/**
 * Live repositories in name order after `afterName` (keyset pagination), optionally only those
 * whose name starts with `namePrefix` (an index range scan, not a table scan).
 */
export function listRepositories(
  db: Database,
  options: { afterName?: string; namePrefix?: string; limit: number },
): RepositoryRow[] {
  const after = options.afterName ?? "";
  const prefix = options.namePrefix ?? "";
  // The prefix range [prefix, prefix + U+10FFFF) uses the UNIQUE index on name; LIKE would not
  // (and would need its wildcards escaped).
  const rows = db
    .query<RawRepository, [string, string, string, number]>(
      `SELECT id, name, first_push_at, last_push_at, deleted_at FROM repositories
       WHERE deleted_at IS NULL AND name > ? AND name >= ? AND name < ?
       ORDER BY name LIMIT ?`,
    )
    .all(after, prefix, `${prefix}\u{10FFFF}`, options.limit);
  return rows.map(toRepository);
}

/** The live tags of a repository, in tag order. */
export function listTags(db: Database, repository: string): TagRow[] {
  return db
    .query<RawTag, [string]>(
      `SELECT ${TAG_COLUMNS} FROM image_tags t JOIN repositories r ON r.id = t.repository_id
       WHERE r.name = ? AND t.deleted_at IS NULL ORDER BY t.tag`,
    )
    .all(repository)
    .map(toTag);
}

/** Every tag of a repository, deleted ones included, in tag order (as indexSnapshot has them). */
export function listAllTags(db: Database, repository: string): TagRow[] {
  return db
    .query<RawTag, [string]>(
      `SELECT ${TAG_COLUMNS} FROM image_tags t JOIN repositories r ON r.id = t.repository_id
       WHERE r.name = ? ORDER BY t.tag`,
    )
    .all(repository)
    .map(toTag);
}

/** One tag, live or deleted (deletedAt tells). */
export function findTag(db: Database, repository: string, tag: string): TagRow | null {
  const row = db
    .query<RawTag, [string, string]>(
      `SELECT ${TAG_COLUMNS} FROM image_tags t JOIN repositories r ON r.id = t.repository_id
       WHERE r.name = ? AND t.tag = ?`,
    )
    .get(repository, tag);
  return row ? toTag(row) : null;
}

/**
 * Records that `eventId` is being applied; false when it was applied before (a retry of a
 * delivery the registry thought failed: protocol_and_peers.md §C.1, Portus dedupes the same way).
 */
export function markEventSeen(db: Database, eventId: string, nowUnixMs: number): boolean {
  const result = db
    .query("INSERT INTO registry_events_seen (event_id, received_at) VALUES (?, ?) ON CONFLICT DO NOTHING")
    .run(eventId, toSeconds(nowUnixMs));
  return result.changes === 1;
}

/** The prune as one statement with a named parameter (`$cutoff`, unix seconds), for the background writer. */
export const PRUNE_SEEN_EVENTS_SQL = `DELETE FROM registry_events_seen WHERE received_at < $cutoff
  OR rowid <= (SELECT MAX(rowid) FROM registry_events_seen) - $maxRows`;

/**
 * 1 when PRUNE_SEEN_EVENTS_SQL would delete something, else 0: three MIN/MAX lookups at an
 * index's end, never a scan, so that it may run on the request thread (receiver startPruning).
 */
export const SEEN_EVENTS_PRUNE_DUE_SQL = `SELECT (SELECT MIN(received_at) FROM registry_events_seen) < $cutoff
  OR (SELECT MIN(rowid) FROM registry_events_seen) <= (SELECT MAX(rowid) FROM registry_events_seen) - $maxRows AS due`;

/**
 * Event ids kept at most, whatever their age: every pull is an event, and anyone who may pull (a
 * public repository: anyone) decides how many; a week of a flood of them must not fill the disk.
 * A million ids is about 100 MB; the registry's retries are of its last few events.
 */
export const MAX_SEEN_EVENTS = 1_000_000;

/**
 * Forgets event ids older than `cutoffUnixMs` (the registry does not retry for that long) and
 * all but the newest `maxRows`.
 */
export function pruneSeenEvents(db: Database, cutoffUnixMs: number, maxRows = MAX_SEEN_EVENTS): number {
  return db.query(PRUNE_SEEN_EVENTS_SQL).run({ cutoff: toSeconds(cutoffUnixMs), maxRows }).changes;
}

/** Creates or revives the repository; the change list gets repository.created when it did. */
function ensureRepository(db: Database, push: ManifestPush, changes: IndexChange[]): number {
  const at = toSeconds(push.atUnixMs);
  const existing = findRepository(db, push.repository);
  if (existing && existing.deletedAt === null) {
    db.query("UPDATE repositories SET last_push_at = MAX(last_push_at, ?) WHERE id = ?").run(at, existing.id);
    return existing.id;
  }
  let id: number;
  if (existing) {
    db.query("UPDATE repositories SET deleted_at = NULL, last_push_at = ? WHERE id = ?").run(at, existing.id);
    id = existing.id;
  } else {
    id = Number(
      db
        .query("INSERT INTO repositories (name, first_push_at, last_push_at) VALUES (?, ?, ?)")
        .run(push.repository, at, at).lastInsertRowid,
    );
  }
  changes.push({
    type: "repository.created",
    eventId: `${push.eventId}:repository`,
    repository: push.repository,
    pusher: push.pusher,
    pusherAddress: push.pusherAddress,
    atUnixMs: push.atUnixMs,
    source: push.source,
  });
  return id;
}

/**
 * A manifest push. By tag: the tag now points at the digest; tag.pushed for every notified push
 * (docker-index's "all pushes"), but from a crawl only when the tag is new or moved (a crawl
 * that finds nothing new must not notify anyone).
 */
export function recordManifestPush(db: Database, push: ManifestPush): IndexChange[] {
  const changes: IndexChange[] = [];
  const repositoryId = ensureRepository(db, push, changes);
  if (push.tag === undefined) return changes;
  const at = toSeconds(push.atUnixMs);
  const before = db
    .query<{ digest: string; deleted_at: number | null }, [number, string]>(
      "SELECT digest, deleted_at FROM image_tags WHERE repository_id = ? AND tag = ?",
    )
    .get(repositoryId, push.tag);
  if (before === null) {
    db.query(
      `INSERT INTO image_tags (repository_id, tag, digest, media_type, size_bytes, pushed_by, pushed_from,
         first_push_at, last_push_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      repositoryId,
      push.tag,
      push.digest,
      push.mediaType,
      push.sizeBytes,
      push.pusher,
      push.pusherAddress,
      at,
      at,
    );
  } else {
    db.query(
      `UPDATE image_tags SET digest = ?, media_type = ?, size_bytes = ?, pushed_by = ?, pushed_from = ?,
         last_push_at = ?, deleted_at = NULL WHERE repository_id = ? AND tag = ?`,
    ).run(
      push.digest,
      push.mediaType,
      push.sizeBytes,
      push.pusher,
      push.pusherAddress,
      at,
      repositoryId,
      push.tag,
    );
  }
  const moved = before === null || before.deleted_at !== null || before.digest !== push.digest;
  if (push.source === "notification" || moved) {
    changes.push({
      type: "tag.pushed",
      eventId: push.eventId,
      repository: push.repository,
      tag: push.tag,
      digest: push.digest,
      mediaType: push.mediaType,
      sizeBytes: push.sizeBytes,
      pusher: push.pusher,
      pusherAddress: push.pusherAddress,
      atUnixMs: push.atUnixMs,
      source: push.source,
    });
  }
  return changes;
}

function markTagsDeleted(db: Database, deletion: Deletion, tags: TagRow[]): IndexChange[] {
  const at = toSeconds(deletion.atUnixMs);
  const update = db.query(
    `UPDATE image_tags SET deleted_at = ?
     WHERE tag = ? AND repository_id = (SELECT id FROM repositories WHERE name = ?)`,
  );
  return tags.map((tag) => {
    update.run(at, tag.tag, deletion.repository);
    return {
      type: "tag.deleted" as const,
      eventId: tags.length === 1 ? deletion.eventId : `${deletion.eventId}:${tag.tag}`,
      repository: deletion.repository,
      tag: tag.tag,
      digest: tag.digest,
      mediaType: tag.mediaType,
      sizeBytes: tag.sizeBytes,
      pusher: deletion.actor,
      pusherAddress: deletion.actorAddress,
      atUnixMs: deletion.atUnixMs,
      source: deletion.source,
    };
  });
}

/** A tag deleted (distribution's TagDeleted: `delete` with target.tag). */
export function recordTagDelete(db: Database, deletion: Deletion & { tag: string }): IndexChange[] {
  const tag = findTag(db, deletion.repository, deletion.tag);
  if (tag === null || tag.deletedAt !== null) return [];
  return markTagsDeleted(db, deletion, [tag]);
}

/** A manifest deleted by digest: every live tag that pointed at it is gone with it. */
export function recordManifestDelete(db: Database, deletion: Deletion & { digest: string }): IndexChange[] {
  const tags = listTags(db, deletion.repository).filter((tag) => tag.digest === deletion.digest);
  return markTagsDeleted(db, deletion, tags);
}

/** A repository deleted (registry 3.x RepoDeleted): its live tags and the repository itself. */
export function recordRepositoryDelete(db: Database, deletion: Deletion): IndexChange[] {
  const changes = markTagsDeleted(db, deletion, listTags(db, deletion.repository));
  db.query("UPDATE repositories SET deleted_at = ? WHERE name = ? AND deleted_at IS NULL").run(
    toSeconds(deletion.atUnixMs),
    deletion.repository,
  );
  return changes;
}

/**
 * A manifest pull. By tag: that tag's count. By digest (`docker pull repo@sha256:…`): the live
 * tags of the repository that point at the digest. Pulls of what the index does not know are
 * not counted (the next crawl finds the tag; its earlier pulls are not worth a phantom row).
 */
export function recordPull(
  db: Database,
  pull: { repository: string; tag?: string; digest?: string; atUnixMs: number },
): number {
  const at = toSeconds(pull.atUnixMs);
  if (pull.tag !== undefined) {
    return db
      .query(
        `UPDATE image_tags SET pull_count = pull_count + 1, last_pull_at = MAX(COALESCE(last_pull_at, 0), ?)
         WHERE tag = ? AND deleted_at IS NULL
           AND repository_id = (SELECT id FROM repositories WHERE name = ?)`,
      )
      .run(at, pull.tag, pull.repository).changes;
  }
  if (pull.digest === undefined) return 0;
  return db
    .query(
      `UPDATE image_tags SET pull_count = pull_count + 1, last_pull_at = MAX(COALESCE(last_pull_at, 0), ?)
       WHERE digest = ? AND deleted_at IS NULL
         AND repository_id = (SELECT id FROM repositories WHERE name = ?)`,
    )
    .run(at, pull.digest, pull.repository).changes;
}

/** One repository of indexSnapshot: its row and every tag it ever had, deleted ones included. */
export interface IndexedRepository {
  repository: RepositoryRow;
  tags: TagRow[];
}

/**
 * The whole index, live and deleted, for the crawl's reconcile (src/registry-index/reconcile.ts):
 * deleted rows tell it what a notification removed while the crawl was running. Two queries, in
 * name order; a homelab registry's index fits in memory many times over.
 */
export function indexSnapshot(db: Database): Map<string, IndexedRepository> {
  const snapshot = new Map<string, IndexedRepository>();
  const repositories = db
    .query<RawRepository, []>(
      "SELECT id, name, first_push_at, last_push_at, deleted_at FROM repositories ORDER BY name",
    )
    .all();
  for (const row of repositories) snapshot.set(row.name, { repository: toRepository(row), tags: [] });
  const tags = db
    .query<RawTag, []>(
      `SELECT ${TAG_COLUMNS} FROM image_tags t JOIN repositories r ON r.id = t.repository_id ORDER BY r.name, t.tag`,
    )
    .all();
  for (const row of tags) snapshot.get(row.repository)?.tags.push(toTag(row));
  return snapshot;
}
