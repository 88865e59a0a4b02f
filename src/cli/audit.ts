/**
 * `regauth audit`: the audit log (issue 10 item 6), filtered by time, actor, repository and kind;
 * `--follow` keeps polling for new events, like `tail -f`. Written once over ManagementClient.
 */
import { type ParsedArgs, stringFlag, UsageError } from "./args.ts";
import { BACKEND_HELP } from "./backend.ts";
import type { CommandIo } from "./command-io.ts";
import type { AuditFilter, ManagementClient } from "./management-client.ts";
import { parseDateTime } from "./times.ts";
import { cell, json, outputFormat, shortTime, table } from "./output.ts";
import type { AuditEventView } from "./views.ts";

export const AUDIT_USAGE = `regauth audit [filters] [--follow] [--remote URL | --data-dir DIR | --config FILE] [--output json]

Prints audit events, oldest first: logins, token decisions (a denied push shows as outcome
denied), token and robot use, and every management change.

  --since WHEN        from this time: 2026-12-01, 2026-12-01T10:00:00Z, or 30m, 12h, 7d ago
                      (without --since and --until: the last hour)
  --until WHEN        up to this time (same forms)
  --actor NAME        events of this account ("local-admin": the offline CLI)
  --repository NAME   events about this repository
  --kind KIND         login, token, access-token.used, user.created, permission.granted, ...
  --limit N           at most N events, the oldest first (default 1000)
  --follow            keep printing new events as they happen (every 2 s); stop with Ctrl-C.
                      With --output json: one JSON object a line

Exit codes: 0 ok, 1 failed, 2 usage.

${BACKEND_HELP}`;

export const AUDIT_VALUE_FLAGS = ["since", "until", "actor", "repository", "kind", "limit"];
export const AUDIT_BOOLEAN_FLAGS = ["follow"];
export const FOLLOW_INTERVAL_MS = 2000;
/** Without --since or --until: the last hour. */
export const DEFAULT_WINDOW_MS = 3_600_000;

/** --since/--until: an absolute date or time, or a duration before now (30m, 12h, 7d). */
export function parseTime(flag: string, text: string, nowMs: number): string {
  const relative = /^(\d{1,6})([smhd])$/.exec(text);
  if (relative) {
    const unitMs = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[relative[2] as "s" | "m" | "h" | "d"];
    return new Date(nowMs - Number(relative[1]) * unitMs).toISOString();
  }
  const date = parseDateTime(text);
  if (date !== null) return date.toISOString();
  throw new UsageError(
    `--${flag} must be like 2026-12-01, 2026-12-01T10:00:00Z, 30m, 12h or 7d, not ${JSON.stringify(text)}`,
  );
}

export const DEFAULT_AUDIT_LIMIT = 1000;
export const MAX_AUDIT_LIMIT = 100_000;

function parseLimit(text: string | undefined): number {
  if (text === undefined) return DEFAULT_AUDIT_LIMIT;
  if (!/^\d{1,6}$/.test(text) || Number(text) < 1 || Number(text) > MAX_AUDIT_LIMIT)
    throw new UsageError(
      `--limit must be a number from 1 to ${MAX_AUDIT_LIMIT}, not ${JSON.stringify(text)}`,
    );
  return Number(text);
}

/** Events oldest first, page after page, at most `limit`; `more` when the limit cut the list short. */
async function collect(
  client: ManagementClient,
  filter: AuditFilter,
  limit: number,
): Promise<{ events: AuditEventView[]; more: boolean }> {
  const events: AuditEventView[] = [];
  let cursor: string | undefined;
  for (;;) {
    const want = Math.min(500, limit - events.length);
    const page = await client.queryAudit(
      filter,
      cursor === undefined ? { limit: want } : { limit: want, cursor },
    );
    events.push(...page.items);
    if (page.next_cursor === null || page.next_cursor === cursor) return { events, more: false };
    if (events.length >= limit) return { events, more: true };
    cursor = page.next_cursor;
  }
}

function auditRow(event: AuditEventView): string[] {
  return [
    shortTime(event.at),
    cell(event.kind),
    event.outcome,
    cell(event.actor) || "-",
    cell(event.repository ?? "") || "-",
    cell(event.ip) || "-",
    cell(JSON.stringify(event.details)),
  ];
}

const AUDIT_HEADER = ["TIME", "KIND", "OUTCOME", "ACTOR", "REPOSITORY", "IP", "DETAILS"];

export function auditTable(events: AuditEventView[]): string {
  return table(AUDIT_HEADER, events.map(auditRow));
}

export async function auditCommand(args: ParsedArgs, io: CommandIo): Promise<number> {
  if (args.positionals.length > 0) throw new UsageError(`unexpected argument ${args.positionals[0]}`);
  const format = outputFormat(args);
  const filter: AuditFilter = {};
  for (const key of ["since", "until"] as const) {
    const value = stringFlag(args, key);
    if (value !== undefined) filter[key] = parseTime(key, value, io.nowMs());
  }
  for (const key of ["actor", "repository", "kind"] as const) {
    const value = stringFlag(args, key);
    if (value !== undefined) filter[key] = value;
  }
  const limit = parseLimit(stringFlag(args, "limit"));
  // The log is read oldest first; without a time range the last hour is what one wants to see.
  if (filter.since === undefined && filter.until === undefined)
    filter.since = new Date(io.nowMs() - DEFAULT_WINDOW_MS).toISOString();
  const client = await io.client(args);
  const first = await collect(client, filter, limit);
  if (!args.flags.has("follow")) {
    io.out(format === "json" ? json(first.events) : auditTable(first.events));
    if (first.more)
      io.err(`(stopped at --limit ${limit}; narrow the time range with --since/--until or raise --limit)\n`);
    return 0;
  }
  // Following: rows are printed as they come, so the table cannot size its columns; tabs do.
  const printEvents = (events: AuditEventView[]) => {
    for (const event of events)
      io.out(format === "json" ? `${JSON.stringify(event)}\n` : `${auditRow(event).join("\t")}\n`);
  };
  if (format === "table") io.out(`${AUDIT_HEADER.join("\t")}\n`);
  printEvents(first.events);
  let lastId = first.events.at(-1)?.id ?? 0;
  for (;;) {
    await io.sleep(FOLLOW_INTERVAL_MS);
    const fresh = (await collect(client, { ...filter, after_id: lastId }, MAX_AUDIT_LIMIT)).events.filter(
      (e) => e.id > lastId,
    );
    fresh.sort((a, b) => a.id - b.id);
    printEvents(fresh);
    lastId = fresh.at(-1)?.id ?? lastId;
  }
}
