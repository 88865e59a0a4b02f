/**
 * Grant look-ups cost what the caller's own grants cost (issue 9, item 1): the queries on the
 * token path must probe indexes, never scan the permissions table, and must answer exactly what
 * the pattern rules (patternMatches) say. Speed itself is measured by `bun run bench`.
 */
import type { Database } from "bun:sqlite";
import { describe, expect, it } from "bun:test";
import { addMember, createGroup } from "../../src/accounts/groups.ts";
import {
  coveringPatterns,
  effectiveLevel,
  GRANT_LOOKUP_SQL,
  grant,
  hasPublicGrants,
  higherLevel,
  isNamespaceInUse,
  type Level,
  LEVELS,
  listPermissions,
  patternMatches,
} from "../../src/accounts/permissions.ts";
import { createUser } from "../../src/accounts/users.ts";
import { tempDatabase } from "../accounts-helpers.ts";

const NOW = 1_700_000_000;

function plan(db: Database, sql: string, params: Record<string, string | number>): string {
  return db
    .query<{ detail: string }, Record<string, string | number>>(`EXPLAIN QUERY PLAN ${sql}`)
    .all(params)
    .map((r) => r.detail)
    .join("\n");
}

describe("coveringPatterns", () => {
  const cases: [string, string[]][] = [
    ["app", ["*", "app"]],
    ["team/app", ["*", "team/app", "team/*"]],
    ["a/b/c", ["*", "a/b/c", "a/*", "a/b/*"]],
  ];
  for (const [name, expected] of cases) {
    it(`${name} → ${expected.join(" ")}`, () =>
      expect(coveringPatterns(name).sort()).toEqual(expected.sort()));
  }

  it("every pattern that matches a name is among its covering patterns (and only those)", () => {
    const names = ["a", "a/b", "a/b/c", "a/b/c/d", "ab/c", "a.b/c-d/e_f", "*", "a/", "/a", "a//b"];
    const patterns = ["*", "a", "a/*", "a/b", "a/b/*", "a/b/c", "a/b/c/*", "ab/*", "a.b/*", "a.b/c-d/*"];
    for (const name of names) {
      const covering = new Set(coveringPatterns(name));
      for (const pattern of patterns)
        if (patternMatches(pattern, name))
          expect({ name, pattern, covered: covering.has(pattern) }).toEqual({
            name,
            pattern,
            covered: true,
          });
    }
  });
});

describe("grant look-ups on a large table", () => {
  const { db } = tempDatabase();
  const users = 300;
  const groups = 30;
  db.transaction(() => {
    for (let u = 0; u < users; u++) createUser(db, { name: `u${u}`, passwordHash: "x", nowUnix: NOW });
    for (let g = 0; g < groups; g++) {
      createGroup(db, `g${g}`, NOW);
      for (let m = 0; m < 5; m++) addMember(db, `g${g}`, `u${(g * 7 + m * 13) % users}`);
    }
    // 3,000+ grants: users, groups and public, on repositories and nested namespaces.
    let seed = 42;
    const random = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    const pattern = () => {
      const depth = 1 + random(3);
      const parts = Array.from({ length: depth }, () => `n${random(6)}`);
      const kind = random(10);
      return kind === 0 ? "*" : kind < 6 ? `${parts.join("/")}/*` : parts.join("/");
    };
    for (let i = 0; i < 3000; i++) {
      const level = LEVELS[random(3)] as Level;
      const who = random(10);
      if (who < 6) grant(db, { kind: "user", name: `u${random(users)}` }, pattern(), level, NOW);
      else if (who < 9) grant(db, { kind: "group", name: `g${random(groups)}` }, pattern(), level, NOW);
      else grant(db, { kind: "public" }, pattern(), "read", NOW);
    }
  }).immediate();
  const all = listPermissions(db);
  const membership = new Map<string, Set<string>>();
  for (let g = 0; g < groups; g++)
    for (let m = 0; m < 5; m++) {
      const user = `u${(g * 7 + m * 13) % users}`;
      membership.set(user, (membership.get(user) ?? new Set()).add(`g${g}`));
    }

  /** What the rules say, computed the slow way over every grant. */
  function expectedLevel(userName: string | null, labelGroups: string[], name: string): Level | null {
    let level: Level | null = null;
    for (const p of all) {
      const applies =
        p.grantee.kind === "public" ||
        (p.grantee.kind === "user" && p.grantee.name === userName) ||
        (p.grantee.kind === "group" &&
          ((userName !== null && membership.get(userName)?.has(p.grantee.name) === true) ||
            labelGroups.includes(p.grantee.name)));
      if (applies && patternMatches(p.pattern, name)) level = higherLevel(level, p.level);
    }
    return level;
  }

  it("answers what patternMatches over every grant answers (users, groups, labels, anonymous)", () => {
    const names = ["n0", "n1/n2", "n0/n1/n2", "n3/n4/n5/n0", "n5/n5", "x/y", "n2/n0/n1"];
    let compared = 0;
    for (let u = -1; u < users; u += 7) {
      const userName = u < 0 ? null : `u${u}`;
      const userId =
        userName === null
          ? null
          : (db.query<{ id: number }, [string]>("SELECT id FROM users WHERE name = ?").get(userName)?.id ??
            null);
      for (const labels of [[], ["g3", "nonexistent"]]) {
        for (const name of names) {
          const subject = { userId, userName, isAdmin: false, groupNames: labels };
          expect({ userName, labels, name, level: effectiveLevel(db, subject, name, false) }).toEqual({
            userName,
            labels,
            name,
            level: expectedLevel(userName, labels, name),
          });
          compared++;
        }
      }
    }
    expect(compared).toBeGreaterThan(500);
  });

  it("the token path's look-up probes indexes and never scans permissions", () => {
    const detail = plan(db, GRANT_LOOKUP_SQL, {
      userId: 5,
      groupNames: JSON.stringify(["g1"]),
      patterns: JSON.stringify(coveringPatterns("a/b/c")),
    });
    expect(detail).toMatch(/SEARCH p USING INDEX permissions_grantee_pattern/);
    expect(detail).not.toMatch(/SCAN p\b|SCAN permissions/);
  });

  it("hasPublicGrants is an indexed EXISTS", () => {
    expect(hasPublicGrants(db)).toBe(true);
    const detail = plan(
      db,
      "SELECT 1 FROM permissions WHERE ifnull(user_id, 0) = 0 AND ifnull(group_id, 0) = 0 AND user_id IS NULL AND group_id IS NULL",
      {},
    );
    expect(detail).toMatch(/SEARCH permissions USING INDEX permissions_grantee_pattern/);
  });

  it("isNamespaceInUse is a range on the pattern index", () => {
    expect(isNamespaceInUse(db, "n0")).toBe(true);
    expect(isNamespaceInUse(db, "nobody")).toBe(false);
    const detail = plan(
      db,
      "SELECT 1 FROM permissions WHERE pattern = $name OR (pattern >= $name || '/' AND pattern < $name || '0')",
      { name: "n0" },
    );
    expect(detail).not.toMatch(/SCAN permissions/);
  });

  it("deleting a user finds their grants by index (ON DELETE CASCADE)", () => {
    const detail = plan(db, "DELETE FROM permissions WHERE user_id = $id", { id: 3 });
    expect(detail).toMatch(/USING (COVERING )?INDEX permissions_user/);
  });
});
