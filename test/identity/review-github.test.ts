/**
 * Review of the GitHub driver (issue 15) against a hostile stand-in for GitHub's API (GitHub
 * itself cannot be reached from here; this is a local Bun server playing it, as
 * test/identity/github-stand-in.ts does for the happy paths): a refusal is only a revoked token,
 * a suspended user or a real "not a member"; a rate limit, a 5xx, a network error, a huge or slow
 * answer is "unreachable"; the code exchange never follows a redirect with the client secret;
 * team pages are bounded; a token without read:org is refused with the reason.
 */
import { afterAll, describe, expect, it } from "bun:test";
import { Value } from "@sinclair/typebox/value";
import { GithubProviderConfig } from "../../src/identity/config-schema.ts";
import {
  finishGithubSignIn,
  githubAdmissionProblem,
  makeGithubProvider,
  recheckGithub,
  startGithubSignIn,
} from "../../src/identity/github.ts";
import { githubDriver } from "../../src/identity/drivers.ts";
import { resolveAccount } from "../../src/identity/links.ts";
import type { PendingSignIn } from "../../src/identity/oidc.ts";
import { databasePath, openDatabase } from "../../src/db/database.ts";
import { makeTempDir } from "../helpers.ts";

type Handler = (request: Request, url: URL) => Response | Promise<Response>;

function hostileGithub() {
  let handler: Handler = () => new Response("not set", { status: 500 });
  const hits: string[] = [];
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch(request) {
      const url = new URL(request.url);
      hits.push(`${url.pathname}${url.search}`);
      return handler(request, url);
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    hits,
    set(next: Handler) {
      handler = next;
      hits.length = 0;
    },
    stop: () => server.stop(true),
  };
}

const user = () => Response.json({ login: "Alice", id: 42 });
const member = () => new Response(null, { status: 204 });
const teams = (list: unknown[] = [], headers: Record<string, string> = {}) =>
  Response.json(list, { headers });
const rateLimited = () =>
  Response.json(
    { message: "API rate limit exceeded" },
    { status: 403, headers: { "x-ratelimit-remaining": "0", "x-ratelimit-reset": "1900000000" } },
  );

