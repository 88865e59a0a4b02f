/**
 * The database authorizer caches answers only while the database is unchanged (issue 10: a grant
 * revoked from an owner is gone from their tokens at once). Every kind of change, by this
 * connection or by another one (the offline CLI, another process), must reach the next answer.
 */
import { Database } from "bun:sqlite";
import { describe, expect, it } from "bun:test";
import { addMember, createGroup } from "../../src/accounts/groups.ts";
import { grant, revoke } from "../../src/accounts/permissions.ts";
import { createUser, setEnabled } from "../../src/accounts/users.ts";
import { databasePermissionsAuthorizer } from "../../src/authz/database-permissions.ts";
import { tempDatabase } from "../accounts-helpers.ts";

const NOW = 1_800_000_000;
const principal = { account: "alice", labels: {}, isAnonymous: false, authenticator: "database" };
const request = (name: string, labels: Record<string, string[]> = {}) => ({
  account: "alice",
  type: "repository",
  name,
  service: "registry",
  ip: null,
  actions: ["pull", "push"],
  labels,
});

function setup() {
  const { db, path } = tempDatabase();
  createUser(db, { name: "alice", passwordHash: "x", nowUnix: NOW });
  grant(db, { kind: "user", name: "alice" }, "team/*", "write", NOW);
  const authorizer = databasePermissionsAuthorizer(db, { personalNamespaces: true, groupLabels: ["group"] });
  const ask = (name: string, labels: Record<string, string[]> = {}) =>
    authorizer.authorize(request(name, labels), { ...principal, labels });
  // Another connection to the same file, as the offline CLI would open it.
  const other = new Database(path, { strict: true });
  other.run("PRAGMA foreign_keys = ON");
  return { db, other, ask };
}

describe("the database authorizer's answers stay current", () => {
  const changes: [string, (s: ReturnType<typeof setup>) => void][] = [
    ["a grant revoked on this connection", (s) => revoke(s.db, { kind: "user", name: "alice" }, "team/*")],
    [
      "a grant revoked by another connection",
      (s) => revoke(s.other, { kind: "user", name: "alice" }, "team/*"),
    ],
    ["the user disabled by another connection", (s) => setEnabled(s.other, "alice", false)],
    ["the user deleted by another connection", (s) => s.other.run("DELETE FROM users WHERE name = 'alice'")],
    ["the grant lowered to read by raw SQL", (s) => s.other.run("UPDATE permissions SET level = 'read'")],
  ];
  for (const [what, change] of changes) {
    it(`${what}: the next answer no longer grants push`, () => {
      const s = setup();
      for (let i = 0; i < 3; i++) expect(s.ask("team/app")).toEqual(["pull", "push"]);
      change(s);
      expect(s.ask("team/app") ?? []).not.toContain("push");
    });
  }

  it("a new grant (e.g. through a group) shows at once too", () => {
    const s = setup();
    expect(s.ask("ops/app")).toBeNull();
    createGroup(s.other, "ops", NOW);
    addMember(s.other, "ops", "alice");
    grant(s.other, { kind: "group", name: "ops" }, "ops/*", "admin", NOW);
    expect(s.ask("ops/app")).toEqual(["delete", "pull", "push", "*"]);
  });

  it("answers are per labels: a group named by a label is not shared with a request without it", () => {
    const s = setup();
    createGroup(s.db, "devs", NOW);
    grant(s.db, { kind: "group", name: "devs" }, "dev/*", "write", NOW);
    const ldapPrincipal = { ...principal, authenticator: "ldap" };
    const authorizer = databasePermissionsAuthorizer(s.db, {
      personalNamespaces: true,
      groupLabels: ["group"],
    });
    expect(authorizer.authorize(request("dev/app", { group: ["devs"] }), ldapPrincipal)).toEqual([
      "pull",
      "push",
    ]);
    expect(authorizer.authorize(request("dev/app"), ldapPrincipal)).toBeNull();
    expect(authorizer.authorize(request("dev/app", { group: ["devs\u0001x"] }), ldapPrincipal)).toBeNull();
  });

  it("a caller mutating an answer does not change the cached one", () => {
    const s = setup();
    const first = s.ask("team/app") as string[];
    first.push("delete");
    expect(s.ask("team/app")).toEqual(["pull", "push"]);
  });
});
