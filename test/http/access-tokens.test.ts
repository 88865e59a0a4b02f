/**
 * Access tokens and robots at the token endpoint (issue 10 items 3, 4 and 6), in process: the
 * token as the Basic password with any user name, the owner's current rights ∩ the token, no
 * refresh token, robots only by token, and the audit events these requests leave.
 */
import { describe, expect, it, spyOn } from "bun:test";
import {
  createAccessToken,
  deleteAccessToken,
  generateAccessTokenSecret,
  type TokenScope,
} from "../../src/access-tokens/index.ts";
import { grant, revoke } from "../../src/accounts/permissions.ts";
import { createUser, setEnabled } from "../../src/accounts/users.ts";
import { log } from "../../src/log.ts";
import { createRobot } from "../../src/robots/index.ts";
import { quickHash, testAccountsApp } from "../accounts-helpers.ts";
import { basic, req, verifyToken } from "../helpers.ts";

const NOW = Math.floor(Date.now() / 1000);
type App = Awaited<ReturnType<typeof testAccountsApp>>;

async function token(
  t: App,
  scopes: string[],
  authorization: string | null,
  extra: Record<string, string> = {},
): Promise<{
  status: number;
  access: { name: string; type: string; actions: string[] }[];
  json: Record<string, unknown>;
  sub: string;
}> {
  const query = new URLSearchParams({ service: "registry", ...extra });
  for (const scope of scopes) query.append("scope", scope);
  const res = await t.app.handle(
    req(`/auth?${query}`, { headers: authorization ? { authorization, "x-real-ip": "198.51.100.20" } : {} }),
  );
  const json = (await res.json()) as Record<string, unknown>;
  if (res.status !== 200) return { status: res.status, access: [], json, sub: "" };
  const { claims } = await verifyToken(json.token as string, t.loaded, "registry");
  return { status: 200, access: claims.access, json, sub: claims.sub };
}

const actionsOf = (access: { name: string; actions: string[] }[], name: string) =>
  access.find((a) => a.name === name)?.actions ?? [];

async function setup() {
  const t = await testAccountsApp({
    server: { real_ip_header: "X-Real-IP" },
    users: { carol: { password: quickHash("carol-password") } },
    acl: [{ match: { account: "carol" }, actions: ["pull"] }],
  });
  createUser(t.db, { name: "alice", passwordHash: quickHash("alice-password"), nowUnix: NOW });
  grant(t.db, { kind: "user", name: "alice" }, "team/*", "write", NOW);
  grant(t.db, { kind: "user", name: "alice" }, "ops/*", "admin", NOW);
  const key = t.issuer.accessTokenKey;
  if (!key) throw new Error("no access token key");
  const make = (
    scopes: TokenScope[],
    patterns: string[],
    over: { owner?: string; name?: string; expiresAtUnix?: number } = {},
  ) =>
    createAccessToken(t.db, key, {
      owner: over.owner ?? "alice",
      name: over.name ?? `t${Math.random()}`,
      scopes,
      repositoryPatterns: patterns,
      expiresAtUnix: over.expiresAtUnix ?? null,
      nowUnix: NOW,
    });
  return { t, make };
}

