/**
 * The facts about the caller that authorization needs, read from the database for every
 * operation (so a grant revoked a moment ago is gone from the next request), and the one helper
 * every operation uses to ask the table and turn a refusal into an error.
 */
import type { Database } from "bun:sqlite";
import { Forbidden, NotFound } from "../errors.ts";
import { type Action, type Caller, decide } from "./authorization.ts";
import type { ManagementContext } from "./context.ts";

/**
 * Namespaces `ns` where the user holds `admin` on `ns/*` by a grant to them or to one of their
 * groups (design §3: a namespace administrator).
 */
export function adminNamespacesOf(db: Database, userId: number): string[] {
  const rows = db
    .query<{ pattern: string }, { userId: number }>(
      `SELECT DISTINCT pattern FROM permissions
       WHERE level = 'admin' AND pattern LIKE '%/*' AND pattern <> '*'
         AND (user_id = $userId
              OR group_id IN (SELECT group_id FROM group_members WHERE user_id = $userId))
       ORDER BY pattern`,
    )
    .all({ userId });
  return rows.map((row) => row.pattern.slice(0, -2));
}

export function callerOf(ctx: ManagementContext): Caller {
  const actor = ctx.actor;
  if (actor.kind === "local-admin")
    return {
      kind: "local-admin",
      name: "local-admin",
      isAdmin: true,
      isRobot: false,
      via: "local",
      tokenScopes: null,
      adminNamespaces: [],
    };
  return {
    kind: "account",
    name: actor.name,
    isAdmin: actor.isAdmin,
    isRobot: actor.name.includes("+"),
    via: actor.via,
    tokenScopes: actor.tokenScopes ?? null,
    adminNamespaces: adminNamespacesOf(ctx.db, actor.userId),
  };
}

/**
 * Throws Forbidden (403) or NotFound (404) unless the table allows `action`. `notFoundMessage`:
 * what a 404 says, the same words as for an object that does not exist, so that the answer
 * never tells the two apart.
 */
export function authorizeOrThrow(caller: Caller, action: Action, notFoundMessage?: string): void {
  const verdict = decide(caller, action);
  if (verdict.allowed) return;
  throw verdict.status === 404
    ? new NotFound(notFoundMessage ?? verdict.reason)
    : new Forbidden(verdict.reason);
}
