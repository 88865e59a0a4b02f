/**
 * The authorization matrix for access tokens and robots (issue 10 item 2; security.md §7.3
 * C6–C8): reading or revoking another user's token by id is a 404 like a missing one, a
 * non-api token cannot drive the API, disabled and deleted owners' tokens are 401, namespace
 * admins manage only their namespace's robots. Each refusal leaves tokens, robots and grants as
 * they were.
 */
import { beforeEach, describe, expect, it } from "bun:test";
import { createAccessToken, listAccessTokens } from "../../src/access-tokens/index.ts";
import { addMember, createGroup } from "../../src/accounts/groups.ts";
import { grant, listPermissions } from "../../src/accounts/permissions.ts";
import { createUser, deleteUser, setEnabled } from "../../src/accounts/users.ts";
import { createRobot, listRobots } from "../../src/robots/index.ts";
import { quickHash } from "../accounts-helpers.ts";
import { type ApiApp, call, testApiApp } from "../api-helpers.ts";

const NOW = Math.floor(Date.now() / 1000);

interface Fixture {
  t: ApiApp;
  secrets: Record<string, string>;
  ids: Record<string, number>;
}

async function setUp(): Promise<Fixture> {
  const t = await testApiApp();
  for (const [name, admin] of [
    ["root", true],
    ["alice", false],
    ["bob", false],
    ["tessa", false],
    ["dave", false],
    ["gone", false],
  ] as const)
    createUser(t.db, { name, passwordHash: quickHash(`${name}-password`), isAdmin: admin, nowUnix: NOW });
  createGroup(t.db, "team-admins", NOW);
  addMember(t.db, "team-admins", "tessa");
  grant(t.db, { kind: "group", name: "team-admins" }, "team/*", "admin", NOW);
  createRobot(t.db, { ownerNamespace: "team", name: "ci", description: "", nowUnix: NOW });
  createRobot(t.db, { ownerNamespace: "other", name: "ci", description: "", nowUnix: NOW });
  createRobot(t.db, { ownerNamespace: null, name: "backup", description: "", nowUnix: NOW });
  const secrets: Record<string, string> = {};
  const ids: Record<string, number> = {};
  const mint = (label: string, owner: string, scopes: ("pull" | "push" | "delete" | "api")[]) => {
    const { token, secret } = createAccessToken(t.db, t.accessTokenKey, {
      owner,
      name: label,
      scopes,
      repositoryPatterns: ["*"],
      expiresAtUnix: null,
      nowUnix: NOW,
    });
    secrets[label] = secret;
    ids[label] = token.id;
  };
  mint("alice-api", "alice", ["api"]);
  mint("alice-push", "alice", ["push"]);
  mint("bob-api", "bob", ["api"]);
  mint("tessa-api", "tessa", ["api"]);
  mint("dave-api", "dave", ["api"]);
  mint("gone-api", "gone", ["api"]);
  mint("team-robot", "team+ci", ["push"]);
  mint("other-robot", "other+ci", ["push"]);
  setEnabled(t.db, "dave", false);
  // The deleted user's token goes with the account (ON DELETE CASCADE); keep its secret to try.
  deleteUser(t.db, "gone", NOW);
  return { t, secrets, ids };
}

function snapshot(t: ApiApp): string {
  return JSON.stringify({
    tokens: listAccessTokens(t.db).map((x) => [x.id, x.owner, x.name, x.scopes]),
    robots: listRobots(t.db).map((r) => r.name),
    grants: listPermissions(t.db).map((p) => [JSON.stringify(p.grantee), p.pattern, p.level]),
  });
}

type Auth = [string, string] | { token: string } | null;

interface Row {
  caller: string;
  auth: (f: Fixture) => Auth;
  what: string;
  method: string;
  path: (f: Fixture) => string;
  body?: unknown;
  status: number;
}

const password = (name: string) => (): Auth => [name, `${name}-password`];
const token =
  (label: string) =>
  (f: Fixture): Auth => ({ token: f.secrets[label] ?? "" });
const fixed = (path: string) => () => path;
const tokenPath = (label: string) => (f: Fixture) => `/tokens/${f.ids[label]}`;
const newToken = { name: "new", scopes: ["pull"], repository_patterns: ["*"] };