describe("logging in with an access token", () => {
  it("works with any user name; the token decides who it is (sub = owner)", async () => {
    const { t, make } = await setup();
    const { secret } = make(["push"], ["team/*"]);
    for (const name of ["alice", "anything", "ci-bot", "x"]) {
      const r = await token(t, ["repository:team/app:pull,push"], basic(name, secret), { account: name });
      expect(r.status).toBe(200);
      expect(r.sub).toBe("alice");
      expect(actionsOf(r.access, "team/app")).toEqual(["pull", "push"]);
    }
  });

  it("is the owner's current rights ∩ the token's scopes and patterns", async () => {
    const { t, make } = await setup();
    const pull = make(["pull"], ["*"]).secret;
    const push = make(["push"], ["team/*"]).secret;
    const del = make(["delete"], ["*"]).secret;
    const scopes = [
      "repository:team/app:pull,push,delete",
      "repository:ops/tool:pull,push,delete",
      "repository:alice/own:pull,push,delete",
      "repository:other/x:pull",
    ];
    const p = await token(t, scopes, basic("u", pull));
    expect(p.access.map((a) => [a.name, a.actions])).toEqual([
      ["team/app", ["pull"]],
      ["ops/tool", ["pull"]],
      ["alice/own", ["pull"]],
      ["other/x", []],
    ]);
    const w = await token(t, scopes, basic("u", push));
    expect(w.access.map((a) => [a.name, a.actions])).toEqual([
      ["team/app", ["pull", "push"]],
      ["ops/tool", []],
      ["alice/own", []],
      ["other/x", []],
    ]);
    const d = await token(t, scopes, basic("u", del));
    expect(d.access.map((a) => [a.name, a.actions])).toEqual([
      ["team/app", ["pull", "push"]], // the owner has write on team/*: the token never exceeds it
      ["ops/tool", ["delete", "pull", "push"]],
      ["alice/own", ["delete", "pull", "push"]], // personal namespace
      ["other/x", []],
    ]);
  });

  it("an api-only token grants nothing at the registry; the catalog needs delete on *", async () => {
    const { t, make } = await setup();
    createUser(t.db, { name: "root", passwordHash: quickHash("root-password"), isAdmin: true, nowUnix: NOW });
    const api = make(["api"], ["*"], { owner: "root" }).secret;
    const r = await token(t, ["repository:team/app:pull", "registry:catalog:*"], basic("root", api));
    expect(r.status).toBe(200);
    expect(r.access.every((a) => a.actions.length === 0)).toBe(true);
    const full = make(["delete"], ["*"], { owner: "root" }).secret;
    expect(
      actionsOf((await token(t, ["registry:catalog:*"], basic("root", full))).access, "catalog"),
    ).toEqual(["*"]);
    const partial = make(["delete"], ["team/*"], { owner: "root" }).secret;
    expect(
      actionsOf((await token(t, ["registry:catalog:*"], basic("root", partial))).access, "catalog"),
    ).toEqual([]);
  });

  it("a grant revoked from the owner is gone from the token at the next request", async () => {
    const { t, make } = await setup();
    const { secret } = make(["push"], ["team/*"]);
    expect(
      actionsOf((await token(t, ["repository:team/app:push"], basic("u", secret))).access, "team/app"),
    ).toEqual(["push"]);
    revoke(t.db, { kind: "user", name: "alice" }, "team/*");
    const r = await token(t, ["repository:team/app:push"], basic("u", secret));
    expect(r.status).toBe(200);
    expect(actionsOf(r.access, "team/app")).toEqual([]);
  });

  it("a wrong, expired or revoked token, or a disabled owner, is a 401 (and no argon2/bcrypt is spent)", async () => {
    const { t, make } = await setup();
    const valid = make(["pull"], ["*"]);
    // Two seconds from now, not from when this file was loaded (a loaded machine takes longer).
    const expiring = make(["pull"], ["*"], { expiresAtUnix: Math.floor(Date.now() / 1000) + 2 });
    const verify = spyOn(Bun.password, "verify");
    try {
      const revoked = make(["pull"], ["*"]);
      deleteAccessToken(t.db, revoked.token.id);
      expect((await token(t, ["repository:team/app:pull"], basic("alice", revoked.secret))).status).toBe(401);
      // Well-formed (prefix and checksum) but never issued.
      expect(
        (await token(t, ["repository:team/app:pull"], basic("alice", generateAccessTokenSecret()))).status,
      ).toBe(401);
      expect(verify).toHaveBeenCalledTimes(0);
    } finally {
      verify.mockRestore();
    }
    expect((await token(t, [], basic("x", expiring.secret))).status).toBe(200);
    const issuerNow = t.issuer.nowSeconds;
    // The authenticator reads the clock it was built with; move past the expiry by waiting.
    await Bun.sleep(3100);
    const expired = await token(t, [], basic("x", expiring.secret));
    expect(expired.status).toBe(401);
    expect(JSON.stringify(expired.json)).toContain("expired");
    expect(issuerNow()).toBeGreaterThan(NOW);
    setEnabled(t.db, "alice", false);
    const disabled = await token(t, [], basic("x", valid.secret));
    expect(disabled.status).toBe(401);
    expect(JSON.stringify(disabled.json)).toContain("disabled");
  });

  it("an account parameter naming someone else is not held against a token (the token decides)", async () => {
    const { t, make } = await setup();
    const { secret } = make(["pull"], ["team/*"]);
    const r = await token(t, ["repository:team/app:pull"], basic("ci", secret), { account: "bob" });
    expect(r.status).toBe(200);
    expect(r.sub).toBe("alice");
    // A password login still must match its account parameter.
    expect((await token(t, [], basic("alice", "alice-password"), { account: "bob" })).status).toBe(400);
  });

  it("wrong tokens are failed logins: throttled per address and claimed name (429)", async () => {
    const { t } = await setup();
    const statuses: number[] = [];
    for (let i = 0; i < 14; i++)
      statuses.push((await token(t, [], basic("ci", generateAccessTokenSecret()))).status);
    expect(statuses.slice(0, 10).every((s) => s === 401)).toBe(true);
    expect(statuses.at(-1)).toBe(429);
  });

  it("never gets a refresh token, also when asked", async () => {
    const { t, make } = await setup();
    const { secret } = make(["pull"], ["*"]);
    const r = await token(t, ["repository:team/app:pull"], basic("alice", secret), { offline_token: "true" });
    expect(r.status).toBe(200);
    expect(r.json.refresh_token).toBeUndefined();
    // The owner's password still gets one.
    const p = await token(t, [], basic("alice", "alice-password"), { offline_token: "true" });
    expect(typeof p.json.refresh_token).toBe("string");
  });

  it("a token-looking password never reaches a config user or hashing", async () => {
    const { t, make } = await setup();
    const { secret } = make(["pull"], ["*"]);
    // carol is a config user; the token is alice's: the token decides, carol's ACL never applies.
    const r = await token(t, ["repository:team/app:pull"], basic("carol", secret));
    expect(r.sub).toBe("alice");
  });
});

