/** The audit log, for administrators (issue 10 item 6): by time, actor, repository and kind. */
import { AUDIT_KINDS, type AuditEvent, type AuditKind } from "../audit/audit-log.ts";
import { BadRequest } from "../errors.ts";
import { authorizeOrThrow, callerOf } from "./caller.ts";
import type { ManagementContext } from "./context.ts";
import { decodeCursor, encodeCursor, pageLimit } from "./paging.ts";
import type { AuditEventView, AuditQuery, Page } from "./schemas.ts";

export function auditEventView(event: AuditEvent): AuditEventView {
  return {
    id: event.id,
    at: new Date(event.atUnixMs).toISOString(),
    kind: event.kind,
    actor: event.actor,
    ip: event.ip,
    repository: event.repository,
    outcome: event.outcome,
    details: event.details,
  };
}

function timeMs(value: string | undefined, field: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  if (!Number.isFinite(ms)) throw new BadRequest(`query.${field}: not an RFC 3339 time`);
  return ms;
}

/** Oldest first; `after_id` (or the cursor) continues after an event, as `regauth audit --follow` does. */
export function queryAudit(ctx: ManagementContext, filter: AuditQuery = {}): Page<AuditEventView> {
  authorizeOrThrow(callerOf(ctx), { op: "queryAudit" });
  if (filter.kind !== undefined && !(AUDIT_KINDS as readonly string[]).includes(filter.kind))
    throw new BadRequest(`query.kind: expected one of ${AUDIT_KINDS.join(", ")}`);
  const limit = pageLimit(filter);
  let afterId = filter.after_id;
  if (filter.cursor !== undefined) {
    const key = decodeCursor(filter.cursor);
    if (typeof key !== "number") throw new BadRequest("query.cursor: not a cursor this server returned");
    afterId = Math.max(afterId ?? 0, key);
  }
  const sinceUnixMs = timeMs(filter.since, "since");
  const untilUnixMs = timeMs(filter.until, "until");
  const events = ctx.audit.query({
    ...(sinceUnixMs !== undefined ? { sinceUnixMs } : {}),
    ...(untilUnixMs !== undefined ? { untilUnixMs } : {}),
    ...(filter.actor !== undefined ? { actor: filter.actor } : {}),
    ...(filter.repository !== undefined ? { repository: filter.repository } : {}),
    ...(filter.kind !== undefined ? { kind: filter.kind as AuditKind } : {}),
    ...(afterId !== undefined ? { afterId } : {}),
    limit: limit + 1,
  });
  const items = events.slice(0, limit);
  const last = items.at(-1);
  return {
    items: items.map(auditEventView),
    next_cursor: events.length > limit && last ? encodeCursor(last.id) : null,
  };
}
