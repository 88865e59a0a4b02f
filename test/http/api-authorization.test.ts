/**
 * The authorization matrix (issue 10 item 2, design §3) as a table: callers × operations, each
 * row asserting the status AND that nothing changed when refused (security.md §7.3 C5–C8,
 * Harbor CVE-2019-16097, CVE-2019-16919, CVE-2022-31667).
 */
import { beforeEach, describe, expect, it } from "bun:test";
import { addMember, createGroup } from "../../src/accounts/groups.ts";
import { grant, listPermissions } from "../../src/accounts/permissions.ts";
import { createUser, deleteUser, findUser, listUsers, setEnabled } from "../../src/accounts/users.ts";
import { quickHash } from "../accounts-helpers.ts";
import { type ApiApp, call, testApiApp } from "../api-helpers.ts";

const NOW = 1_700_000_000;

type Caller = "admin" | "user" | "nsadmin" | "disabled" | "deleted" | "anonymous" | "wrong-password";
const CREDENTIALS: Record<Caller, [string, string] | null> = {
  admin: ["root", "root-password"],
  user: ["alice", "alice-password"],
  nsadmin: ["tessa", "tessa-password"],
  disabled: ["dave", "dave-password"],
  deleted: ["gone", "gone-password"],
  anonymous: null,
  "wrong-password": ["alice", "not-her-password"],
};

/** The database's state that any management change would touch. */
function snapshot(t: ApiApp): string {
  return JSON.stringify({
    users: listUsers(t.db).map((u) => [u.name, u.isAdmin, u.isEnabled, u.passwordHash]),
    permissions: listPermissions(t.db).map((p) => [JSON.stringify(p.grantee), p.pattern, p.level]),
    groups: t.db
      .query("SELECT g.name, m.user_id FROM groups g LEFT JOIN group_members m ON m.group_id = g.id")
      .all(),
    retired: t.db.query("SELECT name FROM retired_names").all(),
  });
}

interface Row {
  caller: Caller;
  what: string;
  method: string;
  path: string;
  body?: unknown;
  status: number;
}