describe("GitHub re-check: refusal versus out of reach", () => {
  const gh = hostileGithub();
  afterAll(() => gh.stop());
  const config = Value.Default(GithubProviderConfig, {
    name: "gh",
    client_id: "id",
    client_secret: "the-client-secret",
    web_url: gh.url,
    api_url: gh.url,
    organization: "acme",
  }) as GithubProviderConfig;
  const provider = makeGithubProvider(config, "http://localhost", "");
  const route =
    (routes: { user?: Handler; member?: Handler; teams?: Handler }): Handler =>
    (request, url) => {
      if (url.pathname === "/user") return (routes.user ?? user)(request, url);
      if (url.pathname === "/orgs/acme/members/Alice") return (routes.member ?? member)(request, url);
      if (url.pathname === "/user/teams") return (routes.teams ?? (() => teams()))(request, url);
      return new Response("no", { status: 404 });
    };

  it.each([
    ["the token revoked (401 on /user)", { user: () => Response.json({}, { status: 401 }) }],
    [
      "the user suspended (403 on /user, no rate limit)",
      { user: () => Response.json({ message: "suspended" }, { status: 403 }) },
    ],
    [
      "the token revoked between calls (401 on membership)",
      { member: () => new Response(null, { status: 401 }) },
    ],
  ] as const)("%s is a refusal", async (_name, routes) => {
    gh.set(route(routes));
    expect((await recheckGithub(provider, "tok", "42")).kind).toBe("refused");
  });

  it.each([
    ["404: not a member", () => new Response(null, { status: 404 })],
    [
      "302: the requester is not a member",
      () => new Response(null, { status: 302, headers: { location: "/x" } }),
    ],
  ] as const)("membership %s: signed in as a non-member, admission refuses", async (_name, answer) => {
    gh.set(route({ member: answer }));
    const result = await recheckGithub(provider, "tok", "42");
    if (result.kind !== "ok") throw new Error(`${result.kind}: ${result.reason}`);
    expect(githubAdmissionProblem(config, result.identity.claims)).toContain("Only members");
  });

  it.each([
    ["/user rate limited (403, x-ratelimit-remaining: 0)", { user: rateLimited }],
    [
      "/user secondary rate limit (403, retry-after)",
      { user: () => new Response("slow down", { status: 403, headers: { "retry-after": "60" } }) },
    ],
    ["/user 429", { user: () => new Response("", { status: 429 }) }],
    ["/user 502", { user: () => new Response("", { status: 502 }) }],
    ["membership rate limited (403, x-ratelimit-remaining: 0)", { member: rateLimited }],
    ["membership 429", { member: () => new Response("", { status: 429 }) }],
    ["membership 503", { member: () => new Response("", { status: 503 }) }],
    ["teams rate limited", { teams: rateLimited }],
    ["/user answers HTML", { user: () => new Response("<html>", { status: 200 }) }],
  ] as const)("%s is unreachable, not a refusal", async (_name, routes) => {
    gh.set(route(routes));
    const result = await recheckGithub(provider, "tok", "42");
    expect(result.kind).toBe("unreachable");
  });

  it("a network error is unreachable", async () => {
    const gone = makeGithubProvider({ ...config, api_url: "http://127.0.0.1:1" }, "http://localhost", "");
    expect((await recheckGithub(gone, "tok", "42")).kind).toBe("unreachable");
  });

  it("a 5 MB answer is not read whole: unreachable", async () => {
    const pad = "x".repeat(5 * 1024 * 1024);
    gh.set(route({ user: () => new Response(`{"login":"Alice","id":42,"pad":"${pad}"}`) }));
    expect((await recheckGithub(provider, "tok", "42")).kind).toBe("unreachable");
  });

  it("an endless chunked answer is cut off: unreachable, quickly", async () => {
    gh.set(
      route({
        teams: () =>
          new Response(
            new ReadableStream({
              pull(controller) {
                controller.enqueue(new TextEncoder().encode(`${"[".repeat(64 * 1024)}`));
              },
            }),
          ),
      }),
    );
    const started = performance.now();
    expect((await recheckGithub(provider, "tok", "42")).kind).toBe("unreachable");
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it("150 teams over two pages are all read; a Link that never ends stops at 10 pages, refused; a page that is not a list is unreachable", async () => {
    const all = Array.from({ length: 150 }, (_, i) => ({ slug: `t${i}`, organization: { login: "ACME" } }));
    gh.set(
      route({
        teams: (_r, url) => {
          const page = Number(url.searchParams.get("page"));
          return teams(
            all.slice((page - 1) * 100, page * 100),
            page === 1 ? { link: `<${gh.url}/user/teams?per_page=100&page=2>; rel="next"` } : {},
          );
        },
      }),
    );
    const result = await recheckGithub(provider, "tok", "42");
    if (result.kind !== "ok") throw new Error(result.reason);
    expect((result.identity.claims.teams as string[]).length).toBe(150);
    gh.set(route({ teams: () => teams([], { link: `<${gh.url}/user/teams?page=99>; rel="next"` }) }));
    // A list cut short could drop a team an ACL entry denies by label: refused, not silently cut.
    expect(await recheckGithub(provider, "tok", "42")).toMatchObject({ kind: "refused" });
    expect(gh.hits.filter((h) => h.startsWith("/user/teams")).length).toBe(10);
    gh.set(route({ teams: () => Response.json({ message: "not a list" }) }));
    expect((await recheckGithub(provider, "tok", "42")).kind).toBe("unreachable");
  });

  it("the token is another user's now (id changed): refused", async () => {
    gh.set(route({}));
    expect((await recheckGithub(provider, "tok", "43")).kind).toBe("refused");
  });
});

describe("GitHub code exchange", () => {
  const gh = hostileGithub();
  const elsewhere = hostileGithub();
  afterAll(() => {
    gh.stop();
    elsewhere.stop();
  });
  const config = Value.Default(GithubProviderConfig, {
    name: "gh",
    client_id: "id",
    client_secret: "the-client-secret",
    web_url: gh.url,
    api_url: gh.url,
    organization: "acme",
  }) as GithubProviderConfig;
  const provider = makeGithubProvider(config, "http://localhost", "");
  const pending: PendingSignIn = {
    provider: "gh",
    state: "s1",
    nonce: "",
    codeVerifier: "v".repeat(43),
    next: "/",
    createdAtUnix: 0,
  };
  const callback = new URL("http://localhost/sign-in/github/gh/callback?code=c1&state=s1");
  const api: Handler = (_r, url) => {
    if (url.pathname === "/user") return user();
    if (url.pathname === "/orgs/acme/members/Alice") return member();
    if (url.pathname === "/user/teams") return teams();
    return new Response("no", { status: 404 });
  };

  it("a redirect of the token request is not followed with the client secret: unreachable", async () => {
    const seen: string[] = [];
    elsewhere.set(async (request) => {
      seen.push(await request.text());
      return Response.json({ access_token: "stolen" });
    });
    gh.set((request, url) =>
      url.pathname === "/login/oauth/access_token"
        ? new Response(null, { status: 307, headers: { location: `${elsewhere.url}/grab` } })
        : api(request, url),
    );
    await expect(finishGithubSignIn(provider, pending, callback)).resolves.toMatchObject({
      kind: "unreachable",
    });
    expect(seen.join("")).not.toContain("the-client-secret");
  });

  it("a 5 MB token answer: unreachable", async () => {
    gh.set((request, url) =>
      url.pathname === "/login/oauth/access_token"
        ? new Response(`{"access_token":"t","pad":"${"x".repeat(5 * 1024 * 1024)}"}`)
        : api(request, url),
    );
    expect((await finishGithubSignIn(provider, pending, callback)).kind).toBe("unreachable");
  });

  it("a token without read:org (the user narrowed the scopes) is refused, saying so", async () => {
    gh.set((request, url) =>
      url.pathname === "/login/oauth/access_token"
        ? Response.json({ access_token: "t", token_type: "bearer", scope: "read:user" })
        : api(request, url),
    );
    const result = await finishGithubSignIn(provider, pending, callback);
    expect(result).toMatchObject({ kind: "refused" });
    expect(result.kind === "refused" && result.reason).toContain("read:org");
  });

  it("read:org, or a scope that includes it, passes; the login is lower-cased, the id is the subject", async () => {
    for (const scope of ["read:org,read:user", "admin:org", "write:org"]) {
      gh.set((request, url) =>
        url.pathname === "/login/oauth/access_token"
          ? Response.json({ access_token: "t", token_type: "bearer", scope })
          : api(request, url),
      );
      const result = await finishGithubSignIn(provider, pending, callback);
      if (result.kind !== "ok") throw new Error(result.reason);
      expect(result.identity.claims.login).toBe("alice");
      expect(result.identity.subject).toBe("42");
    }
  });

  it("a callback with an error, no state, a 10 KB code or a parameter twice is refused before any request", async () => {
    gh.set(() => new Response("must not be asked", { status: 500 }));
    for (const query of [
      "error=access_denied&state=s1&code=c1",
      "code=c1",
      `code=${"c".repeat(10_000)}&state=s1`,
      "code=c1&code=c2&state=s1",
      "code=c1&state=s1&state=s1",
      "code=c1&state=s1&error=x&error=y",
    ]) {
      const url = new URL(`http://localhost/cb?${query}`);
      expect((await finishGithubSignIn(provider, pending, url)).kind).toBe("refused");
    }
    expect(gh.hits).toEqual([]);
  });
});

describe("GitHub logins are case-insensitive; accounts are keyed by the numeric id", () => {
  const gh = hostileGithub();
  afterAll(() => gh.stop());
  const config = Value.Default(GithubProviderConfig, {
    name: "gh",
    client_id: "id",
    client_secret: "s",
    web_url: gh.url,
    api_url: gh.url,
    first_sign_in: "create",
  }) as GithubProviderConfig;
  const driver = githubDriver(config, "http://localhost", "");
  const db = openDatabase(databasePath(makeTempDir("regauth-review-gh-")));
  let who = { login: "Alice", id: 42 };
  gh.set((_r, url) => (url.pathname === "/user" ? Response.json(who) : new Response("", { status: 404 })));

  async function signIn(login: string, id: number) {
    who = { login, id };
    const result = await driver.recheck("tok", String(id));
    if (result.kind !== "ok") throw new Error(result.reason);
    return resolveAccount(db, driver.rules, result.identity, 1_000);
  }

  it("Alice, then ALICE and alice for the same id: one account, one link", async () => {
    const first = await signIn("Alice", 42);
    if (first.kind !== "ok") throw new Error(first.message);
    expect(first.user.name).toBe("alice");
    for (const login of ["ALICE", "alice"]) {
      const again = await signIn(login, 42);
      if (again.kind !== "ok") throw new Error(again.message);
      expect(again.created).toBe(false);
      expect(again.user.id).toBe(first.user.id);
    }
    expect(db.query("SELECT count(*) AS n FROM identity_links").get()).toEqual({ n: 1 });
  });

  it("another GitHub user who now holds the login (a rename) cannot take the account over", async () => {
    const other = await signIn("alice", 99);
    expect(other).toMatchObject({ kind: "refused", status: 409 });
  });
});

describe("the scopes asked for", () => {
  const base = { name: "gh", client_id: "id", client_secret: "s" };
  it("read:org only with an organization to check; never read:user (GET /user needs no scope)", async () => {
    for (const [fields, scope] of [
      [{}, null],
      [{ organization: "acme" }, "read:org"],
    ] as const) {
      const config = Value.Default(GithubProviderConfig, { ...base, ...fields }) as GithubProviderConfig;
      const { url } = await startGithubSignIn(makeGithubProvider(config, "http://localhost", ""), "/", 0);
      expect(url.searchParams.get("scope")).toBe(scope);
    }
  });
});