describe("robot accounts at the token endpoint", () => {
  it("log in only with their tokens, never with a password, and own no personal namespace", async () => {
    const { t, make } = await setup();
    createRobot(t.db, { ownerNamespace: "team", name: "ci", description: "", nowUnix: NOW });
    grant(t.db, { kind: "user", name: "team+ci" }, "team/*", "write", NOW);
    const { secret } = make(["push"], ["*"], { owner: "team+ci" });
    const r = await token(
      t,
      ["repository:team/app:pull,push", "repository:team/ci/x:pull,push", "repository:other/x:pull"],
      basic("whatever", secret),
    );
    expect(r.status).toBe(200);
    expect(r.sub).toBe("team+ci");
    expect(actionsOf(r.access, "team/app")).toEqual(["pull", "push"]);
    expect(actionsOf(r.access, "other/x")).toEqual([]);
    for (const password of ["!", "", "x", secret.slice(0, -1)]) {
      expect((await token(t, [], basic("team+ci", password))).status).toBe(401);
    }
  });

  it("can never be registered by docker login, even with registration open", async () => {
    const t = await testAccountsApp({
      registration: { mode: "open" },
      accounts: { personal_namespaces: false },
    });
    createRobot(t.db, { ownerNamespace: "team", name: "ci", description: "", nowUnix: NOW });
    expect((await token(t, [], basic("team+ci", "a-long-password"))).status).toBe(401);
    expect((await token(t, [], basic("team+deploy", "a-long-password"))).status).toBe(401);
    expect(t.db.query("SELECT name, kind FROM users").all()).toEqual([{ name: "team+ci", kind: "robot" }]);
  });
});

