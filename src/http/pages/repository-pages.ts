/**
 * "Repositories you may pull" (issue 14 item 2, over issue 11's image index): the list with the
 * API's PATTERN glob and the catalog's cursor, a repository with its tags and pull commands,
 * and, for administrators, the sync. Each page calls what GET /api/v1/repositories... calls
 * (src/management/repositories.ts) with the same viewer, so a caller sees exactly what the token
 * path would let them pull, and a repository they may not pull is the same 404 as none.
 *
 * Signed-in accounts only, although the API answers anonymous callers with the public
 * repositories: docs/web.md "Repositories" says why.
 */
import { humanSize, shortDigest } from "../../management/views.ts";
import { BadRequest } from "../../errors.ts";
import {
  getRepository,
  listRepositories,
  listTags,
  syncRepositories,
  viewerOf as catalogViewerOf,
} from "../../management/repositories.ts";
import type { ManagementContext } from "../../management/context.ts";
import { CrawlFailed } from "../../registry-index/crawler.ts";
import * as S from "../../management/schemas.ts";
import { type Html, html, type HtmlValue } from "../../web/html.ts";
import { validated } from "../api/validate.ts";
import { formErrorsOf, requireContext, viewerOf } from "./account-pages.ts";
import { type FormErrors, formFields } from "./forms.ts";
import { csrfField, emptyState, field, table, type Viewer, when } from "./layout.ts";
import type { PageKit, PageRequest, PageRoute } from "./plugin.ts";

/** Repositories (and tags) a page shows: the API's default page size. */
const PAGE_SIZE = 100;

/** A command in a <pre> with its copy button (app.js shows the button when the clipboard works). */
export function copyableCommand(id: string, command: string, label: string): Html {
  return html`<pre id="${id}">${command}</pre>
<p><button type="button" class="secondary" data-copy="${id}" hidden aria-label="${label}">Copy</button> <span id="${id}-status" role="status"></span></p>`;
}

/** A repository's page path: its name's slashes stay slashes (a name cannot hold %, ? or #). */
function repositoryPath(prefix: string, name: string): string {
  return `${prefix}/repositories/${name.split("/").map(encodeURIComponent).join("/")}`;
}

/** The query parameters a list page takes, each once; anything else is a 400 like the API's. */
function queryOf(r: PageRequest, allowed: readonly string[]): Record<string, string> {
  const query: Record<string, string> = {};
  for (const [key, value] of r.url.searchParams) {
    if (!allowed.includes(key)) throw new BadRequest(`${key.slice(0, 64)}: unknown parameter`);
    if (Object.hasOwn(query, key)) throw new BadRequest(`${key}: given more than once`);
    query[key] = value;
  }
  return query;
}

function hostOf(ctx: ManagementContext, kit: PageKit): string | null {
  return ctx.registryIndex?.registryHost ?? kit.options.registryHost;
}

