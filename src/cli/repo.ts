/**
 * `regauth repo list|tags|show|sync`: the image index (issue 11 items 2 and 3), written once over
 * ManagementClient. Remote, a caller sees what they may pull; offline, the local administrator
 * sees everything. `sync` crawls the registry and reconciles the index (offline: with the data
 * directory's signing key; remote: administrators, POST /api/v1/repositories/sync).
 */
import { humanSize, shortDigest } from "../management/views.ts";
import { type ParsedArgs, stringFlag, UsageError } from "./args.ts";
import { expectArgs } from "./accounts-database.ts";
import { BACKEND_HELP } from "./backend.ts";
import type { CommandIo } from "./command-io.ts";
import { allPages } from "./management-client.ts";
import { cell, json, outputFormat, shortTime, table } from "./output.ts";
import type { RepositoryDetailView, RepositoryView, SyncReportView, TagView } from "./views.ts";

export const REPO_USAGE = `regauth repo SUBCOMMAND [--remote URL | --data-dir DIR | --config FILE] [--output json]

  list [PATTERN]        repositories you may pull (PATTERN: a glob such as 'team/*' or '*/app')
  tags NAME             the tags of a repository
  show NAME[:TAG]       a repository, or one tag: digest, media type, size, who pushed it from
                        where, first and last push, pulls, and the docker pull command
                        (--registry HOST puts your registry's host name in it)
  sync                  crawl the registry (notifications.registry_url) and reconcile the index:
                        prints what was added, moved and deleted, and the time it took

Remote, you see what you may pull (administrators: everything); offline, everything.
Exit codes: 0 ok, 1 failed, 2 usage.

${BACKEND_HELP}`;

export const REPO_VALUE_FLAGS = ["registry"];

export function repositoryTable(repositories: RepositoryView[]): string {
  return table(
    ["NAME", "LAST PUSH", "FIRST PUSH"],
    repositories.map((r) => [cell(r.name), shortTime(r.last_push_at), shortTime(r.first_push_at)]),
  );
}

export function tagTable(tags: TagView[]): string {
  return table(
    ["TAG", "DIGEST", "SIZE", "PUSHED BY", "LAST PUSH", "PULLS", "LAST PULL"],
    tags.map((t) => [
      cell(t.tag),
      cell(shortDigest(t.digest)),
      humanSize(t.size_bytes),
      t.pushed_by === null ? "-" : cell(t.pushed_by),
      shortTime(t.last_push_at),
      String(t.pull_count),
      shortTime(t.last_pull_at),
    ]),
  );
}

function withRegistry(tag: TagView, registry: string | undefined): TagView {
  if (registry === undefined) return tag;
  return { ...tag, pull_command: `docker pull ${registry}/${tag.repository}:${tag.tag}` };
}

export function tagText(tag: TagView): string {
  const rows: [string, string][] = [
    ["repository", tag.repository],
    ["tag", tag.tag],
    ["digest", tag.digest],
    ["media type", tag.media_type],
    ["size", `${humanSize(tag.size_bytes)} (${tag.size_bytes} bytes, the manifest)`],
    ["pushed by", tag.pushed_by ?? "unknown (found by a sync)"],
    ["pushed from", tag.pushed_from ?? "unknown"],
    ["first push", shortTime(tag.first_push_at)],
    ["last push", shortTime(tag.last_push_at)],
    ["pulls", String(tag.pull_count)],
    ["last pull", shortTime(tag.last_pull_at)],
  ];
  return `${rows.map(([k, v]) => `${`${k}:`.padEnd(13)}${cell(v)}`).join("\n")}\n\n  ${cell(tag.pull_command)}\n`;
}

export function repositoryText(repository: RepositoryDetailView, tags: TagView[]): string {
  return (
    `repository:  ${cell(repository.name)}\n` +
    `first push:  ${shortTime(repository.first_push_at)}\n` +
    `last push:   ${shortTime(repository.last_push_at)}\n` +
    `tags:        ${repository.tag_count}\n\n` +
    (tags.length > 0 ? tagTable(tags) : "")
  );
}

export function syncText(report: SyncReportView): string {
  const incomplete =
    report.incomplete_repositories.length > 0
      ? `\n${report.incomplete_repositories.length} repositories could not be read whole (nothing of them was deleted): ` +
        `${report.incomplete_repositories.slice(0, 10).map(cell).join(", ")}`
      : "";
  return (
    `synced ${report.repositories} repositories, ${report.tags} tags in ${(report.duration_ms / 1000).toFixed(1)} s: ` +
    `${report.added} added, ${report.moved} moved, ${report.deleted_tags} tags deleted, ` +
    `${report.deleted_repositories} repositories deleted${incomplete}\n`
  );
}

/** NAME or NAME:TAG (repository names hold no colon: they name no registry host here). */
export function parseReference(text: string): { name: string; tag?: string } {
  const colon = text.indexOf(":");
  if (colon === -1) return { name: text };
  const name = text.slice(0, colon);
  const tag = text.slice(colon + 1);
  if (name === "" || tag === "" || tag.includes(":"))
    throw new UsageError(`expected NAME or NAME:TAG (e.g. team/app:v1), not ${JSON.stringify(text)}`);
  return { name, tag };
}

export async function repoCommand(args: ParsedArgs, io: CommandIo): Promise<number> {
  const sub = args.positionals[0];
  if (sub === undefined) throw new UsageError("which subcommand? list, tags, show or sync");
  const format = outputFormat(args);
  switch (sub) {
    case "list": {
      if (args.positionals.length > 2) throw new UsageError(`unexpected argument ${args.positionals[2]}`);
      const pattern = args.positionals[1];
      const client = await io.client(args);
      const repositories = await allPages((page) =>
        client.listRepositories(pattern === undefined ? {} : { pattern }, page),
      );
      io.out(format === "json" ? json(repositories) : repositoryTable(repositories));
      return 0;
    }
    case "tags": {
      const [name] = expectArgs(args, ["NAME"]) as [string];
      const client = await io.client(args);
      const tags = await allPages((page) => client.listTags({ name }, page));
      io.out(format === "json" ? json(tags) : tagTable(tags));
      return 0;
    }
    case "show": {
      const [reference] = expectArgs(args, ["NAME[:TAG]"]) as [string];
      const { name, tag } = parseReference(reference);
      const client = await io.client(args);
      const registry = stringFlag(args, "registry");
      if (tag !== undefined) {
        const view = withRegistry(await client.getTag({ name, tag }), registry);
        io.out(format === "json" ? json(view) : tagText(view));
        return 0;
      }
      const repository = await client.getRepository({ name });
      const tags = (await allPages((page) => client.listTags({ name }, page))).map((t) =>
        withRegistry(t, registry),
      );
      io.out(format === "json" ? json({ ...repository, tags }) : repositoryText(repository, tags));
      return 0;
    }
    case "sync": {
      expectArgs(args, []);
      const report = await (await io.client(args)).syncRepositories();
      io.out(format === "json" ? json(report) : syncText(report));
      return 0;
    }
    default:
      throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}`);
  }
}