const rows: Row[] = [
  // me
  { caller: "admin", what: "me", method: "GET", path: "/me", status: 200 },
  { caller: "user", what: "me", method: "GET", path: "/me", status: 200 },
  { caller: "anonymous", what: "me", method: "GET", path: "/me", status: 401 },
  { caller: "wrong-password", what: "me", method: "GET", path: "/me", status: 401 },
  { caller: "disabled", what: "me with a disabled account", method: "GET", path: "/me", status: 401 },
  { caller: "deleted", what: "me with a deleted account", method: "GET", path: "/me", status: 401 },
  // users
  { caller: "admin", what: "list users", method: "GET", path: "/users", status: 200 },
  { caller: "user", what: "list users", method: "GET", path: "/users", status: 403 },
  { caller: "nsadmin", what: "list users", method: "GET", path: "/users", status: 403 },
  { caller: "user", what: "read self", method: "GET", path: "/users/alice", status: 200 },
  { caller: "user", what: "read another user", method: "GET", path: "/users/bob", status: 404 },
  { caller: "admin", what: "read another user", method: "GET", path: "/users/bob", status: 200 },
  {
    caller: "user",
    what: "create a user with admin: true",
    method: "POST",
    path: "/users",
    body: { name: "mallory", password: "mallory-password", admin: true },
    status: 403,
  },
  {
    caller: "user",
    what: "create a user with an unknown field",
    method: "POST",
    path: "/users",
    body: { name: "mallory", password: "mallory-password", is_admin: true },
    status: 400,
  },
  {
    caller: "disabled",
    what: "create a user",
    method: "POST",
    path: "/users",
    body: { name: "m2", password: "mallory-password" },
    status: 401,
  },
  {
    caller: "user",
    what: "promote self",
    method: "PATCH",
    path: "/users/alice",
    body: { admin: true },
    status: 403,
  },
  {
    caller: "user",
    what: "promote self via unknown field",
    method: "PATCH",
    path: "/users/alice",
    body: { is_admin: true },
    status: 400,
  },
  {
    caller: "user",
    what: "enable a disabled user",
    method: "PATCH",
    path: "/users/dave",
    body: { enabled: true },
    status: 404,
  },
  {
    caller: "nsadmin",
    what: "promote self",
    method: "PATCH",
    path: "/users/tessa",
    body: { admin: true },
    status: 403,
  },
  { caller: "user", what: "delete another user", method: "DELETE", path: "/users/bob", status: 404 },
  { caller: "user", what: "delete self", method: "DELETE", path: "/users/alice", status: 403 },
  { caller: "admin", what: "delete self", method: "DELETE", path: "/users/root", status: 403 },
  {
    caller: "admin",
    what: "demote self",
    method: "PATCH",
    path: "/users/root",
    body: { admin: false },
    status: 403,
  },
  {
    caller: "admin",
    what: "disable self",
    method: "PATCH",
    path: "/users/root",
    body: { enabled: false },
    status: 403,
  },
  {
    caller: "admin",
    what: "disable a user",
    method: "PATCH",
    path: "/users/alice",
    body: { enabled: false },
    status: 200,
  },
  {
    caller: "admin",
    what: "promote a user",
    method: "PATCH",
    path: "/users/alice",
    body: { admin: true },
    status: 200,
  },
  { caller: "admin", what: "delete a user", method: "DELETE", path: "/users/bob", status: 200 },
  {
    caller: "admin",
    what: "set a user's password",
    method: "PUT",
    path: "/users/bob/password",
    body: { password: "new-password-1" },
    status: 200,
  },
  {
    caller: "admin",
    what: "create a group",
    method: "POST",
    path: "/groups",
    body: { name: "ops" },
    status: 201,
  },
  { caller: "admin", what: "add a member", method: "PUT", path: "/groups/devs/members/alice", status: 200 },
  {
    caller: "admin",
    what: "release a name never retired",
    method: "DELETE",
    path: "/retired-names/never",
    status: 404,
  },
  {
    caller: "admin",
    what: "release a retired name",
    method: "DELETE",
    path: "/retired-names/gone",
    status: 200,
  },
  { caller: "admin", what: "read the audit log", method: "GET", path: "/audit", status: 200 },
  {
    caller: "user",
    what: "set own password without the current one",
    method: "PUT",
    path: "/users/alice/password",
    body: { password: "new-password-1" },
    status: 403,
  },
  {
    caller: "user",
    what: "set own password with a wrong current one",
    method: "PUT",
    path: "/users/alice/password",
    body: { password: "new-password-1", current_password: "wrong-password" },
    status: 403,
  },
  {
    caller: "user",
    what: "set another user's password",
    method: "PUT",
    path: "/users/bob/password",
    body: { password: "new-password-1", current_password: "alice-password" },
    status: 404,
  },
  {
    caller: "user",
    what: "release a retired name",
    method: "DELETE",
    path: "/retired-names/old",
    status: 403,
  },
  // groups
  { caller: "user", what: "list groups", method: "GET", path: "/groups", status: 403 },
  {
    caller: "user",
    what: "create a group",
    method: "POST",
    path: "/groups",
    body: { name: "mine" },
    status: 403,
  },
  { caller: "user", what: "join a group", method: "PUT", path: "/groups/devs/members/alice", status: 403 },
  { caller: "nsadmin", what: "join a group", method: "PUT", path: "/groups/devs/members/tessa", status: 403 },
  { caller: "user", what: "delete a group", method: "DELETE", path: "/groups/devs", status: 403 },
  { caller: "admin", what: "list groups", method: "GET", path: "/groups", status: 200 },
  // permissions
  { caller: "user", what: "list own permissions", method: "GET", path: "/permissions", status: 200 },
  {
    caller: "user",
    what: "grant self more",
    method: "POST",
    path: "/permissions",
    body: { grantee: "alice", pattern: "team/*", level: "admin" },
    status: 403,
  },
  {
    caller: "user",
    what: "grant self write on a repository",
    method: "POST",
    path: "/permissions",
    body: { grantee: "alice", pattern: "other/app", level: "write" },
    status: 403,
  },
  {
    caller: "user",
    what: "revoke another's grant",
    method: "DELETE",
    path: "/permissions?grantee=bob&pattern=team%2F*",
    status: 403,
  },
  {
    caller: "nsadmin",
    what: "grant write inside the namespace",
    method: "POST",
    path: "/permissions",
    body: { grantee: "bob", pattern: "team/app", level: "write" },
    status: 201,
  },
  {
    caller: "nsadmin",
    what: "grant read on a nested namespace",
    method: "POST",
    path: "/permissions",
    body: { grantee: "alice", pattern: "team/sub/*", level: "read" },
    status: 201,
  },
  {
    caller: "nsadmin",
    what: "grant outside the namespace",
    method: "POST",
    path: "/permissions",
    body: { grantee: "bob", pattern: "other/app", level: "read" },
    status: 403,
  },
  {
    caller: "nsadmin",
    what: "grant on a look-alike namespace (teamx/)",
    method: "POST",
    path: "/permissions",
    body: { grantee: "bob", pattern: "teamx/app", level: "read" },
    status: 403,
  },
  {
    caller: "nsadmin",
    what: "grant on the bare namespace name",
    method: "POST",
    path: "/permissions",
    body: { grantee: "bob", pattern: "team", level: "read" },
    status: 403,
  },
  {
    caller: "nsadmin",
    what: "grant on every repository",
    method: "POST",
    path: "/permissions",
    body: { grantee: "bob", pattern: "*", level: "read" },
    status: 403,
  },
  {
    caller: "nsadmin",
    what: "grant admin inside the namespace",
    method: "POST",
    path: "/permissions",
    body: { grantee: "bob", pattern: "team/app", level: "admin" },
    status: 403,
  },
  {
    caller: "nsadmin",
    what: "make the namespace public",
    method: "POST",
    path: "/permissions",
    body: { grantee: "*", pattern: "team/*", level: "read" },
    status: 403,
  },
  {
    caller: "nsadmin",
    what: "demote a fellow namespace admin by re-granting write",
    method: "POST",
    path: "/permissions",
    body: { grantee: "carl", pattern: "team/*", level: "write" },
    status: 403,
  },
  {
    caller: "nsadmin",
    what: "revoke read inside the namespace",
    method: "DELETE",
    path: "/permissions?grantee=bob&pattern=team%2F*",
    status: 200,
  },
  {
    caller: "nsadmin",
    what: "revoke a fellow admin",
    method: "DELETE",
    path: "/permissions?grantee=carl&pattern=team%2F*",
    status: 403,
  },
  {
    caller: "nsadmin",
    what: "revoke outside the namespace",
    method: "DELETE",
    path: "/permissions?grantee=bob&pattern=other%2F*",
    status: 403,
  },
  {
    caller: "admin",
    what: "grant admin anywhere",
    method: "POST",
    path: "/permissions",
    body: { grantee: "bob", pattern: "other/*", level: "admin" },
    status: 201,
  },
  // audit
  { caller: "user", what: "read the audit log", method: "GET", path: "/audit", status: 403 },
  { caller: "nsadmin", what: "read the audit log", method: "GET", path: "/audit", status: 403 },
];

