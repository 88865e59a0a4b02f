/**
 * Permissions: a level (read, write, admin) on a pattern (one repository, a namespace, or every
 * repository), granted to a user, a group, or everyone (public: anonymous clients included,
 * read only). What a level lets a client do, in registry actions:
 *   read  = pull
 *   write = pull, push
 *   admin = pull, push, delete (and "*", the registry's wildcard action)
 * Patterns: "team/app" is that repository only; "team/*" is every repository under team/,
 * nested ones too (team/app, team/sub/app), but not "team" itself; "*" is every repository.
 */
import type { Database } from "bun:sqlite";
import { BadRequest, NotFound } from "../errors.ts";
import { getGroupId } from "./groups.ts";
import { getUser } from "./users.ts";

export const LEVELS = ["read", "write", "admin"] as const;
export type Level = (typeof LEVELS)[number];

export const LEVEL_ACTIONS: Readonly<Record<Level, readonly string[]>> = {
  read: ["pull"],
  write: ["pull", "push"],
  admin: ["delete", "pull", "push", "*"],
};

export function isLevel(value: string): value is Level {
  return (LEVELS as readonly string[]).includes(value);
}

export function higherLevel(a: Level | null, b: Level | null): Level | null {
  if (a === null) return b;
  if (b === null) return a;
  return LEVELS.indexOf(a) >= LEVELS.indexOf(b) ? a : b;
}

/** A grantee: a user by name, a group ("@devs" on the CLI), or everyone ("*": public). */
export type Grantee = { kind: "user"; name: string } | { kind: "group"; name: string } | { kind: "public" };

export function parseGrantee(text: string): Grantee {
  if (text === "*") return { kind: "public" };
  if (text.startsWith("@")) return { kind: "group", name: text.slice(1) };
  return { kind: "user", name: text };
}

export function formatGrantee(grantee: Grantee): string {
  return grantee.kind === "public" ? "*" : grantee.kind === "group" ? `@${grantee.name}` : grantee.name;
}

/** distribution's reference grammar: path components of lowercase alphanumerics and separators. */
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
export const MAX_PATTERN_LENGTH = 255;

export function checkPattern(pattern: string): void {
  const fail = (why: string) => {
    throw new BadRequest(`invalid repository pattern ${JSON.stringify(pattern)}: ${why}`);
  };
  if (pattern === "*") return;
  if (pattern.length > MAX_PATTERN_LENGTH) fail(`longer than ${MAX_PATTERN_LENGTH} characters`);
  const path = pattern.endsWith("/*") ? pattern.slice(0, -2) : pattern;
  if (path === "") fail("empty");
  for (const component of path.split("/")) {
    if (!PATH_COMPONENT.test(component))
      fail(
        "use a repository (team/app), a namespace (team/*) or * (every repository); components are lowercase letters, digits and single . _ or - between them",
      );
  }
}

/** Whether `pattern` covers the repository `name`. */
export function patternMatches(pattern: string, name: string): boolean {
  if (pattern === "*") return true;
  if (pattern.endsWith("/*"))
    return name.startsWith(pattern.slice(0, -1)) && name.length > pattern.length - 1;
  return pattern === name;
}

interface GranteeIds {
  userId: number | null;
  groupId: number | null;
}

function granteeIds(db: Database, grantee: Grantee): GranteeIds {
  if (grantee.kind === "user") return { userId: getUser(db, grantee.name).id, groupId: null };
  if (grantee.kind === "group") return { userId: null, groupId: getGroupId(db, grantee.name) };
  return { userId: null, groupId: null };
}

export function grant(db: Database, grantee: Grantee, pattern: string, level: Level, nowUnix: number): void {
  checkPattern(pattern);
  if (grantee.kind === "public" && level !== "read")
    throw new BadRequest("public grants are read only: anonymous clients may pull, never push or delete");
  const ids = granteeIds(db, grantee);
  db.query(
    `INSERT INTO permissions (user_id, group_id, pattern, level, created_at_unix)
     VALUES ($userId, $groupId, $pattern, $level, $now)
     ON CONFLICT (ifnull(user_id, 0), ifnull(group_id, 0), pattern) DO UPDATE SET level = excluded.level`,
  ).run({ ...ids, pattern, level, now: nowUnix });
}

export function revoke(db: Database, grantee: Grantee, pattern: string): void {
  const ids = granteeIds(db, grantee);
  const result = db
    .query(
      `DELETE FROM permissions
       WHERE ifnull(user_id, 0) = ifnull($userId, 0) AND ifnull(group_id, 0) = ifnull($groupId, 0)
         AND pattern = $pattern`,
    )
    .run({ ...ids, pattern });
  if (result.changes === 0)
    throw new NotFound(`${formatGrantee(grantee)} has no grant on ${JSON.stringify(pattern)}`);
}

export interface Permission {
  grantee: Grantee;
  pattern: string;
  level: Level;
  createdAtUnix: number;
}

interface PermissionRow {
  user_name: string | null;
  group_name: string | null;
  pattern: string;
  level: Level;
  created_at_unix: number;
}

