/**
 * GitHub OAuth app sign-in through the pages, in process, against a local stand-in for GitHub's
 * OAuth and API endpoints (test/identity/github-stand-in.ts; GitHub itself cannot be reached
 * from here), served under /api/v3 as GitHub Enterprise Server is (web_url and api_url set):
 * the login becomes the account, the organization is checked with the API, teams (and their
 * parents) become the `teams` label and database groups, allowed_teams refuses others, a wrong
 * state and a replayed code are refused, a revoked token ends access at the re-check, and so does
 * GitHub out of reach for longer than max_unchecked_seconds.
 */
import { afterAll, describe, expect, it } from "bun:test";
import { findUser } from "../../src/accounts/users.ts";
import { PasswordVerifier } from "../../src/authn/password-verifier.ts";
import { databasePath, openDatabase } from "../../src/db/database.ts";
import { identityLabelsOf } from "../../src/identity/links.ts";
import { buildApp, buildIssuer, managementServices } from "../../src/server.ts";
import type { ApiApp } from "../api-helpers.ts";
import { loadTestConfig, makeTempDir } from "../helpers.ts";
import { WebClient } from "../web-helpers.ts";
import { startGithubStandIn } from "./github-stand-in.ts";

describe("sign-in with GitHub (a local stand-in), through the pages", async () => {
  const gh = startGithubStandIn();
  let stopped = false;
  afterAll(() => {
    if (!stopped) gh.stop();
  });
  gh.users.set("Octo-Cat", {
    id: 583231,
    login: "Octo-Cat",
    orgs: ["acme"],
    teams: [
      { org: "acme", slug: "registry-pushers", parent: "engineering" },
      { org: "other", slug: "outsiders" },
    ],
  });
  gh.users.set("stranger", { id: 7, login: "stranger", orgs: [], teams: [] });
  gh.users.set("intern", {
    id: 8,
    login: "intern",
    orgs: ["acme"],
    teams: [{ org: "acme", slug: "interns" }],
  });
  const dataDir = makeTempDir("regauth-github-");
  const loaded = await loadTestConfig(
    {
      identity_providers: {
        public_url: "http://localhost",
        github: [
          {
            name: "ghe",
            display_name: "GitHub Enterprise",
            client_id: gh.clientId,
            client_secret: gh.clientSecret,
            web_url: gh.webUrl,
            api_url: gh.apiUrl,
            organization: "acme",
            allowed_teams: ["registry-pushers", "engineering"],
            database_groups: { engineering: "eng" },
            first_sign_in: "create",
            revalidate_after_seconds: 60,
          },
        ],
      },
    },
    dataDir,
  );
  if (!loaded.signingKey) throw new Error("no signing key");
  const db = openDatabase(databasePath(dataDir));
  const issuer = buildIssuer(loaded, loaded.signingKey, new PasswordVerifier(), db);
  const services = managementServices(loaded, issuer, db);
  const t = { app: buildApp(loaded, issuer, services) } as unknown as ApiApp;
  const identity = services.identity;
  if (!identity) throw new Error("no identity service");

  async function signIn(login: string, tamper?: (callback: URL) => void) {
    const browser = new WebClient(t);
    gh.nextLogin = login;
    const start = await browser.get("/sign-in/github/ghe");
    expect(start.status).toBe(303);
    const authorize = new URL(start.location ?? "");
    expect(authorize.origin + authorize.pathname).toBe(`${gh.webUrl}/login/oauth/authorize`);
    expect(authorize.searchParams.get("state")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const atGithub = await fetch(authorize, { redirect: "manual" });
    const back = new URL(atGithub.headers.get("location") ?? "");
    tamper?.(back);
    return { browser, back, answer: await browser.get(`${back.pathname}${back.search}`) };
  }

  it("the sign-in page offers GitHub", async () => {
    const page = await new WebClient(t).get("/sign-in");
    expect(page.text).toContain('href="/sign-in/github/ghe"');
    expect(page.text).toContain("Sign in with GitHub Enterprise");
  });

  it("a member of an allowed team signs in as their login; teams and parents become labels and groups", async () => {
    const { browser, answer } = await signIn("Octo-Cat");
    expect(answer.status).toBe(200);
    expect(answer.text).toContain("Signed in as octo-cat");
    expect((await browser.get("/tokens")).status).toBe(200);
    const user = findUser(db, "octo-cat");
    if (!user) throw new Error("no account");
    // Teams of another organization are not the organization's.
    expect(identityLabelsOf(db, user.id)).toEqual({ teams: ["registry-pushers", "engineering"] });
    const groups = db
      .query<{ name: string }, [number]>(
        "SELECT g.name FROM groups g JOIN group_members m ON m.group_id = g.id WHERE m.user_id = ?",
      )
      .all(user.id);
    expect(groups.map((g) => g.name)).toEqual(["eng"]);
  });

  it("refuses a non-member, a member outside the allowed teams, a wrong state and a replayed code", async () => {
    const stranger = await signIn("stranger");
    expect(stranger.answer.status).toBe(403);
    expect(stranger.answer.text).toContain("Only members of the GitHub organization acme");
    const intern = await signIn("intern");
    expect(intern.answer.status).toBe(403);
    expect(intern.answer.text).toContain("registry-pushers, engineering");
    expect(findUser(db, "stranger")).toBeNull();
    expect(findUser(db, "intern")).toBeNull();
    const tampered = await signIn("Octo-Cat", (callback) => callback.searchParams.set("state", "forged"));
    expect(tampered.answer.status).toBe(400);
    // The same code again in a fresh flow: GitHub (the stand-in) refuses a used code.
    const { back } = await signIn("Octo-Cat");
    const replayer = new WebClient(t);
    const start = await replayer.get("/sign-in/github/ghe");
    const state = new URL(start.location ?? "").searchParams.get("state") ?? "";
    back.searchParams.set("state", state);
    const replay = await replayer.get(`${back.pathname}${back.search}`);
    expect(replay.status).toBe(400);
    expect(replay.text).toContain("did not confirm who you are");
  });

  it("a token revoked at GitHub ends access at the re-check; leaving the allowed teams too", async () => {
    const { browser } = await signIn("Octo-Cat");
    const now = Math.floor(Date.now() / 1000);
    expect((await identity.revalidate(db, null, now + 61)).ended).toBe(0);
    expect((await browser.get("/tokens")).status).toBe(200);
    // Out of the allowed teams: the re-check's team list says so.
    const octo = gh.users.get("Octo-Cat");
    if (octo) octo.teams = [{ org: "acme", slug: "interns" }];
    expect((await identity.revalidate(db, null, now + 200)).ended).toBe(1);
    expect((await browser.get("/tokens")).status).toBe(303);
    const user = findUser(db, "octo-cat");
    expect(identityLabelsOf(db, user?.id ?? -1)).toEqual({});
    // Back in the team, signed in again; then the app's authorization revoked at GitHub.
    if (octo) octo.teams = [{ org: "acme", slug: "registry-pushers" }];
    const again = await signIn("Octo-Cat");
    expect(again.answer.status).toBe(200);
    gh.revoke("Octo-Cat");
    expect((await identity.revalidate(db, null, now + 400)).ended).toBe(1);
    expect((await again.browser.get("/tokens")).status).toBe(303);
  });

  // Last: it stops the stand-in.
  it("GitHub out of reach: the re-check is postponed for max_unchecked_seconds (a day by default), then access ends", async () => {
    gh.users.set("Octo-Cat", {
      id: 583231,
      login: "Octo-Cat",
      orgs: ["acme"],
      teams: [{ org: "acme", slug: "registry-pushers" }],
    });
    const { browser, answer } = await signIn("Octo-Cat");
    expect(answer.status).toBe(200);
    const now = Math.floor(Date.now() / 1000);
    gh.stop();
    stopped = true;
    expect(await identity.revalidate(db, null, now + 61)).toEqual({ checked: 1, ended: 0 });
    expect(await identity.revalidate(db, null, now + 86_400)).toEqual({ checked: 1, ended: 0 });
    expect((await browser.get("/tokens")).status).toBe(200);
    expect(await identity.revalidate(db, null, now + 86_401)).toEqual({ checked: 1, ended: 1 });
    expect((await browser.get("/tokens")).status).toBe(303);
  });
});

describe("GitHub out of reach at the callback", async () => {
  const gh = startGithubStandIn();
  gh.users.set("octo", { id: 9, login: "octo", orgs: [], teams: [] });
  const dataDir = makeTempDir("regauth-github-down-");
  const loaded = await loadTestConfig(
    {
      identity_providers: {
        public_url: "http://localhost",
        github: [
          {
            name: "gh",
            client_id: gh.clientId,
            client_secret: gh.clientSecret,
            web_url: gh.webUrl,
            api_url: gh.apiUrl,
            first_sign_in: "create",
          },
        ],
      },
    },
    dataDir,
  );
  if (!loaded.signingKey) throw new Error("no signing key");
  const db = openDatabase(databasePath(dataDir));
  const issuer = buildIssuer(loaded, loaded.signingKey, new PasswordVerifier(), db);
  const t = { app: buildApp(loaded, issuer, managementServices(loaded, issuer, db)) } as unknown as ApiApp;

  // The 502 page clears GitHub's flow cookie, on GitHub's path (it cleared /sign-in/oidc's).
  it("is a 502 page that clears the GitHub flow cookie where it was set", async () => {
    const browser = new WebClient(t);
    gh.nextLogin = "octo";
    const start = await browser.get("/sign-in/github/gh");
    const setAt = start.headers.getSetCookie().find((c) => c.includes("Path=/sign-in/github")) ?? "";
    expect(setAt).not.toBe("");
    const atGithub = await fetch(new URL(start.location ?? ""), { redirect: "manual" });
    const back = new URL(atGithub.headers.get("location") ?? "");
    gh.stop();
    const answer = await browser.get(`${back.pathname}${back.search}`);
    expect(answer.status).toBe(502);
    expect(answer.text).toContain("cannot be reached");
    const cleared = answer.headers.getSetCookie();
    expect(cleared.some((c) => /Path=\/sign-in\/github/.test(c) && /Max-Age=0/i.test(c))).toBe(true);
  });
});
