/**
 * The catalog filtered by permission and the sync, as management operations (issue 11 items 2
 * and 3): `regauth repo list|tags|show|sync` and /api/v1/repositories. What a caller sees is what
 * they may pull: administrators (and the offline CLI) everything; anyone else what the token
 * path's authorizer chain grants them `pull` on (src/registry-index/catalog.ts); anonymous
 * callers what anonymous token requests could pull. A repository the caller may not pull is a
 * 404 with the same words as one that does not exist: the answer never reveals its existence.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import type { ClientIp } from "../acl.ts";
import { patternMatches } from "../accounts/permissions.ts";
import { BadRequest, NotFound } from "../errors.ts";
import { parseIp } from "../ip.ts";
import { serverKey } from "../serve/server-secret.ts";
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
import { paginate, pageLimit } from "./paging.ts";
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

/**
 * The catalog's cursors are sealed (AES-256-GCM under a key of this process): a page that ran out
 * of budget ends on the last repository it *asked about*, which the caller may not pull, and a
 * readable cursor (base64 JSON, as elsewhere) handed that name to them, one hidden name per page
 * of 1000 candidates, to anonymous callers too. A restart makes older cursors a 400; a client
 * starts again from the first page.
 */
// The server's, so that any worker opens another's cursor (issue 17; src/serve/server-secret.ts).
const cursorKey = () => serverKey("catalog cursor");
const CURSOR_IV_BYTES = 12;
const CURSOR_TAG_BYTES = 16;

export function sealCatalogCursor(afterName: string): string {
  const iv = randomBytes(CURSOR_IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", cursorKey(), iv);
  const sealed = Buffer.concat([cipher.update(afterName, "utf8"), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString("base64url");
}

/** The name a cursor of sealCatalogCursor holds, or null for anything else. */
export function openCatalogCursor(cursor: string): string | null {
  if (!/^[A-Za-z0-9_-]{1,1024}$/.test(cursor)) return null;
  const bytes = Buffer.from(cursor, "base64url");
  if (bytes.length < CURSOR_IV_BYTES + CURSOR_TAG_BYTES) return null;
  try {
    const decipher = createDecipheriv("aes-256-gcm", cursorKey(), bytes.subarray(0, CURSOR_IV_BYTES));
    decipher.setAuthTag(bytes.subarray(CURSOR_IV_BYTES, CURSOR_IV_BYTES + CURSOR_TAG_BYTES));
    const name = Buffer.concat([
      decipher.update(bytes.subarray(CURSOR_IV_BYTES + CURSOR_TAG_BYTES)),
      decipher.final(),
    ]).toString("utf8");
    return name;
  } catch {
    return null;
  }
}

/**
 * Whose view: everything (administrators, the offline CLI), or what one caller may pull; in both
 * cases cut down to `repositoryPatterns` when the caller came with an access token that has them
 * (what the token itself could pull: src/access-tokens/scopes.ts limitToToken).
 */
export type Viewer = ({ kind: "all" } | PullViewer) & { repositoryPatterns?: readonly string[] };

export const ANONYMOUS_VIEWER: Viewer = { kind: "anonymous" };

/** What the catalog operations use of a ManagementContext: no actor (anonymous calls have none). */
export type CatalogContext = Pick<ManagementContext, "db" | "ip" | "registryIndex">;

/** The viewer of an authenticated caller, through the management table (robots: 403). */
export function viewerOf(ctx: ManagementContext): Viewer {
  const caller = callerOf(ctx);
  authorizeOrThrow(caller, { op: "readCatalog" });
  const patterns = ctx.actor.kind === "account" ? ctx.actor.tokenRepositoryPatterns : undefined;
  const limited = patterns && !patterns.includes("*") ? { repositoryPatterns: patterns } : {};
  if (decide(caller, { op: "readAllRepositories" }).allowed) return { kind: "all", ...limited };
  return { kind: "account", name: caller.name, ...limited };
}

export function repositoryView(row: RepositoryRow): RepositoryView {
  return { name: row.name, first_push_at: rfc3339(row.firstPushAt), last_push_at: rfc3339(row.lastPushAt) };
}

/**
 * Who pushed and from where, as far as `viewer` may know it: the audit log, which records the
 * same, is for administrators only, so the catalog is not a side door to it. Administrators see
 * both; a user sees the pusher's name, and the address only of their own pushes; an anonymous
 * caller neither (a public repository must not publish its maintainers' names and addresses).
 */
function originFor(row: TagRow, viewer: Viewer): { pushed_by: string | null; pushed_from: string | null } {
  if (viewer.kind === "all") return { pushed_by: row.pushedBy, pushed_from: row.pushedFrom };
  if (viewer.kind === "anonymous") return { pushed_by: null, pushed_from: null };
  return { pushed_by: row.pushedBy, pushed_from: row.pushedBy === viewer.name ? row.pushedFrom : null };
}

export function tagView(row: TagRow, registryHost: string | null, viewer: Viewer = { kind: "all" }): TagView {
  return {
    repository: row.repository,
    tag: row.tag,
    digest: row.digest,
    media_type: row.mediaType,
    size_bytes: row.sizeBytes,
    ...originFor(row, viewer),
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
  const patterns = viewer.repositoryPatterns;
  const covered = (name: string) => !patterns || patterns.some((p) => patternMatches(p, name));
  let check: PullCheck | "all";
  if (viewer.kind === "all") check = "all";
  else if (!ctx.registryIndex) check = async () => new Set();
  else check = await ctx.registryIndex.pullCheck(viewer, clientIpOf(ctx));
  if (!patterns) return check;
  const base = check;
  return async (names) => {
    const inPatterns = names.filter(covered);
    if (base === "all") return new Set(inPatterns);
    return base(inPatterns);
  };
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
    const key = openCatalogCursor(query.cursor);
    if (key === null) throw new BadRequest("query.cursor: not a cursor this server returned");
    afterName = key;
  }
  const page = await visibleRepositories(
    ctx.db,
    { glob, limit, ...(afterName !== undefined ? { afterName } : {}) },
    await pullCheckOf(ctx, viewer),
  );
  return {
    items: page.repositories.map(repositoryView),
    next_cursor: page.nextAfterName === null ? null : sealCatalogCursor(page.nextAfterName),
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
    (tag) => tagView(tag, host, viewer),
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
  return tagView(found, ctx.registryIndex?.registryHost ?? null, viewer);
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