export function listPermissions(db: Database): Permission[] {
  return db
    .query<PermissionRow, []>(
      `SELECT u.name AS user_name, g.name AS group_name, p.pattern, p.level, p.created_at_unix
       FROM permissions p LEFT JOIN users u ON u.id = p.user_id LEFT JOIN groups g ON g.id = p.group_id
       ORDER BY p.pattern, CASE WHEN p.user_id IS NOT NULL THEN 2 WHEN p.group_id IS NOT NULL THEN 1 ELSE 0 END, g.name, u.name`,
    )
    .all()
    .map((row) => ({
      grantee:
        row.user_name !== null
          ? { kind: "user", name: row.user_name }
          : row.group_name !== null
            ? { kind: "group", name: row.group_name }
            : { kind: "public" },
      pattern: row.pattern,
      level: row.level,
      createdAtUnix: row.created_at_unix,
    }));
}

/**
 * Whether any public grant exists: asked on every anonymous request (and every 401), so it is an
 * indexed EXISTS on permissions_grantee_pattern, whatever the table holds, and always current
 * (no cache to keep coherent with the CLI writing from another process).
 */
export function hasPublicGrants(db: Database): boolean {
  return (
    db
      .query<{ n: number }, []>(
        `SELECT EXISTS (SELECT 1 FROM permissions
           WHERE ifnull(user_id, 0) = 0 AND ifnull(group_id, 0) = 0 AND user_id IS NULL AND group_id IS NULL) AS n`,
      )
      .get()?.n === 1
  );
}

/**
 * The only patterns that can cover repository `name` (see patternMatches): "*", each namespace
 * above it ("a/*", "a/b/*" for "a/b/c": a namespace grant covers nested repositories) and the
 * name itself. Looking these up costs O(depth), not O(grants).
 */
export function coveringPatterns(name: string): string[] {
  const patterns = ["*", name];
  for (let slash = name.indexOf("/"); slash !== -1; slash = name.indexOf("/", slash + 1)) {
    if (slash > 0 && slash < name.length - 1) patterns.push(`${name.slice(0, slash)}/*`);
  }
  return patterns;
}

/**
 * The highest level among the grants to the subject's grantees (everyone, the user, the groups
 * they are a member of or named by labels) on the patterns covering the repository. One probe of
 * the unique index (grantee, pattern) per pair: the cost is the caller's groups × the name's
 * depth, not the size of the table (issue 9, item 1; test/unit/permission-lookups.test.ts checks
 * the plan).
 */
export const GRANT_LOOKUP_SQL = `WITH
  grantees (user_key, group_key) AS (
    SELECT 0, 0
    UNION SELECT $userId, 0 WHERE $userId > 0
    UNION SELECT 0, group_id FROM group_members WHERE user_id = $userId
    UNION SELECT 0, g.id FROM groups g WHERE g.name IN (SELECT value FROM json_each($groupNames))
  )
SELECT max(CASE p.level WHEN 'admin' THEN 3 WHEN 'write' THEN 2 ELSE 1 END) AS rank
FROM grantees CROSS JOIN json_each($patterns) candidate CROSS JOIN permissions p
WHERE ifnull(p.user_id, 0) = +grantees.user_key AND ifnull(p.group_id, 0) = +grantees.group_key
  AND p.pattern = +candidate.value`;
// CROSS JOIN fixes the loop order (grantees, then patterns, then the index probe) and the unary
// "+" keeps the planner from driving the join from another index, e.g. all grants on one pattern.

const LEVEL_OF_RANK: readonly (Level | null)[] = [null, "read", "write", "admin"];

export interface AccessSubject {
  /** The database user's id, or null for anonymous clients and accounts not in the database. */
  userId: number | null;
  /** The database user's name, for the personal namespace. */
  userName: string | null;
  isAdmin: boolean;
  /**
   * Database groups the subject belongs to by its labels (`accounts.group_labels`), e.g. the
   * LDAP groups of a directory user who has no database account. Groups that do not exist are
   * ignored.
   */
  groupNames?: readonly string[];
}

/**
 * The highest level `subject` holds on repository `name`: admins hold admin everywhere; a user
 * holds admin on their personal namespace `<name>/*` when `personalNamespaces`; then grants to
 * the user, to their groups, and public grants.
 */
export function effectiveLevel(
  db: Database,
  subject: AccessSubject,
  name: string,
  personalNamespaces: boolean,
): Level | null {
  if (subject.isAdmin) return "admin";
  if (personalNamespaces && subject.userName !== null && patternMatches(`${subject.userName}/*`, name))
    return "admin";
  const row = db
    .query<{ rank: number | null }, { userId: number; groupNames: string; patterns: string }>(
      GRANT_LOOKUP_SQL,
    )
    .get({
      userId: subject.userId ?? 0,
      groupNames: JSON.stringify(subject.groupNames ?? []),
      patterns: JSON.stringify(coveringPatterns(name)),
    });
  return LEVEL_OF_RANK[row?.rank ?? 0] ?? null;
}

/**
 * Whether any grant names the namespace `name` (a pattern `name/...` or the repository `name`).
 * Registration refuses such names: with personal namespaces on, the new user would own `name/*`,
 * a namespace the admin already hands out to others.
 */
export function isNamespaceInUse(db: Database, name: string): boolean {
  return (
    db
      .query<{ n: number }, Record<string, string>>(
        // A range on permissions_pattern: '0' is the character after '/'.
        `SELECT EXISTS (SELECT 1 FROM permissions
           WHERE pattern = $name OR (pattern >= $name || '/' AND pattern < $name || '0')) AS n`,
      )
      .get({ name })?.n === 1
  );
}
