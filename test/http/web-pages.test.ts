/**
 * The web interface in-process (issue 14): who may open which page and do what (the API's
 * matrix, compared action by action with /api/v1), CSRF, sessions ending, cookie flags, the
 * CSP on every page, hostile input in every form, and the routes of the rest of the server.
 */
import { describe, expect, it } from "bun:test";
import { findUser } from "../../src/accounts/users.ts";
import { log } from "../../src/log.ts";
import { CONTENT_SECURITY_POLICY } from "../../src/http/pages/plugin.ts";
import { PAGE_ROUTES } from "../../src/http/pages/routes.ts";
import { buildApiApp, managementServices } from "../../src/server.ts";
import { call } from "../api-helpers.ts";
import { basic, req } from "../helpers.ts";
import { PASSWORD, testWebApp, WebClient } from "../web-helpers.ts";

type Role = "root" | "nsadmin" | "alice" | "anonymous";
const ROLES: Role[] = ["root", "nsadmin", "alice", "anonymous"];

async function clientFor(t: Awaited<ReturnType<typeof testWebApp>>, role: Role): Promise<WebClient> {
  const client = new WebClient(t);
  if (role !== "anonymous") expect((await client.signIn(role)).status).toBe(303);
  return client;
}

describe("page authorization (the API's matrix)", () => {
  // Expected status per role for every page a GET opens; 303 = to the sign-in page.
  const pages: [string, Record<Role, number>][] = [
    ["/", { root: 303, nsadmin: 303, alice: 303, anonymous: 303 }],
    ["/account", { root: 200, nsadmin: 200, alice: 200, anonymous: 303 }],
    ["/tokens", { root: 200, nsadmin: 200, alice: 200, anonymous: 303 }],
    ["/permissions", { root: 200, nsadmin: 200, alice: 200, anonymous: 303 }],
    ["/robots", { root: 200, nsadmin: 200, alice: 403, anonymous: 303 }],
    ["/robots/team+ci", { root: 200, nsadmin: 200, alice: 404, anonymous: 303 }],
    ["/robots/regauth+nope", { root: 404, nsadmin: 404, alice: 404, anonymous: 303 }],
    ["/admin/users", { root: 200, nsadmin: 403, alice: 403, anonymous: 303 }],
    ["/admin/groups", { root: 200, nsadmin: 403, alice: 403, anonymous: 303 }],
    ["/admin/audit", { root: 200, nsadmin: 403, alice: 403, anonymous: 303 }],
  ];
  for (const role of ROLES)
    it(`${role}: every page answers as the matrix says, with the CSP`, async () => {
      const t = await testWebApp();
      const client = await clientFor(t, role);
      for (const [path, expected] of pages) {
        const res = await client.get(path);
        expect({ path, status: res.status }).toEqual({ path, status: expected[role] });
        expect(res.headers.get("content-security-policy")).toBe(CONTENT_SECURITY_POLICY);
        expect(res.headers.get("cache-control")).toBe("no-store");
        if (role === "anonymous") expect(res.location).toStartWith("/sign-in?next=");
      }
    });

  it("anonymous forms are sent to sign in, and nothing changes", async () => {
    const t = await testWebApp();
    const client = new WebClient(t);
    for (const route of PAGE_ROUTES.filter((r) => r.method === "POST" && r.needsSession)) {
      const path = route.path.replace(":name", "alice").replace(":id", "1").replace(":action", "disable");
      const res = await client.post(path, { name: "x" }, { csrf: "forged" });
      expect({ path, status: res.status, location: res.location }).toEqual({
        path,
        status: 303,
        location: "/sign-in",
      });
    }
    expect(findUser(t.db, "alice")?.isEnabled).toBe(true);
  });

  // Each action as a form and as the API call it stands for: the same verdict, 303 for 2xx.
  const actions: {
    name: string;
    page: [string, Record<string, string>];
    api: [string, string, Record<string, unknown>?];
  }[] = [
    {
      name: "create a user",
      page: ["/admin/users", { name: "bob", password: PASSWORD }],
      api: ["POST", "/users", { name: "bob", password: PASSWORD }],
    },
    {
      name: "disable alice",
      page: ["/admin/users/alice/disable", {}],
      api: ["PATCH", "/users/alice", { enabled: false }],
    },
    {
      name: "promote alice",
      page: ["/admin/users/alice/promote", {}],
      api: ["PATCH", "/users/alice", { admin: true }],
    },
    { name: "delete alice", page: ["/admin/users/alice/delete", {}], api: ["DELETE", "/users/alice"] },
    {
      name: "grant alice team/* write",
      page: ["/permissions", { grantee: "alice", pattern: "team/*", level: "write" }],
      api: ["POST", "/permissions", { grantee: "alice", pattern: "team/*", level: "write" }],
    },
    {
      name: "grant alice team/* admin",
      page: ["/permissions", { grantee: "alice", pattern: "team/*", level: "admin" }],
      api: ["POST", "/permissions", { grantee: "alice", pattern: "team/*", level: "admin" }],
    },
    {
      name: "grant alice other/* write",
      page: ["/permissions", { grantee: "alice", pattern: "other/*", level: "write" }],
      api: ["POST", "/permissions", { grantee: "alice", pattern: "other/*", level: "write" }],
    },
    {
      name: "make team/* public",
      page: ["/permissions", { grantee: "*", pattern: "team/*", level: "read" }],
      api: ["POST", "/permissions", { grantee: "*", pattern: "team/*", level: "read" }],
    },
    {
      name: "revoke nsadmin's admin",
      page: ["/permissions/revoke", { grantee: "nsadmin", pattern: "team/*" }],
      api: ["DELETE", "/permissions?grantee=nsadmin&pattern=team%2F*"],
    },
    {
      name: "create a group",
      page: ["/admin/groups", { name: "devs" }],
      api: ["POST", "/groups", { name: "devs" }],
    },
    {
      name: "create a team robot",
      page: ["/robots", { name: "deploy", namespace: "team" }],
      api: ["POST", "/robots", { name: "deploy", namespace: "team" }],
    },
    {
      name: "create a registry robot",
      page: ["/robots", { name: "deploy", namespace: "" }],
      api: ["POST", "/robots", { name: "deploy", namespace: null }],
    },
    { name: "delete team+ci", page: ["/robots/team+ci/delete", {}], api: ["DELETE", "/robots/team+ci"] },
    {
      name: "create a token for team+ci",
      page: [
        "/robots/team+ci/tokens",
        { name: "t", scopes: "push", repository_patterns: "team/*", expires: "7" },
      ],
      api: [
        "POST",
        "/robots/team+ci/tokens",
        { name: "t", scopes: ["push"], repository_patterns: ["team/*"] },
      ],
    },
  ];
  for (const role of ["root", "nsadmin", "alice"] as const)
    for (const action of actions)
      it(`${role}: ${action.name} gets the API's verdict`, async () => {
        const pageApp = await testWebApp();
        const client = await clientFor(pageApp, role);
        const page = await client.post(action.page[0], action.page[1]);
        const apiApp = await testWebApp();
        const [method, path, body] = action.api;
        const api = await call(apiApp, method, path, { auth: [role, PASSWORD], ...(body ? { body } : {}) });
        const pageVerdict = page.status === 303 || page.status === 201 ? "allowed" : page.status;
        const apiVerdict = api.status < 300 ? "allowed" : api.status;
        expect({ role, action: action.name, verdict: pageVerdict }).toEqual({
          role,
          action: action.name,
          verdict: apiVerdict,
        });
      });

  it("another user's token is not found, and stays", async () => {
    const t = await testWebApp();
    const root = await clientFor(t, "root");
    const created = await root.post("/tokens", {
      name: "mine",
      scopes: "pull",
      repository_patterns: "*",
      expires: "7",
    });
    expect(created.status).toBe(201);
    const id = /action="\/tokens\/(\d+)\/revoke"/.exec(created.text)?.[1];
    const alice = await clientFor(t, "alice");
    const res = await alice.post(`/tokens/${id}/revoke`, {});
    expect(res.status).toBe(404);
    expect((await root.get("/tokens")).text).toContain(`/tokens/${id}/revoke`);
  });

  it("a robot cannot sign in, not even with its own token", async () => {
    const t = await testWebApp();
    const root = await clientFor(t, "root");
    const page = await root.post("/robots/team+ci/tokens", {
      name: "t",
      scopes: "push",
      repository_patterns: "team/*",
      expires: "7",
    });
    const secret = /regauth_pat_\w+/.exec(page.text)?.[0] ?? "";
    expect(secret).not.toBe("");
    const robot = new WebClient(t);
    expect((await robot.signIn("team+ci", "anything-at-all")).status).toBe(401);
    const byToken = await robot.signIn("team+ci", secret);
    expect(byToken.status).toBe(400);
    expect(byToken.text).toContain("That is an access token");
    expect(robot.cookies.has("regauth_session")).toBe(false);
  });

  it("a config user signs in through the same chain and manages nothing", async () => {
    const t = await testWebApp({
      users: { carol: { password: Bun.password.hashSync(PASSWORD, { algorithm: "bcrypt", cost: 4 }) } },
    });
    const carol = new WebClient(t);
    expect((await carol.signIn("carol")).status).toBe(303);
    const account = await carol.get("/account");
    expect(account.status).toBe(200);
    expect(account.text).toContain("Managed by");
    expect((await carol.get("/tokens")).status).toBe(403);
    expect((await carol.get("/admin/users")).status).toBe(403);
  });
});