describe("the audit log of the token path", () => {
  it("records a denied push with who, what was asked and granted, without debug logging and without secrets", async () => {
    const { t, make } = await setup();
    const lines: string[] = [];
    const restore = log.capture(lines);
    log.setLevel("info");
    const { secret } = make(["pull"], ["team/*"]);
    try {
      await token(t, ["repository:team/app:pull,push"], basic("alice", "alice-password"), {
        client_id: "docker",
      });
      await token(t, ["repository:team/app:pull,push"], basic("ci", secret));
      await token(t, ["repository:team/app:pull"], basic("alice", "wrong-password"));
      await token(t, ["repository:team/app:pull"], basic("alice", generateAccessTokenSecret()));
    } finally {
      restore();
    }
    const audit = t.issuer.audit?.log;
    if (!audit) throw new Error("no audit log");
    await audit.flush();
    const events = audit.query({ limit: 100 });
    const tokens = events.filter((e) => e.kind === "token");
    expect(tokens.map((e) => [e.actor, e.outcome, e.repository])).toEqual([
      ["alice", "ok", "team/app"],
      ["alice", "denied", "team/app"],
    ]);
    expect(tokens[0]?.details).toMatchObject({
      service: "registry",
      authenticator: "database",
      requested: ["repository:team/app:pull,push"],
      granted: ["repository:team/app:pull,push"],
      client_id: "docker",
    });
    expect(tokens[1]?.details).toMatchObject({
      authenticator: "access-token",
      requested: ["repository:team/app:pull,push"],
      granted: ["repository:team/app:pull"],
      claimed_account: "ci",
    });
    expect(tokens[1]?.ip).toBe("198.51.100.20");
    const logins = events.filter((e) => e.kind === "login");
    expect(logins.map((e) => [e.actor, e.outcome, e.details.authenticator])).toEqual([
      ["alice", "ok", "database"],
      ["alice", "ok", "access-token"],
      ["alice", "denied", "database"],
      ["alice", "denied", "access-token"],
    ]);
    expect(events.some((e) => e.kind === "access-token.used")).toBe(true);
    const stored = JSON.stringify(t.db.query("SELECT * FROM audit_events").all());
    for (const s of [secret, secret.slice(12, 40), "alice-password", "wrong-password", "$2"])
      expect(stored).not.toContain(s);
    expect(lines.join("\n")).not.toContain(secret);
  });

  it("identical token decisions within a second are one audit event with a count", async () => {
    const t = await testAccountsApp({});
    createUser(t.db, { name: "alice", passwordHash: quickHash("alice-password"), nowUnix: NOW });
    grant(t.db, { kind: "user", name: "alice" }, "team/*", "read", NOW);
    for (let i = 0; i < 3; i++)
      await token(t, ["repository:team/app:pull"], basic("alice", "alice-password"));
    await token(t, ["repository:team/app:push"], basic("alice", "alice-password"));
    await t.issuer.audit?.log.flush();
    const events = t.issuer.audit?.log.query({ limit: 10, kind: "token" }) ?? [];
    expect(events.map((e) => [e.outcome, e.details.count])).toEqual([
      ["ok", 3],
      ["denied", undefined],
    ]);
  });

  it("token_decisions: denied records only refusals; none records none", async () => {
    for (const [mode, expected] of [
      ["denied", ["denied"]],
      ["none", []],
    ] as const) {
      const t = await testAccountsApp({ audit: { token_decisions: mode } });
      createUser(t.db, { name: "alice", passwordHash: quickHash("alice-password"), nowUnix: NOW });
      grant(t.db, { kind: "user", name: "alice" }, "team/*", "read", NOW);
      await token(t, ["repository:team/app:pull"], basic("alice", "alice-password"));
      await token(t, ["repository:team/app:push"], basic("alice", "alice-password"));
      await t.issuer.audit?.log.flush();
      expect(t.issuer.audit?.log.query({ limit: 10, kind: "token" }).map((e) => e.outcome)).toEqual([
        ...expected,
      ]);
    }
  });
});