/** What a newcomer does to see something here: log in, tag, push, with the real host when known. */
function firstPushHelp(ctx: ManagementContext, kit: PageKit, viewer: Viewer, r: PageRequest): Html {
  const host = hostOf(ctx, kit) ?? "REGISTRY_HOST";
  const namespace = ctx.config.personalNamespaces
    ? viewer.account
    : (viewer.adminNamespaces[0] ?? "NAMESPACE");
  const target = `${host}/${namespace}/hello:1.0`;
  const commands = `docker login -u ${viewer.account} ${host}\ndocker tag hello-world ${target}\ndocker push ${target}`;
  return emptyState(html`<p><strong>No images you may pull yet.</strong> Push your first one:</p>
${copyableCommand("first-push", commands, "Copy the push commands")}
<p>Use an <a href="${r.prefix}/tokens">access token</a> as the password, and a repository you may push to${
    ctx.config.personalNamespaces
      ? html` (your own namespace <code>${viewer.account}/</code> is yours)`
      : html` (<a href="${r.prefix}/permissions">your permissions</a> say which)`
  }. It appears here as soon as the registry tells regauth about the push.</p>${
    host === "REGISTRY_HOST"
      ? html`<p class="muted">Replace REGISTRY_HOST with your registry's address (an administrator can set <code>notifications.registry_host</code>).</p>`
      : ""
  }${
    viewer.isAdmin
      ? html`<p class="muted">Nothing appears? The registry must send its notifications to regauth: <code>regauth registry-config</code> prints the block for its <code>config.yml</code>.</p>`
      : ""
  }`);
}

function syncReport(report: S.SyncReportView): Html {
  return html`<section class="panel" aria-labelledby="sync-heading"><h2 id="sync-heading">Sync finished</h2>
<dl class="facts">
<dt>Repositories in the registry</dt><dd>${report.repositories}</dd>
<dt>Tags</dt><dd>${report.tags}</dd>
<dt>Tags new to the index</dt><dd>${report.added}</dd>
<dt>Tags that moved</dt><dd>${report.moved}</dd>
<dt>Tags deleted</dt><dd>${report.deleted_tags}</dd>
<dt>Repositories deleted</dt><dd>${report.deleted_repositories}</dd>
<dt>Could not be read whole</dt><dd>${report.incomplete_repositories.length === 0 ? "none" : report.incomplete_repositories.map((name, i) => html`${i > 0 ? ", " : ""}<code>${name}</code>`)}</dd>
<dt>Took</dt><dd>${report.duration_ms} ms</dd>
</dl></section>`;
}

async function repositoriesPage(
  r: PageRequest,
  kit: PageKit,
  extra: { report?: S.SyncReportView; syncError?: string } = {},
): Promise<Response> {
  const ctx = requireContext(r);
  const viewer = viewerOf(r);
  const query = queryOf(r, ["pattern", "cursor"]);
  const pattern = query.pattern ?? "";
  const cursor = query.cursor ?? "";
  let errors: FormErrors = {};
  let page: S.Page<S.RepositoryView> = { items: [], next_cursor: null };
  try {
    const request = validated<S.ListRepositoriesQuery>(
      S.ListRepositoriesQuery,
      {
        ...(pattern !== "" ? { pattern } : {}),
        ...(cursor !== "" ? { cursor } : {}),
        limit: PAGE_SIZE,
      },
      "query",
    );
    page = await listRepositories(ctx, catalogViewerOf(ctx), request);
  } catch (error) {
    // A bad pattern or cursor is shown next to the search field; a refusal is the page's answer.
    if (!(error instanceof BadRequest)) throw error;
    errors = formErrorsOf(error, { pattern: "pattern", cursor: "pattern" }, "pattern");
  }
  const isFiltered = pattern !== "" || cursor !== "";
  const next = new URLSearchParams(pattern !== "" ? { pattern } : {});
  if (page.next_cursor) next.set("cursor", page.next_cursor);
  const mayOffer = viewer.isAdmin && (ctx.registryIndex?.sync ?? null) !== null;
  const body: HtmlValue = html`<h1>Repositories</h1>
${extra.report ? syncReport(extra.report) : ""}
<p>${viewer.isAdmin ? "Every repository in the image index (you are an administrator)." : "The repositories you may pull: your grants, your groups', public ones and the config's ACL decide, as for docker pull."}</p>
${ctx.registryIndex ? "" : html`<p class="alert" role="alert">The image index is switched off (<code>notifications.enabled: false</code>): nothing is recorded, so nothing is listed.</p>`}
<form class="filters" method="get" action="${r.prefix}/repositories" role="search">
${field({ label: "Repository or pattern", name: "pattern", type: "search", value: pattern, errors, maxlength: 255, hint: "A glob: team/*, */app, team/app-?" })}
<div class="field"><button type="submit" class="secondary">Search</button></div>
</form>
${
  page.items.length === 0
    ? page.next_cursor
      ? emptyState("None on this page; the search goes on in the next one.")
      : isFiltered || Object.keys(errors).length > 0
        ? emptyState("No repository you may pull matches this pattern.")
        : firstPushHelp(ctx, kit, viewer, r)
    : table(
        ["Repository", "Last push", "First push"],
        page.items.map((repo) => [
          html`<a href="${repositoryPath(r.prefix, repo.name)}">${repo.name}</a>`,
          when(repo.last_push_at),
          when(repo.first_push_at),
        ]),
        "Repositories you may pull",
      )
}
<nav class="pager" aria-label="Pages">${page.next_cursor ? html`<a href="${r.prefix}/repositories?${next.toString()}">Next page</a>` : ""}${cursor !== "" ? html`<a href="${r.prefix}/repositories${pattern !== "" ? `?${new URLSearchParams({ pattern }).toString()}` : ""}">First page</a>` : ""}</nav>
${
  mayOffer
    ? html`<form class="panel" method="post" action="${r.prefix}/repositories/sync">
<h2>Sync with the registry</h2>
${csrfField(viewer)}
<p>Reads the registry's catalog and every tag now, and corrects the index (pushes the notifications missed, deletions).</p>
<button type="submit">Sync with the registry now</button>
</form>`
    : ""
}`;
  return kit.page(r, Object.keys(errors).length > 0 ? 400 : 200, {
    title: "Repositories",
    current: "/repositories",
    body,
    alert: extra.syncError ?? null,
  });
}

async function repositoryPage(r: PageRequest, kit: PageKit): Promise<Response> {
  const ctx = requireContext(r);
  const name = r.params["*"] ?? "";
  const viewer = catalogViewerOf(ctx);
  const param = validated<{ name: string }>(S.RepositoryParam, { name }, "params");
  const query = queryOf(r, ["cursor"]);
  const repository = await getRepository(ctx, viewer, param.name);
  const tags = await listTags(ctx, viewer, repository.name, {
    limit: PAGE_SIZE,
    ...(query.cursor ? { cursor: query.cursor } : {}),
  });
  const path = repositoryPath(r.prefix, repository.name);
  const host = hostOf(ctx, kit);
  const body = html`<h1>${repository.name}</h1>
<p><a href="${r.prefix}/repositories">All repositories</a></p>
<dl class="facts"><dt>Tags</dt><dd>${repository.tag_count}</dd><dt>Last push</dt><dd>${when(repository.last_push_at)}</dd><dt>First push</dt><dd>${when(repository.first_push_at)}</dd></dl>
${
  tags.items.length === 0
    ? emptyState("No tags: every tag of this repository was deleted, or it was pushed by digest only.")
    : table(
        ["Tag", "Digest", "Size", "Pushed by", "Last push", "Pulls", "Last pull", "Pull command"],
        tags.items.map((t, i) => [
          html`<strong>${t.tag}</strong>`,
          html`<details><summary><code>${shortDigest(t.digest)}</code></summary><code>${t.digest}</code></details>`,
          html`<span title="${t.size_bytes} bytes">${humanSize(t.size_bytes)}</span>`,
          t.pushed_by === null
            ? html`<span class="muted">unknown (found by a sync)</span>`
            : `${t.pushed_by}${t.pushed_from ? ` from ${t.pushed_from}` : ""}`,
          when(t.last_push_at),
          t.pull_count,
          when(t.last_pull_at),
          copyableCommand(`pull-${i}`, t.pull_command, `Copy the pull command of ${t.repository}:${t.tag}`),
        ]),
        `Tags of ${repository.name}`,
        { wide: true },
      )
}
${host === null ? html`<p class="muted">Replace REGISTRY_HOST with your registry's address (an administrator can set <code>notifications.registry_host</code>).</p>` : ""}
<p class="muted">Size is the manifest's, as the registry reported it; the layers are counted in the registry.</p>
<nav class="pager" aria-label="Pages">${tags.next_cursor ? html`<a href="${path}?${new URLSearchParams({ cursor: tags.next_cursor }).toString()}">Next page</a>` : ""}${query.cursor ? html`<a href="${path}">First page</a>` : ""}</nav>`;
  return kit.page(r, 200, { title: repository.name, current: "/repositories", body });
}

export const REPOSITORY_ROUTES: readonly PageRoute[] = [
  { method: "GET", path: "/repositories", needsSession: true, handle: (r, kit) => repositoriesPage(r, kit) },
  {
    method: "POST",
    path: "/repositories/sync",
    needsSession: true,
    async handle(r, kit) {
      const ctx = requireContext(r);
      formFields(r.form ?? new URLSearchParams(), []);
      let report: S.SyncReportView;
      try {
        report = await syncRepositories(ctx);
      } catch (error) {
        // No registry to sync with (400) or a registry that did not answer (502, in the audit log
        // as a failed repository.synced) is shown on the page. Refusals stay refusals.
        if (!(error instanceof BadRequest || error instanceof CrawlFailed)) throw error;
        const page = await repositoriesPage(r, kit, { syncError: `The sync failed: ${error.message}` });
        return new Response(page.body, { status: error.status, headers: page.headers });
      }
      return repositoriesPage(r, kit, { report });
    },
  },
  { method: "GET", path: "/repositories/*", needsSession: true, handle: (r, kit) => repositoryPage(r, kit) },
];