describe("CSRF", () => {
  const cases: { name: string; csrf?: string | null; headers?: Record<string, string> }[] = [
    { name: "no token", csrf: null },
    { name: "a wrong token", csrf: "A".repeat(43) },
    { name: "a cross-site Sec-Fetch-Site", headers: { "sec-fetch-site": "cross-site" } },
    { name: "a same-site (other subdomain) Sec-Fetch-Site", headers: { "sec-fetch-site": "same-site" } },
    { name: "another Origin", headers: { origin: "https://evil.example" } },
    { name: "an opaque Origin", headers: { origin: "null" } },
  ];
  for (const c of cases)
    it(`a state change with ${c.name} is 403 and changes nothing`, async () => {
      const t = await testWebApp();
      const root = await clientFor(t, "root");
      const res = await root.post(
        "/admin/users/alice/disable",
        {},
        {
          ...(c.csrf !== undefined ? { csrf: c.csrf } : {}),
          ...(c.headers ? { headers: c.headers } : {}),
        },
      );
      expect(res.status).toBe(403);
      expect(res.headers.get("content-security-policy")).toBe(CONTENT_SECURITY_POLICY);
      expect(findUser(t.db, "alice")?.isEnabled).toBe(true);
    });

  it("one session's token does not work in another", async () => {
    const t = await testWebApp();
    const other = await clientFor(t, "root");
    const root = await clientFor(t, "root");
    expect(other.csrf).not.toBe(root.csrf);
    const res = await root.post("/admin/users/alice/disable", {}, { csrf: other.csrf });
    expect(res.status).toBe(403);
  });

  it("a same-origin form with the page's token works", async () => {
    const t = await testWebApp();
    const root = await clientFor(t, "root");
    const res = await root.post(
      "/admin/users/alice/disable",
      {},
      { headers: { origin: "http://localhost", "sec-fetch-site": "same-origin" } },
    );
    expect(res.status).toBe(303);
    expect(findUser(t.db, "alice")?.isEnabled).toBe(false);
  });

  it("the sign-in form needs its cookie's nonce (login CSRF)", async () => {
    const t = await testWebApp();
    const client = new WebClient(t);
    const res = await client.post("/sign-in", { username: "alice", password: PASSWORD }, { csrf: "made-up" });
    expect(res.status).toBe(403);
    expect(client.cookies.has("regauth_session")).toBe(false);
  });
});

