/**
 * Findings of the web interface's security review (issue 14 item 4; docs/web.md "Security
 * model"), each a test that failed before its fix: the session table bounded per account,
 * a tossed second session cookie never chosen, and every error answer under the interface's
 * paths carrying the page headers.
 */
import { describe, expect, it } from "bun:test";
import { findUser } from "../../src/accounts/users.ts";
import { MAX_SESSIONS_PER_ACCOUNT } from "../../src/web/sessions.ts";
import { testWebApp, WebClient } from "../web-helpers.ts";

const sessionsOf = (t: Awaited<ReturnType<typeof testWebApp>>, account: string) =>
  t.db.query<{ n: number }, [string]>("SELECT count(*) AS n FROM web_sessions WHERE account = ?").get(account)
    ?.n ?? 0;

describe("sessions per account", () => {
  it("signing in again and again keeps at most MAX_SESSIONS_PER_ACCOUNT, the newest, and others' alone", async () => {
    const t = await testWebApp();
    const first = new WebClient(t);
    expect((await first.signIn("alice")).status).toBe(303);
    const root = new WebClient(t);
    expect((await root.signIn("root")).status).toBe(303);
    const clients: WebClient[] = [];
    for (let i = 0; i < MAX_SESSIONS_PER_ACCOUNT + 5; i++) {
      const client = new WebClient(t);
      expect((await client.signIn("alice")).status).toBe(303);
      clients.push(client);
    }
    expect(sessionsOf(t, "alice")).toBe(MAX_SESSIONS_PER_ACCOUNT);
    // The oldest went; the newest and the other account's stay.
    expect((await first.get("/account")).status).toBe(303);
    expect((await clients.at(-1)?.get("/account"))?.status).toBe(200);
    expect((await clients.at(-MAX_SESSIONS_PER_ACCOUNT)?.get("/account"))?.status).toBe(200);
    expect((await root.get("/account")).status).toBe(200);
  });
});

describe("a tossed session cookie (cookie tossing from a sibling host or a more specific path)", () => {
  // A sibling subdomain can set `regauth_session` (even `__Secure-` under a prefix) with
  // Domain= and a longer Path; the browser sends it first. The victim must not act as the
  // attacker's account (login CSRF by cookie); two session cookies sign nobody in.
  it("two session cookies: neither is used, the page asks to sign in, and a form is refused", async () => {
    const t = await testWebApp();
    const victim = new WebClient(t);
    await victim.signIn("alice");
    const attacker = new WebClient(t);
    await attacker.signIn("nsadmin");
    const victimId = victim.cookies.get("regauth_session") ?? "";
    const attackerId = attacker.cookies.get("regauth_session") ?? "";
    const tossed = `regauth_session=${attackerId}; regauth_session=${victimId}`;
    const page = await t.app.handle(new Request("http://localhost/account", { headers: { cookie: tossed } }));
    expect(page.status).toBe(303);
    expect(page.headers.get("location")).toStartWith("/sign-in?next=");
    // The victim's own cookie is not cleared: it works again once the tossed one is gone.
    expect(page.headers.getSetCookie()).toEqual([]);
    const form = await t.app.handle(
      new Request("http://localhost/tokens", {
        method: "POST",
        headers: { cookie: tossed, "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ csrf: attacker.csrf ?? "", name: "mine", scopes: "pull" }).toString(),
      }),
    );
    expect(form.status).toBe(303);
    expect(t.db.query("SELECT count(*) AS n FROM access_tokens").get()).toEqual({ n: 0 });
    // One cookie again: each session is what it was.
    expect((await victim.get("/account")).text).toContain("alice");
    expect((await attacker.get("/account")).status).toBe(200);
    expect(findUser(t.db, "alice")?.isEnabled).toBe(true);
  });
});

describe("answers outside the page routes", () => {
  // A mistyped page, a method a page does not take, an unknown asset: these are the router's
  // 404 (the API's JSON envelope). They carry no page, but they must not be framed or sniffed
  // into HTML either (issue 14 item 4: the CSP on every answer of the interface).
  const cases: [string, string][] = [
    ["GET", "/nope"],
    ["GET", "/admin/nope"],
    ["POST", "/account"],
    ["PUT", "/tokens"],
    ["GET", "/assets/nope.js"],
    ["GET", "/api/v1/nope"],
  ];
  for (const [method, path] of cases)
    it(`${method} ${path}: 404 with nosniff and a CSP that runs and frames nothing`, async () => {
      const t = await testWebApp();
      const client = new WebClient(t);
      await client.signIn("alice");
      const res = await client.request(method, path);
      expect(res.status).toBe(404);
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("content-security-policy")).toBe("default-src 'none'; frame-ancestors 'none'");
      expect(JSON.parse(res.text).error).toBe("not_found");
    });
});

describe("focus after a refused form", () => {
  // Without it a keyboard or screen-reader user starts again at the top of the page and must
  // hunt for the message (axe does not see this). `autofocus` needs no script (CSP), and the
  // browser focuses the first such control: the first field in error, read with its message
  // (aria-describedby).
  const controlOf = (text: string, name: string) =>
    new RegExp(`<(?:input|select|textarea)[^>]* name="${name}"[^>]*>`).exec(text)?.[0] ?? "";
  it("the sign-in page with a wrong password focuses the password field, and only it", async () => {
    const t = await testWebApp();
    const client = new WebClient(t);
    await client.get("/sign-in");
    const res = await client.post("/sign-in", { username: "alice", password: "wrong password!" });
    expect(res.status).toBe(401);
    expect(controlOf(res.text, "password")).toContain(" autofocus");
    expect(controlOf(res.text, "username")).not.toContain("autofocus");
    expect(res.text.match(/ autofocus/g)?.length).toBe(1);
    // A fresh page focuses nothing: the person starts at the top, as on every page.
    expect((await client.get("/sign-in")).text).not.toContain("autofocus");
  });

  it("a token form with a bad name: the name field focused, the script shown as text", async () => {
    const t = await testWebApp();
    const client = new WebClient(t);
    await client.signIn("alice");
    const res = await client.post("/tokens", {
      name: `<script>alert(1)</script>${"x".repeat(300)}`,
      scopes: "pull",
      repository_patterns: "*",
      expires: "30",
    });
    expect(res.status).toBe(400);
    expect(controlOf(res.text, "name")).toContain(" autofocus");
    expect(res.text).not.toContain("<script>alert(1)</script>");
  });
});
