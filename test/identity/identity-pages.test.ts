/**
 * Sign-in with an OpenID provider through the web pages, in process (app.handle), against the
 * real `oidc-provider` on loopback: the whole flow opens a session of the right account; the
 * flow cookie is single use (a replayed callback, one from another browser, a tampered state are
 * refused with a page, never a 500; a flood of started sign-ins evicts no one's and costs the
 * server no memory; hostile flow cookies get the same page); claimed names with capitals,
 * look-alike Unicode, spaces or no length at all create no account; an unlinked identity never
 * takes over a local account of the same name; link_only refuses unlinked identities; users
 * outside the allowed group are refused; provider groups mirror into database groups; the
 * re-check after the user is removed at the provider ends the session and deletes the tokens.
 */
import { afterAll, describe, expect, it } from "bun:test";
import { createAccessToken, findTokenBySecret } from "../../src/access-tokens/access-tokens.ts";
import { findUser } from "../../src/accounts/users.ts";
import { PasswordVerifier } from "../../src/authn/password-verifier.ts";
import { databasePath, openDatabase } from "../../src/db/database.ts";
import { findLink, linkIdentity } from "../../src/identity/links.ts";
import { buildApp, buildIssuer, managementServices } from "../../src/server.ts";
import { quickHash } from "../accounts-helpers.ts";
import type { ApiApp } from "../api-helpers.ts";
import { freePort } from "../e2e/free-port.ts";
import { loadTestConfig, makeTempDir } from "../helpers.ts";
import { WebClient } from "../web-helpers.ts";
import { loginAtProvider, startTestProvider } from "./oidc-provider.ts";

const CALLBACK = "http://localhost/sign-in/oidc/test/callback";
const STRICT_CALLBACK = "http://localhost/sign-in/oidc/strict/callback";

type TestOp = { issuer: string; clientId: string; clientSecret: string };

/** preferred_username values a first sign-in (first_sign_in: create) must refuse or accept. */
const CLAIMED_NAMES: readonly (readonly [string, string, "refused" | "accepted"])[] = [
  ["capitals", "Alice", "refused"],
  ["fullwidth letters", "ａｌｉｃｅ", "refused"],
  ["a Cyrillic look-alike (а)", "\u0430lice", "refused"],
  ["a leading dot", ".alice", "refused"],
  ["a space", "alice smith", "refused"],
  ["300 characters", "a".repeat(300), "refused"],
  ["an empty string", "", "refused"],
  ["letters, digits, dot, dash, underscore", "alice.b-c_d", "accepted"],
];