describe("sessions", () => {
  it("the cookie is HttpOnly, SameSite=Strict, on the prefix's path, and a new id at every sign-in", async () => {
    const t = await testWebApp({ server: { path_prefix: "/auth-server" } });
    const client = new WebClient(t, "/auth-server");
    await client.get("/sign-in");
    const first = await client.post("/sign-in", { username: "alice", password: PASSWORD });
    expect(first.status).toBe(303);
    expect(first.location).toBe("/auth-server/");
    const cookie = first.headers.getSetCookie().find((line) => line.startsWith("regauth_session=")) ?? "";
    expect(cookie).toContain("HttpOnly");
    expect(cookie).toContain("SameSite=Strict");
    expect(cookie).toContain("Path=/auth-server;");
    expect(cookie).not.toContain("Secure");
    const id = client.cookies.get("regauth_session");
    // A session id planted before sign-in (fixation) is never the one after it.
    const planted = new WebClient(t, "/auth-server");
    planted.cookies.set("regauth_session", "A".repeat(43));
    await planted.signIn("alice");
    expect(planted.cookies.get("regauth_session")).not.toBe("A".repeat(43));
    expect(planted.cookies.get("regauth_session")).not.toBe(id);
    // The stored value is a hash, never the id.
    const stored = t.db.query<{ id_hash: string }, []>("SELECT id_hash FROM web_sessions").all();
    expect(stored.map((row) => row.id_hash)).not.toContain(id ?? "");
  });

  it("with TLS the cookie is Secure and __Host- at the root, __Secure- under a prefix", async () => {
    const root = await testWebApp({ web: { secure_cookie: true } });
    const atRoot = new WebClient(root);
    const res = await atRoot.signIn("alice");
    expect(res.headers.getSetCookie().find((l) => l.startsWith("__Host-regauth_session="))).toContain(
      "; Secure",
    );
    expect((await atRoot.get("/account")).status).toBe(200);
    const prefixed = await testWebApp({ web: { secure_cookie: true }, server: { path_prefix: "/x" } });
    const under = new WebClient(prefixed, "/x");
    const res2 = await under.signIn("alice");
    expect(res2.headers.getSetCookie().find((l) => l.startsWith("__Secure-regauth_session="))).toContain(
      "Path=/x;",
    );
  });

  it("sign-out ends the session; the old cookie opens nothing", async () => {
    const t = await testWebApp();
    const alice = await clientFor(t, "alice");
    const stolen = new Map(alice.cookies);
    expect((await alice.post("/sign-out", {})).location).toBe("/sign-in?notice=signed-out");
    const replay = new WebClient(t);
    for (const [k, v] of stolen) replay.cookies.set(k, v);
    expect((await replay.get("/account")).status).toBe(303);
  });

  it("changing the password needs the current one, then ends every session", async () => {
    const t = await testWebApp();
    const alice = await clientFor(t, "alice");
    const laptop = await clientFor(t, "alice");
    const wrong = await alice.post("/account/password", {
      current_password: "not it at all",
      password: "a new password",
      password_again: "a new password",
    });
    expect(wrong.status).toBe(403);
    expect(wrong.text).toContain("The current password is wrong");
    const ok = await alice.post("/account/password", {
      current_password: PASSWORD,
      password: "a new password",
      password_again: "a new password",
    });
    expect(ok.status).toBe(303);
    expect(ok.location).toBe("/sign-in?notice=password-changed");
    expect((await alice.get("/account")).status).toBe(303);
    expect((await laptop.get("/account")).status).toBe(303);
    expect((await new WebClient(t).signIn("alice", "a new password")).status).toBe(303);
  });

  const ends: [string, (t: Awaited<ReturnType<typeof testWebApp>>) => Promise<unknown>][] = [
    [
      "disables",
      (t) => call(t, "PATCH", "/users/alice", { auth: ["root", PASSWORD], body: { enabled: false } }),
    ],
    ["deletes", (t) => call(t, "DELETE", "/users/alice", { auth: ["root", PASSWORD] })],
    [
      "sets a new password for",
      (t) =>
        call(t, "PUT", "/users/alice/password", {
          auth: ["root", PASSWORD],
          body: { password: "another password" },
        }),
    ],
  ];
  for (const [what, change] of ends)
    it(`a session ends at once when an administrator ${what} the account`, async () => {
      const t = await testWebApp();
      const alice = await clientFor(t, "alice");
      expect((await alice.get("/tokens")).status).toBe(200);
      await change(t);
      expect((await alice.get("/tokens")).status).toBe(303);
      if (what === "disables") {
        await call(t, "PATCH", "/users/alice", { auth: ["root", PASSWORD], body: { enabled: true } });
        expect((await alice.get("/tokens")).status).toBe(303); // enabling again does not revive it
      }
    });

  it("sign-in goes through the token requests' throttle", async () => {
    const t = await testWebApp();
    const client = new WebClient(t);
    let last = 0;
    for (let i = 0; i < 12; i++) last = (await client.signIn("alice", `wrong password ${i}`)).status;
    expect(last).toBe(429);
    const token = await t.app.handle(
      req("/auth?service=registry", { headers: { authorization: basic("alice", PASSWORD) } }),
    );
    expect(token.status).toBe(429);
    expect((await client.signIn("alice")).status).toBe(429);
  });

  it("a wrong password and an unknown name read alike, and both are in the audit log", async () => {
    const t = await testWebApp();
    const wrong = await new WebClient(t).signIn("alice", "wrong password");
    const unknown = await new WebClient(t).signIn("nobody", "wrong password");
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    const message = (text: string) => /<p class="error"[^>]*>([^<]*)</.exec(text)?.[1];
    expect(message(wrong.text)).toBe(message(unknown.text));
    await t.audit.log.flush();
    const logins = t.audit.events.filter((e) => e.kind === "login");
    expect(logins.map((e) => [e.actor, e.outcome])).toEqual([
      ["alice", "denied"],
      ["nobody", "denied"],
    ]);
  });

  it("sign-ins are logged, one line each, never with the password", async () => {
    const t = await testWebApp();
    const lines: string[] = [];
    const restore = log.capture(lines);
    try {
      await new WebClient(t).signIn("alice", "a wrong secret password");
      await new WebClient(t).signIn("alice");
    } finally {
      restore();
    }
    const signIns = lines.filter((line) => line.includes("web sign-in"));
    expect(signIns).toHaveLength(2);
    expect(signIns[0]).toContain('msg="web sign-in refused" account=alice');
    expect(signIns[1]).toContain('msg="web sign-in" account=alice');
    for (const line of lines) {
      expect(line).not.toContain("a wrong secret password");
      expect(line).not.toContain(PASSWORD);
    }
  });

  it("next= never leaves this interface", async () => {
    const t = await testWebApp();
    for (const next of [
      "//evil.example/",
      "https://evil.example/",
      "/\\evil.example",
      "/sign-out",
      "",
      "/日本",
      "/a b",
      "/x\r\nSet-Cookie: a=b",
    ]) {
      const client = new WebClient(t);
      await client.get(`/sign-in?next=${encodeURIComponent(next)}`);
      const res = await client.post("/sign-in", { username: "alice", password: PASSWORD, next });
      expect({ next, location: res.location }).toEqual({ next, location: "/" });
    }
    const client = new WebClient(t);
    await client.get("/sign-in");
    expect(
      (await client.post("/sign-in", { username: "alice", password: PASSWORD, next: "/tokens?x=1" }))
        .location,
    ).toBe("/tokens?x=1");
  });
});