async function setUp(): Promise<ApiApp> {
  const t = await testApiApp();
  const add = (name: string, isAdmin = false) =>
    createUser(t.db, { name, passwordHash: quickHash(`${name}-password`), isAdmin, nowUnix: NOW });
  add("root", true);
  add("alice");
  add("bob");
  add("carl");
  add("tessa");
  add("dave");
  add("gone");
  setEnabled(t.db, "dave", false);
  deleteUser(t.db, "gone", NOW);
  createGroup(t.db, "team-admins", NOW);
  addMember(t.db, "team-admins", "tessa");
  createGroup(t.db, "devs", NOW);
  grant(t.db, { kind: "group", name: "team-admins" }, "team/*", "admin", NOW);
  grant(t.db, { kind: "user", name: "carl" }, "team/*", "admin", NOW);
  grant(t.db, { kind: "user", name: "bob" }, "team/*", "read", NOW);
  grant(t.db, { kind: "user", name: "bob" }, "other/*", "read", NOW);
  return t;
}

describe("authorization matrix", () => {
  let t: ApiApp;
  beforeEach(async () => {
    t = await setUp();
  });

  for (const row of rows) {
    it(`${row.caller}: ${row.what} → ${row.status}`, async () => {
      const before = snapshot(t);
      const auditBefore = t.audit.events.length;
      const r = await call(t, row.method, row.path, {
        auth: CREDENTIALS[row.caller],
        ...(row.body !== undefined ? { body: row.body } : {}),
      });
      expect({ status: r.status, body: r.body }).toMatchObject({ status: row.status });
      if (r.status >= 400) {
        expect(snapshot(t)).toBe(before);
        expect(t.audit.events.length).toBe(auditBefore);
        expect(r.body.errors?.[0]?.message).toBeString();
      } else if (row.method !== "GET") {
        // A change that was allowed happened, and is in the audit log under the caller's name.
        expect(snapshot(t)).not.toBe(before);
        expect(t.audit.events.length).toBe(auditBefore + 1);
        expect(t.audit.events.at(-1)?.actor).toBe(CREDENTIALS[row.caller]?.[0] ?? "");
      }
    });
  }

  it("a plain user's permission list holds only their own grants (and their groups')", async () => {
    const r = await call(t, "GET", "/permissions", { auth: CREDENTIALS.user });
    expect(r.body.items).toEqual([]);
    const bob = await call(t, "GET", "/permissions", { auth: ["bob", "bob-password"] });
    expect((bob.body.items as { grantee: string }[]).map((p) => p.grantee)).toEqual(["bob", "bob"]);
  });

  it("a namespace admin sees the grants inside their namespace, not outside", async () => {
    const r = await call(t, "GET", "/permissions", { auth: CREDENTIALS.nsadmin });
    const patterns = (r.body.items as { pattern: string }[]).map((p) => p.pattern);
    expect(patterns.every((p) => p.startsWith("team/"))).toBe(true);
    expect(patterns).not.toContain("other/*");
  });

  it("changing one's own password with the current one works, and the old password stops working", async () => {
    const r = await call(t, "PUT", "/users/alice/password", {
      auth: CREDENTIALS.user,
      body: { password: "brand-new-password", current_password: "alice-password" },
    });
    expect(r.status).toBe(200);
    expect((await call(t, "GET", "/me", { auth: CREDENTIALS.user })).status).toBe(401);
    expect((await call(t, "GET", "/me", { auth: ["alice", "brand-new-password"] })).status).toBe(200);
    expect(t.audit.events.at(-1)).toMatchObject({ kind: "user.password-changed", actor: "alice" });
    expect(JSON.stringify(t.audit.events)).not.toContain("brand-new-password");
  });

  it("guessing current_password is throttled like a login (429), while the caller's own login still works", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) {
      const r = await call(t, "PUT", "/users/alice/password", {
        auth: CREDENTIALS.user,
        body: { password: "brand-new-password", current_password: `guess-${i}-password` },
      });
      statuses.push(r.status);
    }
    expect(statuses).toContain(429);
    expect(statuses.filter((s) => s !== 403 && s !== 429)).toEqual([]);
    expect((await call(t, "GET", "/me", { auth: CREDENTIALS.user })).status).toBe(200);
  });

  it("a grant by a namespace admin is audited with before and after", async () => {
    await call(t, "POST", "/permissions", {
      auth: CREDENTIALS.nsadmin,
      body: { grantee: "bob", pattern: "team/*", level: "write" },
    });
    expect(t.audit.events.at(-1)).toMatchObject({
      kind: "permission.granted",
      actor: "tessa",
      repository: "team/*",
      details: { before: "read", after: "write" },
    });
    expect(findUser(t.db, "bob")).not.toBeNull();
  });

  it("a disabled account is refused even with its correct password, and nothing tells it apart", async () => {
    const disabled = await call(t, "GET", "/me", { auth: CREDENTIALS.disabled });
    const wrong = await call(t, "GET", "/me", { auth: CREDENTIALS["wrong-password"] });
    expect(disabled.body.errors).toEqual(wrong.body.errors);
  });
});