const rows: Row[] = [
  {
    caller: "api token",
    auth: token("alice-api"),
    what: "me",
    method: "GET",
    path: fixed("/me"),
    status: 200,
  },
  {
    caller: "push token",
    auth: token("alice-push"),
    what: "me",
    method: "GET",
    path: fixed("/me"),
    status: 403,
  },
  {
    caller: "robot token",
    auth: token("team-robot"),
    what: "me",
    method: "GET",
    path: fixed("/me"),
    status: 401,
  },
  {
    caller: "disabled user's token",
    auth: token("dave-api"),
    what: "me",
    method: "GET",
    path: fixed("/me"),
    status: 401,
  },
  {
    caller: "deleted user's token",
    auth: token("gone-api"),
    what: "me",
    method: "GET",
    path: fixed("/me"),
    status: 401,
  },
  {
    caller: "a forged token",
    auth: () => ({ token: "regauth_pat_0000000000000000000000000000000000000" }),
    what: "me",
    method: "GET",
    path: fixed("/me"),
    status: 401,
  },
  {
    caller: "anonymous",
    auth: () => null,
    what: "list tokens",
    method: "GET",
    path: fixed("/tokens"),
    status: 401,
  },
  {
    caller: "alice",
    auth: password("alice"),
    what: "list own tokens",
    method: "GET",
    path: fixed("/tokens"),
    status: 200,
  },
  {
    caller: "alice",
    auth: password("alice"),
    what: "list bob's tokens",
    method: "GET",
    path: fixed("/tokens?owner=bob"),
    status: 404,
  },
  {
    caller: "alice",
    auth: password("alice"),
    what: "create a token",
    method: "POST",
    path: fixed("/tokens"),
    body: newToken,
    status: 201,
  },
  {
    caller: "alice (api token)",
    auth: token("alice-api"),
    what: "create an api token",
    method: "POST",
    path: fixed("/tokens"),
    body: { ...newToken, scopes: ["api"] },
    status: 201,
  },
  {
    caller: "alice",
    auth: password("alice"),
    what: "create a token for bob",
    method: "POST",
    path: fixed("/tokens"),
    body: { ...newToken, owner: "bob" },
    status: 404,
  },
  {
    caller: "alice",
    auth: password("alice"),
    what: "create a token for a robot",
    method: "POST",
    path: fixed("/tokens"),
    body: { ...newToken, owner: "team+ci" },
    status: 404,
  },
  {
    caller: "alice",
    auth: password("alice"),
    what: "revoke bob's token by id",
    method: "DELETE",
    path: tokenPath("bob-api"),
    status: 404,
  },
  {
    caller: "alice (api token)",
    auth: token("alice-api"),
    what: "revoke bob's token by id",
    method: "DELETE",
    path: tokenPath("bob-api"),
    status: 404,
  },
  {
    caller: "alice",
    auth: password("alice"),
    what: "revoke a robot's token",
    method: "DELETE",
    path: tokenPath("team-robot"),
    status: 404,
  },
  {
    caller: "alice",
    auth: password("alice"),
    what: "revoke own token",
    method: "DELETE",
    path: tokenPath("alice-push"),
    status: 200,
  },
  {
    caller: "root",
    auth: password("root"),
    what: "revoke bob's token",
    method: "DELETE",
    path: tokenPath("bob-api"),
    status: 200,
  },
  {
    caller: "alice",
    auth: password("alice"),
    what: "list robots",
    method: "GET",
    path: fixed("/robots"),
    status: 403,
  },
  {
    caller: "alice",
    auth: password("alice"),
    what: "create a robot",
    method: "POST",
    path: fixed("/robots"),
    body: { name: "x", namespace: "team" },
    status: 403,
  },
  {
    caller: "alice",
    auth: password("alice"),
    what: "read a robot",
    method: "GET",
    path: fixed("/robots/team+ci"),
    status: 404,
  },
  {
    caller: "nsadmin",
    auth: password("tessa"),
    what: "list robots",
    method: "GET",
    path: fixed("/robots"),
    status: 200,
  },
  {
    caller: "nsadmin",
    auth: password("tessa"),
    what: "list another namespace's robots",
    method: "GET",
    path: fixed("/robots?namespace=other"),
    status: 403,
  },
  {
    caller: "nsadmin",
    auth: password("tessa"),
    what: "create a robot of team",
    method: "POST",
    path: fixed("/robots"),
    body: { name: "deploy", namespace: "team" },
    status: 201,
  },
  {
    caller: "nsadmin",
    auth: token("tessa-api"),
    what: "create a robot of team (api token)",
    method: "POST",
    path: fixed("/robots"),
    body: { name: "deploy", namespace: "team" },
    status: 201,
  },
  {
    caller: "nsadmin",
    auth: password("tessa"),
    what: "create a robot of other",
    method: "POST",
    path: fixed("/robots"),
    body: { name: "deploy", namespace: "other" },
    status: 403,
  },
  {
    caller: "nsadmin",
    auth: password("tessa"),
    what: "create a registry robot",
    method: "POST",
    path: fixed("/robots"),
    body: { name: "deploy" },
    status: 403,
  },
  {
    caller: "nsadmin",
    auth: password("tessa"),
    what: "read another namespace's robot",
    method: "GET",
    path: fixed("/robots/other+ci"),
    status: 404,
  },
  {
    caller: "nsadmin",
    auth: password("tessa"),
    what: "delete another namespace's robot",
    method: "DELETE",
    path: fixed("/robots/other+ci"),
    status: 404,
  },
  {
    caller: "nsadmin",
    auth: password("tessa"),
    what: "delete a registry robot",
    method: "DELETE",
    path: fixed("/robots/regauth+backup"),
    status: 404,
  },
  {
    caller: "nsadmin",
    auth: password("tessa"),
    what: "delete own robot",
    method: "DELETE",
    path: fixed("/robots/team+ci"),
    status: 200,
  },
  {
    caller: "nsadmin",
    auth: password("tessa"),
    what: "token for own robot",
    method: "POST",
    path: fixed("/robots/team+ci/tokens"),
    body: newToken,
    status: 201,
  },
  {
    caller: "nsadmin",
    auth: password("tessa"),
    what: "api token for own robot",
    method: "POST",
    path: fixed("/robots/team+ci/tokens"),
    body: { ...newToken, scopes: ["api"] },
    status: 403,
  },
  {
    caller: "root",
    auth: password("root"),
    what: "api token for a robot",
    method: "POST",
    path: fixed("/robots/regauth+backup/tokens"),
    body: { ...newToken, scopes: ["api"] },
    status: 403,
  },
  {
    caller: "nsadmin",
    auth: password("tessa"),
    what: "token for another namespace's robot",
    method: "POST",
    path: fixed("/robots/other+ci/tokens"),
    body: newToken,
    status: 404,
  },
  {
    caller: "nsadmin",
    auth: password("tessa"),
    what: "list own robot's tokens",
    method: "GET",
    path: fixed("/tokens?owner=team%2Bci"),
    status: 200,
  },
  {
    caller: "nsadmin",
    auth: password("tessa"),
    what: "list another robot's tokens",
    method: "GET",
    path: fixed("/tokens?owner=other%2Bci"),
    status: 404,
  },
  {
    caller: "nsadmin",
    auth: password("tessa"),
    what: "revoke own robot's token",
    method: "DELETE",
    path: tokenPath("team-robot"),
    status: 200,
  },
  {
    caller: "nsadmin",
    auth: password("tessa"),
    what: "revoke another robot's token",
    method: "DELETE",
    path: tokenPath("other-robot"),
    status: 404,
  },
  {
    caller: "nsadmin",
    auth: password("tessa"),
    what: "grant own robot write inside team",
    method: "POST",
    path: fixed("/permissions"),
    body: { grantee: "team+ci", pattern: "team/app", level: "write" },
    status: 201,
  },
  {
    caller: "nsadmin",
    auth: password("tessa"),
    what: "grant another namespace's robot inside team",
    method: "POST",
    path: fixed("/permissions"),
    body: { grantee: "other+ci", pattern: "team/app", level: "write" },
    status: 403,
  },
  {
    caller: "nsadmin",
    auth: password("tessa"),
    what: "grant own robot outside team",
    method: "POST",
    path: fixed("/permissions"),
    body: { grantee: "team+ci", pattern: "other/app", level: "read" },
    status: 403,
  },
  {
    caller: "root",
    auth: password("root"),
    what: "list all tokens",
    method: "GET",
    path: fixed("/tokens"),
    status: 200,
  },
  {
    caller: "root",
    auth: password("root"),
    what: "create a registry robot",
    method: "POST",
    path: fixed("/robots"),
    body: { name: "deploy" },
    status: 201,
  },
  {
    caller: "root",
    auth: password("root"),
    what: "read the audit log",
    method: "GET",
    path: fixed("/audit"),
    status: 200,
  },
  {
    caller: "robot (Basic with token)",
    auth: () => ["team+ci", "anything"],
    what: "me with a robot's name",
    method: "GET",
    path: fixed("/me"),
    status: 401,
  },
];