describe("hostile input", () => {
  const SCRIPT = "<script>alert(1)</script>";

  it("script in names and descriptions is shown as text", async () => {
    const t = await testWebApp();
    const root = await clientFor(t, "root");
    const pages = [
      await root.post("/admin/users", { name: SCRIPT, password: PASSWORD }),
      await root.post("/admin/groups", { name: SCRIPT }),
      await root.post("/robots", { name: SCRIPT, namespace: "team" }),
      await root.post("/permissions", { grantee: SCRIPT, pattern: SCRIPT, level: "read" }),
      await root.post("/tokens", { name: SCRIPT, scopes: "pull", repository_patterns: SCRIPT, expires: "7" }),
      await root.get(`/admin/audit?actor=${encodeURIComponent(SCRIPT)}`),
      await root.get(`/admin/users?q=${encodeURIComponent(SCRIPT)}`),
      await root.get(`/sign-in?next=${encodeURIComponent(SCRIPT)}`),
    ];
    expect((await root.post("/admin/groups", { name: "devs" })).status).toBe(303);
    pages.push(await root.post("/admin/groups/devs/members", { user: SCRIPT }));
    pages.push(await root.post("/admin/groups/devs/members/remove", { user: SCRIPT }));
    pages.push(
      await root.post("/robots/team+ci/tokens", {
        name: SCRIPT,
        scopes: "push",
        repository_patterns: SCRIPT,
        expires: "7",
      }),
    );
    pages.push(
      await root.post("/account/password", {
        current_password: SCRIPT,
        password: SCRIPT,
        password_again: SCRIPT,
      }),
    );
    const signIn = new WebClient(t);
    await signIn.get("/sign-in");
    pages.push(await signIn.post("/sign-in", { username: SCRIPT, password: SCRIPT, next: SCRIPT }));
    const robot = await root.post("/robots", { name: "deploy", namespace: "team", description: SCRIPT });
    expect(robot.status).toBe(303);
    pages.push(await root.get("/robots"));
    const token = await root.post("/tokens", {
      name: `x${SCRIPT}`,
      scopes: "pull",
      repository_patterns: "*",
      expires: "7",
    });
    pages.push(token, await root.get("/tokens"), await root.get("/admin/audit"));
    for (const page of pages) {
      expect(page.status).toBeLessThan(500);
      expect(page.text).not.toContain("<script>alert");
    }
    expect((await root.get("/robots")).text).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
  });

  it("oversized fields are refused with a message next to the field", async () => {
    const t = await testWebApp();
    const root = await clientFor(t, "root");
    const long = "a".repeat(5000);
    const checks: [string, Record<string, string>, string][] = [
      ["/admin/users", { name: long, password: PASSWORD }, "name"],
      ["/admin/users", { name: "bob", password: long }, "password"],
      ["/admin/groups", { name: long }, "name"],
      ["/robots", { name: "ok", namespace: "team", description: long }, "description"],
      ["/permissions", { grantee: "alice", pattern: long, level: "read" }, "pattern"],
      ["/tokens", { name: long, scopes: "pull", repository_patterns: "*", expires: "7" }, "name"],
      ["/account/password", { current_password: PASSWORD, password: long, password_again: long }, "password"],
    ];
    for (const [path, fields, field] of checks) {
      const res = await root.post(path, fields);
      expect({ path, field, status: res.status }).toEqual({ path, field, status: 400 });
      expect(res.text).toMatch(new RegExp(`name="${field}"[^>]*aria-invalid="true"`));
      expect(res.text).toContain('class="error"');
    }
    const signIn = new WebClient(t);
    await signIn.get("/sign-in");
    expect((await signIn.post("/sign-in", { username: long, password: PASSWORD })).status).toBe(400);
  });

  it("unknown and repeated fields, bodies too large, wrong content types: 4xx pages, never 500", async () => {
    const t = await testWebApp();
    const root = await clientFor(t, "root");
    const unknown = await root.post("/admin/users", { name: "bob", password: PASSWORD, is_admin: "1" });
    expect(unknown.status).toBe(400);
    expect(unknown.text).toContain("is_admin: unknown field");
    expect(findUser(t.db, "bob")).toBeNull();
    const repeated = await root.post("/admin/groups", [
      ["name", "a"],
      ["name", "b"],
    ]);
    expect(repeated.status).toBe(400);
    const huge = await root.post("/admin/groups", { name: "x".repeat(70_000) });
    expect(huge.status).toBe(413);
    const json = await root.request("POST", "/admin/groups", {
      body: JSON.stringify({ name: "x", csrf: root.csrf }),
      headers: { "content-type": "application/json" },
    });
    expect(json.status).toBe(415);
    const badId = await root.post("/tokens/abc/revoke", {});
    expect(badId.status).toBe(400);
    const badAction = await root.post("/admin/users/alice/explode", {});
    expect(badAction.status).toBe(400);
    const badScope = await root.post("/tokens", {
      name: "t",
      scopes: "root",
      repository_patterns: "*",
      expires: "7",
    });
    expect(badScope.status).toBe(400);
    const badExpiry = await root.post("/tokens", {
      name: "t",
      scopes: "pull",
      repository_patterns: "*",
      expires: "-1",
    });
    expect(badExpiry.status).toBe(400);
    const badAudit = await root.get("/admin/audit?since=yesterday");
    expect(badAudit.status).toBe(400);
    const unknownFilter = await root.get("/admin/audit?drop=1");
    expect(unknownFilter.status).toBe(400);
    expect((await root.get("/admin/users?state=bogus")).status).toBe(400);
    expect((await root.get(`/robots/${"x".repeat(10_000)}`)).status).toBe(404);
    expect((await root.get(`/permissions?pattern=${"x".repeat(10_000)}`)).status).toBe(200);
    const badCookie = new WebClient(t);
    badCookie.cookies.set("regauth_session", "%%%<script>");
    expect((await badCookie.get("/account")).status).toBe(303);
  });
});

