/**
 * The catalog filtered by permission and the sync, as management operations (issue 11 items 2
 * and 3): `regauth repo list|tags|show|sync` and /api/v1/repositories. What a caller sees is what
 * they may pull: administrators (and the offline CLI) everything; anyone else what the token
 * path's authorizer chain grants them `pull` on (src/registry-index/catalog.ts); anonymous
 * callers what anonymous token requests could pull. A repository the caller may not pull is a
 * 404 with the same words as one that does not exist: the answer never reveals its existence.
 */
import type { ClientIp } from "../acl.ts";
import { BadRequest, NotFound } from "../errors.ts";
import { parseIp } from "../ip.ts";
import {
  type PullCheck,
  type PullViewer,
  parseCatalogPattern,
  visibleRepositories,
} from "../registry-index/catalog.ts";
import { isRepositoryName, isTagName } from "../registry-index/crawler.ts";
import {
  findRepository,
  findTag,
  listTags as readTags,
  type RepositoryRow,
  type TagRow,
} from "../registry-index/index-store.ts";
import { authorizeOrThrow, callerOf } from "./caller.ts";
import { decide } from "./authorization.ts";
import type { ManagementContext } from "./context.ts";
import { decodeCursor, encodeCursor, paginate, pageLimit } from "./paging.ts";
import type {
  ListRepositoriesQuery,
  Page,
  PageRequest,
  RepositoryDetailView,
  RepositoryView,
  SyncReportView,
  TagView,
} from "./schemas.ts";
import { rfc3339, rfc3339OrNull } from "./views.ts";

/** Whose view: everything (administrators, the offline CLI), or what one caller may pull. */
export type Viewer = { kind: "all" } | PullViewer;

export const ANONYMOUS_VIEWER: Viewer = { kind: "anonymous" };

/** What the catalog operations use of a ManagementContext: no actor (anonymous calls have none). */
export type CatalogContext = Pick<ManagementContext, "db" | "ip" | "registryIndex">;

/** The viewer of an authenticated caller, through the management table (robots: 403). */
export function viewerOf(ctx: ManagementContext): Viewer {
  const caller = callerOf(ctx);
  authorizeOrThrow(caller, { op: "readCatalog" });
  if (decide(caller, { op: "readAllRepositories" }).allowed) return { kind: "all" };
  return { kind: "account", name: caller.name };
}

export function repositoryView(row: RepositoryRow): RepositoryView {
  return { name: row.name, first_push_at: rfc3339(row.firstPushAt), last_push_at: rfc3339(row.lastPushAt) };
}

export function tagView(row: TagRow, registryHost: string | null): TagView {
  return {
    repository: row.repository,
    tag: row.tag,
    digest: row.digest,
    media_type: row.mediaType,
    size_bytes: row.sizeBytes,
    pushed_by: row.pushedBy,
    pushed_from: row.pushedFrom,
    first_push_at: rfc3339(row.firstPushAt),
    last_push_at: rfc3339(row.lastPushAt),
    pull_count: row.pullCount,
    last_pull_at: rfc3339OrNull(row.lastPullAt),
    pull_command: `docker pull ${registryHost ?? "REGISTRY_HOST"}/${row.repository}:${row.tag}`,
  };
}

function clientIpOf(ctx: CatalogContext): ClientIp | null {
  const bytes = ctx.ip === "" ? null : parseIp(ctx.ip);
  return bytes ? { text: ctx.ip, bytes } : null;
}

/** Nobody but "all" sees anything without the server's pull checks (an in-process test without them). */
async function pullCheckOf(ctx: CatalogContext, viewer: Viewer): Promise<PullCheck | "all"> {
  if (viewer.kind === "all") return "all";
  if (!ctx.registryIndex) return async () => new Set();
  return ctx.registryIndex.pullCheck(viewer, clientIpOf(ctx));
}

function checkedName(name: string): string {
  if (!isRepositoryName(name))
    throw new BadRequest(
      "params.name: not a repository name (lowercase components such as team/app; in a URL path write / as %2F)",
    );
  return name;
}