describe("access tokens and robots: authorization matrix", () => {
  let f: Fixture;
  beforeEach(async () => {
    f = await setUp();
  });

  for (const row of rows) {
    it(`${row.caller}: ${row.what} → ${row.status}`, async () => {
      const before = snapshot(f.t);
      const auth = row.auth(f);
      const r = await call(f.t, row.method, row.path(f), {
        auth: auth === null ? null : Array.isArray(auth) ? auth : auth.token,
        ...(row.body !== undefined ? { body: row.body } : {}),
      });
      expect({ status: r.status, body: r.body }).toMatchObject({ status: row.status });
      if (r.status >= 400) expect(snapshot(f.t)).toBe(before);
    });
  }

  it("another user's token id and a missing id get the same answer, word for word", async () => {
    const other = await call(f.t, "DELETE", `/tokens/${f.ids["bob-api"]}`, {
      auth: ["alice", "alice-password"],
    });
    const missing = await call(f.t, "DELETE", "/tokens/999999", { auth: ["alice", "alice-password"] });
    expect(other.status).toBe(404);
    expect(other.body.errors?.[0]?.message).toBe(`no access token ${f.ids["bob-api"]}`);
    expect(missing.body.errors?.[0]?.message).toBe("no access token 999999");
  });

  it("a token is shown once with its secret; the list never has it; the audit never has it", async () => {
    const r = await call(f.t, "POST", "/tokens", { auth: ["alice", "alice-password"], body: newToken });
    expect(r.status).toBe(201);
    const secret = r.body.secret as string;
    expect(secret).toStartWith("regauth_pat_");
    const list = await call(f.t, "GET", "/tokens", { auth: ["alice", "alice-password"] });
    expect(JSON.stringify(list.body)).not.toContain(secret);
    expect(JSON.stringify(f.t.audit.events)).not.toContain(secret);
    expect(f.t.audit.events.at(-1)).toMatchObject({ kind: "access-token.created", actor: "alice" });
    // The new token works for the API only with the api scope: this one has pull.
    expect((await call(f.t, "GET", "/me", { auth: secret })).status).toBe(403);
  });

  it("a revoked token stops working at once", async () => {
    const secret = f.secrets["alice-api"] ?? "";
    expect((await call(f.t, "GET", "/me", { auth: secret })).status).toBe(200);
    expect((await call(f.t, "DELETE", `/tokens/${f.ids["alice-api"]}`, { auth: secret })).status).toBe(200);
    expect((await call(f.t, "GET", "/me", { auth: secret })).status).toBe(401);
  });

  it("API use of a token records its last use like registry use does", async () => {
    expect((await call(f.t, "GET", "/me", { auth: f.secrets["alice-api"] ?? "" })).status).toBe(200);
    await f.t.audit.log.flush();
    const used = f.t.audit.events.filter((e) => e.kind === "access-token.used");
    expect(used.map((e) => e.actor)).toContain("alice");
    const row = f.t.db
      .query<{ last_used_at_unix: number }, [number]>(
        "SELECT last_used_at_unix FROM access_tokens WHERE id = ?",
      )
      .get(f.ids["alice-api"] ?? 0);
    expect(row?.last_used_at_unix).toBeGreaterThan(0);
  });

  it("a token works as the Basic password with any user name (docker clients send it so)", async () => {
    const r = await call(f.t, "GET", "/me", { auth: ["whoever", f.secrets["alice-api"] ?? ""] });
    expect(r.status).toBe(200);
    expect((r.body.user as { name: string }).name).toBe("alice");
    expect(r.body.authenticated_by).toBe("access-token");
  });

  it("a namespace admin's robot list holds only their namespace's robots", async () => {
    const r = await call(f.t, "GET", "/robots", { auth: ["tessa", "tessa-password"] });
    expect((r.body.items as { name: string }[]).map((x) => x.name)).toEqual(["team+ci"]);
  });

  it("robots are not people: listed apart, and never promoted", async () => {
    const users = await call(f.t, "GET", "/users", { auth: ["root", "root-password"] });
    expect((users.body.items as { name: string }[]).map((u) => u.name)).not.toContain("team+ci");
    const promote = await call(f.t, "PATCH", "/users/team+ci", {
      auth: ["root", "root-password"],
      body: { admin: true },
    });
    expect(promote.status).toBe(400);
  });
});