async function identityApp(op: TestOp, strictOp: TestOp) {
  // The ACL sees the provider's groups as the label `groups` (labels_from_claims).
  const acl = [{ match: { name: "shared/*", labels: { groups: "dev" } }, actions: ["pull"] }];
  const dataDir = makeTempDir("regauth-oidc-");
  const common = {
    issuer: op.issuer,
    client_id: op.clientId,
    client_secret: op.clientSecret,
    scopes: ["openid", "profile", "email", "groups"],
    revalidate_after_seconds: 60,
  };
  const loaded = await loadTestConfig(
    {
      acl,
      // A config user: a first sign-in may not create a database account of its name.
      users: { erin: { password: "$2b$04$ZSoV1oFouGA.tzcfl38x8emGmzoQMG.nbQyMj4w.K7e8P0AtkMdhO" } },
      identity_providers: {
        public_url: "http://localhost",
        oidc: [
          {
            ...common,
            name: "test",
            display_name: "Test IdP",
            first_sign_in: "create",
            allowed_groups: ["registry-users"],
            labels_from_claims: ["groups"],
            database_groups: { dev: "developers", ops: "operators" },
          },
          // A second provider (one issuer, one provider), whose first sign-ins only link.
          {
            ...common,
            name: "strict",
            issuer: strictOp.issuer,
            client_id: strictOp.clientId,
            client_secret: strictOp.clientSecret,
            first_sign_in: "link_only",
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
  const app = buildApp(loaded, issuer, services);
  const identity = services.identity;
  if (!identity) throw new Error("no identity service");
  const t = {
    app,
    issuer,
    loaded,
    db,
    dataDir,
    accessTokenKey: services.accessTokenKey,
    audit: { log: services.audit, events: [] },
  } as unknown as ApiApp;
  return { t, db, identity, services };
}

/** The browser's whole trip: our start URL, the provider's login form, back to our callback. */
async function signInThroughProvider(client: WebClient, provider: string, login: string, callback: string) {
  const start = await client.get(`/sign-in/oidc/${provider}`);
  expect(start.status).toBe(303);
  const atProvider = new URL(start.location ?? "");
  const back = await loginAtProvider(atProvider, login, callback);
  return { back, answer: await client.get(`${back.pathname}${back.search}`) };
}

describe("sign-in with an OpenID provider, through the pages", async () => {
  const port = await freePort();
  const op = await startTestProvider({
    port,
    redirectUris: [CALLBACK],
    accounts: {
      alice: { email: "alice@example.com", groups: ["registry-users", "dev"] },
      bob: { email: "bob@example.com", groups: ["registry-users", "ops"] },
      carol: { email: "carol@example.com", groups: ["registry-users"] },
      mallory: { email: "mallory@example.com", groups: ["contractors"] },
      library: { email: "lib@example.com", groups: ["registry-users"] },
      shared: { email: "shared@example.com", groups: ["registry-users"] },
      erin: { email: "erin@example.com", groups: ["registry-users"] },
      "Not A Name": { email: "x@example.com", groups: ["registry-users"] },
      ...Object.fromEntries(
        CLAIMED_NAMES.map(([, claimed], i) => [
          `claims-${i}`,
          { email: `claims-${i}@example.com`, groups: ["registry-users"], preferredUsername: claimed },
        ]),
      ),
    },
  });
  const strictOp = await startTestProvider({
    port: await freePort(),
    redirectUris: [STRICT_CALLBACK],
    accounts: { bob: { email: "bob@example.com", groups: ["registry-users"] } },
  });
  afterAll(async () => {
    await op.stop();
    await strictOp.stop();
  });
  const { t, db, identity, services } = await identityApp(op, strictOp);
  const key = services.accessTokenKey;
  const now = Math.floor(Date.now() / 1000);
  // A local account with a password, whose name an identity at the provider also has.
  const { createUser } = await import("../../src/accounts/users.ts");
  createUser(db, { name: "carol", passwordHash: quickHash("carol-password-1"), nowUnix: now });

  it("the sign-in page offers the provider", async () => {
    const page = await new WebClient(t).get("/sign-in");
    expect(page.text).toContain('href="/sign-in/oidc/test"');
    expect(page.text).toContain("Sign in with Test IdP");
  });

  it("a first sign-in creates the account, links the identity, opens a session and mirrors groups", async () => {
    const browser = new WebClient(t);
    const { answer } = await signInThroughProvider(browser, "test", "alice", CALLBACK);
    expect(answer.status).toBe(200);
    expect(answer.headers.get("refresh")).toBe("0; url=/");
    expect(answer.text).toContain("Signed in as alice");
    const tokens = await browser.get("/tokens");
    expect(tokens.status).toBe(200);
    expect(tokens.text).toContain("alice");
    // No password to change: the account page says how this account signs in instead.
    const account = await browser.get("/account");
    expect(account.text).not.toContain("Change your password");
    expect(account.text).toContain("this account has no password to change here");
    const user = findUser(db, "alice");
    expect(user?.passwordHash).toBe("!");
    expect(findLink(db, op.issuer, "alice")?.userId).toBe(user?.id ?? -1);
    // The provider's refresh token is in the database only sealed (identity-credentials.key).
    const stored = db
      .query<{ refresh_token: string | null }, []>("SELECT refresh_token FROM identity_links")
      .get();
    expect(stored?.refresh_token).toMatch(/^v1\./);
    const groups = db
      .query<{ name: string }, [number]>(
        "SELECT g.name FROM groups g JOIN group_members m ON m.group_id = g.id WHERE m.user_id = ? ORDER BY g.name",
      )
      .all(user?.id ?? -1)
      .map((g) => g.name);
    expect(groups).toEqual(["developers"]);
    // A second sign-in is the same account, not a new one.
    const again = await signInThroughProvider(new WebClient(t), "test", "alice", CALLBACK);
    expect(again.answer.text).toContain("Signed in as alice");
  });

  it("a replayed callback, one from another browser, and a tampered state are refused with a page", async () => {
    const browser = new WebClient(t);
    const { back, answer } = await signInThroughProvider(browser, "test", "alice", CALLBACK);
    expect(answer.status).toBe(200);
    const replay = await browser.get(`${back.pathname}${back.search}`);
    expect(replay.status).toBe(400);
    expect(replay.text).toContain("expired or was already used");
    // The attacker's callback URL opened in the victim's browser (login CSRF): no flow cookie of its own.
    const attacker = new WebClient(t);
    const start = await attacker.get("/sign-in/oidc/test");
    const attackersCallback = await loginAtProvider(new URL(start.location ?? ""), "mallory", CALLBACK);
    const victim = new WebClient(t);
    const forced = await victim.get(`${attackersCallback.pathname}${attackersCallback.search}`);
    expect(forced.status).toBe(400);
    expect(victim.cookies.has("regauth_session")).toBe(false);
    // The state changed in flight.
    const tamperer = new WebClient(t);
    const begun = await tamperer.get("/sign-in/oidc/test");
    const cb = await loginAtProvider(new URL(begun.location ?? ""), "alice", CALLBACK);
    cb.searchParams.set("state", "x".repeat(43));
    const tampered = await tamperer.get(`${cb.pathname}${cb.search}`);
    expect(tampered.status).toBe(400);
    expect(tampered.text).toContain("did not confirm who you are");
    // Hostile callback queries: no 500.
    for (const query of [
      "",
      "?code=",
      "?state=%00&code=%ff",
      `?${"a=b&".repeat(500)}`,
      "?error=access_denied",
    ]) {
      const c = new WebClient(t);
      await c.get("/sign-in/oidc/test");
      const r = await c.get(`/sign-in/oidc/test/callback${query}`);
      expect({ query, status: r.status }).toEqual({ query, status: 400 });
    }
    expect((await new WebClient(t).get("/sign-in/oidc/nosuch")).status).toBe(404);
    expect((await new WebClient(t).get("/sign-in/oidc/nosuch/callback?code=x&state=y")).status).toBe(404);
  });

  it("20,000 sign-ins started by an anonymous client do not evict a real user's pending sign-in, and the server keeps nothing of them", async () => {
    const browser = new WebClient(t);
    const start = await browser.get("/sign-in/oidc/test");
    expect(start.status).toBe(303);
    const usedBefore = identity.usedFlowCount;
    Bun.gc(true);
    const heapBeforeBytes = process.memoryUsage().heapUsed;
    const startedAtMs = performance.now();
    // The flood: no cookies kept, as a script would send them; 50 at a time.
    for (let i = 0; i < 20_000; i += 50) {
      const answers = await Promise.all(
        Array.from({ length: 50 }, () => t.app.handle(new Request("http://localhost/sign-in/oidc/test"))),
      );
      for (const answer of answers) if (answer.status !== 303) throw new Error(`flood: ${answer.status}`);
    }
    const floodMs = performance.now() - startedAtMs;
    Bun.gc(true);
    const heapGrowthBytes = process.memoryUsage().heapUsed - heapBeforeBytes;
    console.info(`20,000 started sign-ins: ${Math.round(floodMs)} ms, heap growth ${heapGrowthBytes} bytes`);
    // Nothing per started sign-in: the one per-flow memory is the set of *used* flows, which only a
    // successful code exchange adds to. (The old bounded map held 10,000 pending sign-ins, ~5 MB.)
    expect(identity.usedFlowCount).toBe(usedBefore);
    expect(heapGrowthBytes).toBeLessThan(3_000_000);
    const back = await loginAtProvider(new URL(start.location ?? ""), "alice", CALLBACK);
    const done = await browser.get(`${back.pathname}${back.search}`);
    expect(done.status).toBe(200);
    expect(done.text).toContain("Signed in as alice");
    expect(identity.usedFlowCount).toBe(usedBefore + 1);
  }, 120_000);

  it("hostile flow cookies get the refusal page, never a 500", async () => {
    // A real callback URL (right state and code) to try them against.
    const owner = new WebClient(t);
    const begun = await owner.get("/sign-in/oidc/test");
    const sealed = owner.cookies.get("regauth_oidc_flow") ?? "";
    expect(sealed).toMatch(/^v1\.[A-Za-z0-9_-]+$/);
    // The pending sign-in is sealed, not only signed: its state, nonce and verifier are not readable.
    const state = new URL(begun.location ?? "").searchParams.get("state") ?? "";
    expect(Buffer.from(sealed.slice(3), "base64url").toString("latin1")).not.toContain(state);
    const back = await loginAtProvider(new URL(begun.location ?? ""), "alice", CALLBACK);
    const flip = (value: string, at: number) =>
      `${value.slice(0, at)}${value[at] === "A" ? "B" : "A"}${value.slice(at + 1)}`;
    const strictStart = new WebClient(t);
    await strictStart.get("/sign-in/oidc/strict");
    const otherProviders = strictStart.cookies.get("regauth_oidc_flow") ?? "";
    const now = Math.floor(Date.now() / 1000);
    const expired = identity.sealFlow({
      provider: "test",
      state,
      nonce: "n",
      codeVerifier: "v".repeat(43),
      next: "/",
      createdAtUnix: now - 601,
    });
    for (const [why, cookie] of [
      ["tampered at the start", flip(sealed, 5)],
      ["tampered in the middle", flip(sealed, Math.floor(sealed.length / 2))],
      ["tampered tag", flip(sealed, sealed.length - 2)],
      ["truncated", sealed.slice(0, -10)],
      ["truncated to the prefix", "v1."],
      ["oversized", `${sealed}${"A".repeat(5000)}`],
      ["another provider's", otherProviders],
      ["expired", expired],
      ["empty", ""],
      ["not base64url", `v1.${"%00".repeat(40)}`],
      ["another version", `v2.${sealed.slice(3)}`],
      ["an old-style random id", "x".repeat(43)],
    ] as const) {
      const c = new WebClient(t);
      const answer = await c.request("GET", `${back.pathname}${back.search}`, {
        headers: { cookie: `regauth_oidc_flow=${cookie}` },
      });
      expect({ why, status: answer.status }).toEqual({ why, status: 400 });
      expect(answer.text).toContain("This sign-in expired or was already used");
    }
    // The real one still works after all that, once.
    const done = await owner.get(`${back.pathname}${back.search}`);
    expect(done.status).toBe(200);
    const again = await new WebClient(t).request("GET", `${back.pathname}${back.search}`, {
      headers: { cookie: `regauth_oidc_flow=${sealed}` },
    });
    expect(again.status).toBe(400);
    expect(again.text).toContain("This sign-in expired or was already used");
  });

  it("an unlinked identity never takes over a local account of the same name; an administrator's link lets it in", async () => {
    const { answer } = await signInThroughProvider(new WebClient(t), "test", "carol", CALLBACK);
    expect(answer.status).toBe(409);
    expect(answer.text).toContain("An account named carol exists already");
    expect(answer.text).toContain("regauth identity link carol --provider test --subject carol");
    expect(findUser(db, "carol")?.passwordHash).not.toBe("!");
    linkIdentity(db, {
      account: "carol",
      provider: "test",
      issuer: op.issuer,
      subject: "carol",
      nowUnix: now,
    });
    const linked = await signInThroughProvider(new WebClient(t), "test", "carol", CALLBACK);
    expect(linked.answer.status).toBe(200);
    expect(linked.answer.text).toContain("Signed in as carol");
  });

  it("refuses a user outside the allowed group, a claim that is no account name, and unlinked identities under link_only", async () => {
    const outside = await signInThroughProvider(new WebClient(t), "test", "mallory", CALLBACK);
    expect(outside.answer.status).toBe(403);
    expect(outside.answer.text).toContain("Only members of registry-users");
    expect(findUser(db, "mallory")).toBeNull();
    const badName = await signInThroughProvider(new WebClient(t), "test", "Not A Name", CALLBACK);
    expect(badName.answer.status).toBe(403);
    expect(badName.answer.text).toContain("cannot be a regauth account name");
    // Names registration refuses (the account would own NAME/*): built-in, and claimed by the ACL (shared/*).
    for (const login of ["library", "shared", "erin"]) {
      const reserved = await signInThroughProvider(new WebClient(t), "test", login, CALLBACK);
      expect({ login, status: reserved.answer.status }).toEqual({ login, status: 403 });
      expect(reserved.answer.text).toContain(`The account name ${login} is not available`);
      expect(findUser(db, login)).toBeNull();
    }
    const strict = await signInThroughProvider(new WebClient(t), "strict", "bob", STRICT_CALLBACK);
    expect(strict.answer.status).toBe(403);
    expect(strict.answer.text).toContain("No regauth account is linked");
    expect(findUser(db, "bob")).toBeNull();
  });

  it.each(CLAIMED_NAMES.map(([why, claimed, outcome], i) => [why, outcome, claimed, i] as const))(
    "a first sign-in whose preferred_username has %s is %s",
    async (_why, outcome, claimed, i) => {
      const count = () =>
        db
          .query<{ n: number }, []>(
            "SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM identity_links) AS n",
          )
          .get()?.n ?? 0;
      const before = count();
      const { answer } = await signInThroughProvider(new WebClient(t), "test", `claims-${i}`, CALLBACK);
      if (outcome === "accepted") {
        expect(answer.status).toBe(200);
        expect(answer.text).toContain(`Signed in as ${claimed}`);
        expect(findUser(db, claimed)?.passwordHash).toBe("!");
        expect(count()).toBe(before + 2);
        return;
      }
      expect(answer.status).toBe(403);
      expect(answer.text).toContain("cannot be a regauth account name");
      expect(answer.text).toContain("Sign-in refused");
      expect(answer.headers.get("set-cookie") ?? "").not.toContain("regauth_session=");
      expect(findUser(db, claimed)).toBeNull();
      expect(count()).toBe(before);
    },
  );

  it("the provider's groups are ACL labels of the account's access tokens", async () => {
    const alice = findUser(db, "alice");
    if (!alice) throw new Error("alice signs in first");
    const { secret } = createAccessToken(db, key, {
      owner: "alice",
      name: "ci",
      scopes: ["pull"],
      repositoryPatterns: ["*"],
      expiresAtUnix: null,
      nowUnix: now,
    });
    const ask = async (scope: string) => {
      const res = await t.app.handle(
        new Request(`http://localhost/auth?service=registry&scope=${encodeURIComponent(scope)}`, {
          headers: { authorization: `Basic ${Buffer.from(`alice:${secret}`).toString("base64")}` },
        }),
      );
      const body = (await res.json()) as { token?: string };
      const payload = JSON.parse(
        Buffer.from((body.token ?? "..").split(".")[1] ?? "", "base64url").toString() || "{}",
      );
      return (payload.access ?? []) as { name: string; actions: string[] }[];
    };
    expect(await ask("repository:shared/tools:pull")).toEqual([
      { type: "repository", name: "shared/tools", actions: ["pull"] } as never,
    ]);
    // A label the claims did not give matches nothing: carol (no dev group) is not let in.
    const { secret: carols } = createAccessToken(db, key, {
      owner: "carol",
      name: "ci",
      scopes: ["pull"],
      repositoryPatterns: ["*"],
      expiresAtUnix: null,
      nowUnix: now,
    });
    const res = await t.app.handle(
      new Request("http://localhost/auth?service=registry&scope=repository:shared/tools:pull", {
        headers: { authorization: `Basic ${Buffer.from(`carol:${carols}`).toString("base64")}` },
      }),
    );
    const body = (await res.json()) as { token?: string };
    const payload = JSON.parse(
      Buffer.from((body.token ?? "..").split(".")[1] ?? "", "base64url").toString() || "{}",
    );
    const granted = (payload.access ?? []) as { actions: string[] }[];
    expect(granted.flatMap((a) => a.actions)).toEqual([]);
  });

  it("the re-check after the user is removed at the provider ends the session and deletes the tokens", async () => {
    const browser = new WebClient(t);
    const { answer } = await signInThroughProvider(browser, "test", "bob", CALLBACK);
    expect(answer.status).toBe(200);
    const bob = findUser(db, "bob");
    if (!bob) throw new Error("no bob");
    const { secret } = createAccessToken(db, key, {
      owner: "bob",
      name: "laptop",
      scopes: ["push"],
      repositoryPatterns: ["bob/*"],
      expiresAtUnix: null,
      // Made after the sign-in, as on the tokens page (the link's creation bounds what a failed re-check deletes).
      nowUnix: Math.floor(Date.now() / 1000),
    });
    expect(findTokenBySecret(db, key, secret)).not.toBeNull();
    // Still there at the provider: the re-check passes, nothing ends.
    const passing = await identity.revalidate(db, null, now + 61);
    expect(passing.ended).toBe(0);
    expect((await browser.get("/tokens")).status).toBe(200);
    op.accounts.delete("bob");
    const failing = await identity.revalidate(db, null, now + 200);
    expect(failing.ended).toBe(1);
    const after = await browser.get("/tokens");
    expect(after.status).toBe(303);
    expect(after.location).toContain("/sign-in");
    expect(findTokenBySecret(db, key, secret)).toBeNull();
    const groups = db
      .query<{ n: number }, [number]>("SELECT count(*) AS n FROM group_members WHERE user_id = ?")
      .get(bob.id);
    expect(groups?.n).toBe(0);
    // And a new sign-in is refused by the provider itself now (no such account there).
  });
});