const noRepository = (name: string) => new NotFound(`no repository ${JSON.stringify(name)}`);

/** The live repository `name` if the viewer may pull it; else the same 404 as for none. */
async function visibleRepository(ctx: CatalogContext, viewer: Viewer, name: string): Promise<RepositoryRow> {
  const row = findRepository(ctx.db, checkedName(name));
  const check = await pullCheckOf(ctx, viewer);
  // Asked also when there is no such repository: the answer takes the same path either way.
  const mayPull = check === "all" || (await check([name])).has(name);
  if (row === null || row.deletedAt !== null || !mayPull) throw noRepository(name);
  return row;
}

/** A page of the repositories the viewer may pull, optionally matching a docker_auth glob. */
export async function listRepositories(
  ctx: CatalogContext,
  viewer: Viewer,
  query: ListRepositoriesQuery = {},
): Promise<Page<RepositoryView>> {
  const limit = pageLimit(query);
  let glob = null;
  if (query.pattern !== undefined) {
    const parsed = parseCatalogPattern(query.pattern);
    if (typeof parsed === "string") throw new BadRequest(`query.pattern: ${parsed}`);
    glob = parsed;
  }
  let afterName: string | undefined;
  if (query.cursor !== undefined) {
    const key = decodeCursor(query.cursor);
    if (typeof key !== "string") throw new BadRequest("query.cursor: not a cursor this server returned");
    afterName = key;
  }
  const page = await visibleRepositories(
    ctx.db,
    { glob, limit, ...(afterName !== undefined ? { afterName } : {}) },
    await pullCheckOf(ctx, viewer),
  );
  return {
    items: page.repositories.map(repositoryView),
    next_cursor: page.nextAfterName === null ? null : encodeCursor(page.nextAfterName),
  };
}

export async function getRepository(
  ctx: CatalogContext,
  viewer: Viewer,
  name: string,
): Promise<RepositoryDetailView> {
  const row = await visibleRepository(ctx, viewer, name);
  return { ...repositoryView(row), tag_count: readTags(ctx.db, row.name).length };
}

/** The live tags of a repository the viewer may pull, in tag order. */
export async function listTags(
  ctx: CatalogContext,
  viewer: Viewer,
  name: string,
  page: PageRequest = {},
): Promise<Page<TagView>> {
  const row = await visibleRepository(ctx, viewer, name);
  const host = ctx.registryIndex?.registryHost ?? null;
  return paginate(
    readTags(ctx.db, row.name),
    (tag) => tag.tag,
    page,
    (tag) => tagView(tag, host),
  );
}

/** One live tag of a repository the viewer may pull. */
export async function getTag(
  ctx: CatalogContext,
  viewer: Viewer,
  name: string,
  tag: string,
): Promise<TagView> {
  if (!isTagName(tag)) throw new BadRequest("params.tag: not a tag (letters, digits, _ . -; at most 128)");
  const row = await visibleRepository(ctx, viewer, name);
  const found = findTag(ctx.db, row.name, tag);
  if (found === null || found.deletedAt !== null)
    throw new NotFound(`no tag ${JSON.stringify(tag)} in ${JSON.stringify(name)}`);
  return tagView(found, ctx.registryIndex?.registryHost ?? null);
}

/** Crawls the registry and reconciles the index now (administrators; the offline CLI). */
export async function syncRepositories(ctx: ManagementContext): Promise<SyncReportView> {
  const caller = callerOf(ctx);
  authorizeOrThrow(caller, { op: "syncRepositories" });
  const sync = ctx.registryIndex?.sync;
  if (!sync)
    throw new BadRequest(
      "there is no registry to sync with: set notifications.registry_url (and keep notifications.enabled)",
    );
  const report = await sync({ actor: caller.name, ip: ctx.ip });
  return {
    repositories: report.repositories,
    tags: report.tags,
    added: report.added,
    moved: report.moved,
    deleted_tags: report.deletedTags,
    deleted_repositories: report.deletedRepositories,
    incomplete_repositories: report.incompleteRepositories,
    duration_ms: report.durationMs,
  };
}