describe("the audit log page", () => {
  it("filters by kind and actor, and pages through with the API's cursor", async () => {
    const t = await testWebApp();
    for (let i = 0; i < 130; i++)
      t.audit.log.recordNow({
        kind: "token",
        actor: i % 2 ? "alice" : "bob",
        ip: "10.0.0.1",
        repository: `team/app${i}`,
        outcome: "ok",
        details: {},
      });
    const root = await clientFor(t, "root");
    const first = await root.get("/admin/audit?kind=token");
    expect(first.status).toBe(200);
    const next = /href="(\/admin\/audit\?[^"]*cursor=[^"]+)"/.exec(first.text)?.[1]?.replaceAll("&amp;", "&");
    expect(next).toBeDefined();
    const second = await root.get(next ?? "");
    expect(second.status).toBe(200);
    expect(second.text).toContain("team/app129");
    expect(second.text).not.toContain("cursor=");
    const alice = await root.get("/admin/audit?kind=token&actor=alice");
    expect(alice.text).not.toMatch(/<td>bob<\/td>/);
    expect(alice.text).toMatch(/<td>alice<\/td>/);
    const window = await root.get("/admin/audit?since=2000-01-01T00%3A00&until=2001-01-01T00%3A00");
    expect(window.text).toContain("No event matches these filters.");
  });
});

describe("registrations awaiting approval", () => {
  it("an administrator approves one on the users page; until then it cannot sign in", async () => {
    const t = await testWebApp();
    const root = await clientFor(t, "root");
    const { createUser } = await import("../../src/accounts/users.ts");
    const { quickHash } = await import("../accounts-helpers.ts");
    createUser(t.db, {
      name: "newbie",
      passwordHash: quickHash(PASSWORD),
      isEnabled: false,
      isPendingApproval: true,
      nowUnix: 1,
    });
    const refused = await new WebClient(t).signIn("newbie");
    expect(refused.status).toBe(401);
    expect(refused.text).toContain("approval");
    const users = await root.get("/admin/users?state=pending");
    expect(users.text).toContain('aria-label="Approve newbie"');
    expect((await root.post("/admin/users/newbie/enable", {})).status).toBe(303);
    expect((await new WebClient(t).signIn("newbie")).status).toBe(303);
  });
});

describe("the rest of the server", () => {
  it("pages collide with no route of the token server, the API, health or metrics", () => {
    const reserved = [
      "/auth",
      "/api/",
      "/healthz",
      "/readyz",
      "/metrics",
      "/.well-known",
      "/v2",
      "/assets/",
      "/registry/",
    ];
    for (const route of PAGE_ROUTES)
      for (const path of reserved)
        expect({ route: route.path, reserved: route.path.startsWith(path) }).toEqual({
          route: route.path,
          reserved: false,
        });
  });

  it("with the interface on, the token endpoint, the API, health and keys answer as before", async () => {
    const t = await testWebApp();
    const token = await t.app.handle(
      req("/auth?service=registry", { headers: { authorization: basic("alice", PASSWORD) } }),
    );
    expect(token.status).toBe(200);
    expect((await t.app.handle(req("/auth/token?service=registry"))).status).toBe(401);
    expect((await t.app.handle(req("/healthz"))).status).toBe(200);
    expect((await t.app.handle(req("/readyz"))).status).toBe(200);
    expect((await t.app.handle(req("/.well-known/jwks.json"))).status).toBe(200);
    expect((await call(t, "GET", "/me", { auth: ["alice", PASSWORD] })).status).toBe(200);
    const css = await t.app.handle(req("/assets/app.css"));
    expect(css.headers.get("content-type")).toStartWith("text/css");
    const js = await t.app.handle(req("/assets/app.js"));
    expect(js.headers.get("content-type")).toStartWith("text/javascript");
  });

  it("web.enabled false serves no page", async () => {
    const t = await testWebApp({ web: { enabled: false } });
    expect(await (await t.app.handle(req("/"))).text()).toContain("token server");
    expect((await t.app.handle(req("/sign-in"))).status).toBe(404);
    expect((await t.app.handle(req("/assets/app.js"))).status).toBe(404);
  });

  it("follows the API: on its own listener with api.addr, off with api.enabled false", async () => {
    const own = await testWebApp({ api: { addr: "127.0.0.1:0" } });
    expect((await own.app.handle(req("/sign-in"))).status).toBe(404);
    const services = managementServices(own.loaded, own.issuer, own.db);
    const apiApp = buildApiApp(own.loaded, own.issuer, services);
    expect((await apiApp?.handle(req("/sign-in")))?.status).toBe(200);
    const off = await testWebApp({ api: { enabled: false } });
    expect((await off.app.handle(req("/sign-in"))).status).toBe(404);
  });

  it("under a path prefix, the prefix itself leads to the interface", async () => {
    const t = await testWebApp({ server: { path_prefix: "/r" } });
    const res = await t.app.handle(req("/r"));
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toStartWith("/r/sign-in?next=");
    expect((await t.app.handle(req("/r/sign-in"))).status).toBe(200);
  });
});
