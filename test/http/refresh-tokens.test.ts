/**
 * Refresh tokens through the token endpoint, as the clients send them (reference
 * protocol_and_peers.md §B): docker login (GET offline_token=true), nerdctl (POST
 * access_type=offline), the docker daemon, containerd and ggcr (POST refresh grant, scopes
 * space-joined), containers/image (POST refresh grant, scope repeated).
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { grant } from "../../src/accounts/permissions.ts";
import { createUser, setEnabled, setPasswordHash } from "../../src/accounts/users.ts";
import { log } from "../../src/log.ts";
import { quickHash, testAccountsApp } from "../accounts-helpers.ts";
import { basic, req, testApp, verifyToken } from "../helpers.ts";
import { writeHook } from "../hook-fixtures.ts";

const NOW = Math.floor(Date.now() / 1000);
const FORM = { "content-type": "application/x-www-form-urlencoded" };

type App = Awaited<ReturnType<typeof testAccountsApp>>;

interface TokenBody {
  token?: string;
  access_token: string;
  refresh_token?: string;
  scope?: string;
  expires_in: number;
}

const logLines: string[] = [];
let restoreLog: () => void = () => {};
beforeAll(() => {
  restoreLog = log.capture(logLines);
});
afterAll(() => restoreLog());

async function app(config: Record<string, unknown> = {}): Promise<App> {
  const t = await testAccountsApp({
    users: { alice: { password: quickHash("alice-password"), labels: { team: ["ops"] } }, "": {} },
    acl: [
      { match: { labels: { team: "ops" }, name: "ops/*" }, actions: ["pull", "push"] },
      { match: { account: "alice" }, actions: ["pull"] },
    ],
    ...config,
  });
  createUser(t.db, { name: "bob", passwordHash: quickHash("bob-password"), nowUnix: NOW });
  grant(t.db, { kind: "user", name: "bob" }, "team/*", "write", NOW);
  return t;
}

async function getLogin(t: App, user: string, password: string, query = "&offline_token=true") {
  const res = await t.app.handle(
    req(`/auth?account=${user}&client_id=docker&service=registry${query}`, {
      headers: { authorization: basic(user, password) },
    }),
  );
  return { status: res.status, body: (await res.json()) as TokenBody };
}

async function post(t: App, form: string) {
  const res = await t.app.handle(req("/auth", { method: "POST", headers: FORM, body: form }));
  const text = await res.text();
  return { status: res.status, text, body: JSON.parse(text) as TokenBody, res };
}

async function accessOf(t: App, token: string) {
  return (await verifyToken(token, t.loaded, "registry")).claims;
}

describe("issuing refresh tokens", async () => {
  const t = await app();

  it("GET offline_token=true (docker login) returns a refresh_token for a config user and a database user", async () => {
    for (const [user, password] of [
      ["alice", "alice-password"],
      ["bob", "bob-password"],
    ] as const) {
      const { status, body } = await getLogin(t, user, password);
      expect(status).toBe(200);
      expect(body.refresh_token).toMatch(/^rt1\./);
    }
  });

  it("no refresh_token without offline_token=true, nor for anonymous clients", async () => {
    expect((await getLogin(t, "bob", "bob-password", "")).body.refresh_token).toBeUndefined();
    expect(
      (await getLogin(t, "bob", "bob-password", "&offline_token=false")).body.refresh_token,
    ).toBeUndefined();
    const anonymous = await t.app.handle(req("/auth?service=registry&offline_token=true"));
    expect(anonymous.status).toBe(200);
    expect(((await anonymous.json()) as TokenBody).refresh_token).toBeUndefined();
  });

  it("POST grant_type=password with access_type=offline returns one; without it, none", async () => {
    const base = "grant_type=password&username=bob&password=bob-password&service=registry&client_id=nerdctl";
    const offline = await post(t, `${base}&access_type=offline`);
    expect(offline.status).toBe(200);
    expect(offline.body.refresh_token).toMatch(/^rt1\./);
    expect((await post(t, base)).body.refresh_token).toBeUndefined();
    expect((await post(t, `${base}&access_type=online`)).body.refresh_token).toBeUndefined();
  });

  it("an ext_auth user gets none (no stored hash to revoke against); the field is simply absent", async () => {
    const hook = writeHook('read u p\n[ "$u" = carol ] && [ "$p" = carol-pw ] && exit 0\nexit 1');
    const { app } = await testApp({ ext_auth: { command: hook }, acl: [] });
    const res = await app.handle(
      req("/auth?service=registry&offline_token=true", {
        headers: { authorization: basic("carol", "carol-pw") },
      }),
    );
    expect(res.status).toBe(200);
    const body = (await res.json()) as TokenBody;
    expect(body.token).toBeString();
    expect(body.refresh_token).toBeUndefined();
  });

  it("a refresh token never verifies as an access token (not a JWT signed with the registry key)", async () => {
    const { body } = await getLogin(t, "bob", "bob-password");
    await expect(verifyToken(body.refresh_token ?? "", t.loaded, "registry")).rejects.toThrow();
  });

  it("with refresh_expiration 0 none is issued and every refresh grant is refused", async () => {
    const on = await app();
    const { body } = await getLogin(on, "bob", "bob-password");
    const off = await app({ token: { issuer: "test-issuer", refresh_expiration: 0 } });
    expect((await getLogin(off, "bob", "bob-password")).body.refresh_token).toBeUndefined();
    const refused = await post(
      off,
      `grant_type=refresh_token&refresh_token=${body.refresh_token}&service=registry`,
    );
    expect(refused.status).toBe(401);
  });
});

describe("redeeming refresh tokens", async () => {
  const t = await app();
  const bobToken = (await getLogin(t, "bob", "bob-password")).body.refresh_token ?? "";
  const aliceToken = (await getLogin(t, "alice", "alice-password")).body.refresh_token ?? "";

  it("docker daemon: one scope, client_id=docker → the right access and the SAME refresh token", async () => {
    const r = await post(
      t,
      `grant_type=refresh_token&refresh_token=${bobToken}&service=registry&client_id=docker&scope=repository%3Ateam%2Fapp%3Apull%2Cpush`,
    );
    expect(r.status).toBe(200);
    expect(r.res.headers.get("cache-control")).toBe("no-store");
    expect(r.body.refresh_token).toBe(bobToken);
    const claims = await accessOf(t, r.body.access_token);
    expect(claims.sub).toBe("bob");
    expect(claims.access).toEqual([{ type: "repository", name: "team/app", actions: ["pull", "push"] }]);
    expect(r.body.scope).toBe("repository:team/app:pull,push");
  });

  it("containerd / ggcr: space-joined scopes in one field", async () => {
    for (const clientId of ["containerd-client", "go-containerregistry"]) {
      const form = new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: bobToken,
        service: "registry",
        client_id: clientId,
        scope: "repository:team/app:pull repository:other/app:pull,push",
      });
      const r = await post(t, form.toString());
      expect(r.status).toBe(200);
      expect(r.body.refresh_token).toBe(bobToken);
      const claims = await accessOf(t, r.body.access_token);
      expect(claims.access).toEqual([
        { type: "repository", name: "team/app", actions: ["pull"] },
        { type: "repository", name: "other/app", actions: [] },
      ]);
    }
  });

  it("containers/image: scope repeated; a config user keeps its labels (ACL by label)", async () => {
    const form = new URLSearchParams({
      grant_type: "refresh_token",
      refresh_token: aliceToken,
      service: "registry",
    });
    form.append("client_id", "containers/image");
    form.append("scope", "repository:ops/tool:pull,push");
    form.append("scope", "repository:misc/x:pull,push");
    const r = await post(t, form.toString());
    expect(r.status).toBe(200);
    const claims = await accessOf(t, r.body.access_token);
    expect(claims.sub).toBe("alice");
    expect(claims.access).toEqual([
      { type: "repository", name: "ops/tool", actions: ["pull", "push"] },
      { type: "repository", name: "misc/x", actions: ["pull"] },
    ]);
  });

  it("no scope (a login check) still yields a token", async () => {
    const r = await post(t, `grant_type=refresh_token&refresh_token=${bobToken}&service=registry`);
    expect(r.status).toBe(200);
    expect((await accessOf(t, r.body.access_token)).access).toEqual([]);
  });

  it("a Basic header on a refresh grant is ignored: the token decides who the client is", async () => {
    const res = await t.app.handle(
      req("/auth", {
        method: "POST",
        headers: { ...FORM, authorization: basic("alice", "alice-password") },
        body: `grant_type=refresh_token&refresh_token=${bobToken}&service=registry`,
      }),
    );
    const body = (await res.json()) as TokenBody;
    expect((await accessOf(t, body.access_token)).sub).toBe("bob");
  });

  it("an account parameter naming someone else is refused", async () => {
    const r = await post(
      t,
      `grant_type=refresh_token&refresh_token=${bobToken}&service=registry&account=alice`,
    );
    expect(r.status).toBe(400);
    const own = await post(
      t,
      `grant_type=refresh_token&refresh_token=${bobToken}&service=registry&account=bob`,
    );
    expect(own.status).toBe(200);
    // An invalid token is a 401 whatever the account parameter says.
    const forged = await post(
      t,
      "grant_type=refresh_token&refresh_token=rt1.x.y&service=registry&account=alice",
    );
    expect(forged.status).toBe(401);
  });

  it("another service is refused with 401 and the usual envelope; the token is in no log line nor body", async () => {
    logLines.length = 0;
    const r = await post(t, `grant_type=refresh_token&refresh_token=${bobToken}&service=other`);
    expect(r.status).toBe(401);
    expect(r.body).toMatchObject({ errors: [{ code: "UNAUTHORIZED" }], error: "unauthorized" });
    expect(r.text).not.toContain(bobToken);
    const failures = logLines.filter((line) => line.includes("authentication failed"));
    expect(failures).toHaveLength(1);
    expect(failures[0]).toContain('reason="wrong service"');
    expect(failures[0]).toContain("account=bob");
    expect(logLines.join("\n")).not.toContain(bobToken.split(".")[2] ?? "never");
  });

  it("a disable revokes for good: re-enabling does not revive the old token; a new login gets a working one", async () => {
    const t2 = await app();
    const token = (await getLogin(t2, "bob", "bob-password")).body.refresh_token ?? "";
    const grantForm = (rt: string) => `grant_type=refresh_token&refresh_token=${rt}&service=registry`;
    expect((await post(t2, grantForm(token))).status).toBe(200);
    setEnabled(t2.db, "bob", false);
    expect((await post(t2, grantForm(token))).status).toBe(401);
    setEnabled(t2.db, "bob", true);
    expect((await post(t2, grantForm(token))).status).toBe(401);
    expect(logLines.some((line) => line.includes('reason="credentials changed"'))).toBe(true);
    const fresh = (await getLogin(t2, "bob", "bob-password")).body.refresh_token ?? "";
    expect(fresh).not.toBe(token);
    expect((await post(t2, grantForm(fresh))).status).toBe(200);
  });

  it("a password change revokes on the next refresh", async () => {
    const t2 = await app();
    const token = (await getLogin(t2, "bob", "bob-password")).body.refresh_token ?? "";
    setPasswordHash(t2.db, "bob", quickHash("bob-new-password"));
    expect((await post(t2, `grant_type=refresh_token&refresh_token=${token}&service=registry`)).status).toBe(
      401,
    );
  });

  it("failed refresh grants count against the login throttle (429 after the burst)", async () => {
    const t3 = await app();
    const token = (await getLogin(t3, "bob", "bob-password")).body.refresh_token ?? "";
    const forged = `${token.slice(0, -2)}${token.endsWith("AA") ? "BA" : "AA"}`;
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      statuses.push(
        (await post(t3, `grant_type=refresh_token&refresh_token=${forged}&service=registry`)).status,
      );
    }
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(401));
    expect(statuses.slice(10)).toEqual([429, 429]);
    // The forged token's claim is not logged as the account.
    const line = logLines.findLast((l) => l.includes('reason="bad signature"')) ?? "";
    expect(line).toContain("claimed_account=bob");
    expect(line).not.toContain(" account=");
  });

  it("hostile refresh_token values are 401 (or 400 when empty), never 5xx", async () => {
    const hostile = ["", "rt1.", "rt1..", "rt1.%00.x", "\u0000", "rt1.".padEnd(60_000, "a"), "é".repeat(100)];
    for (const value of hostile) {
      const form = new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: value,
        service: "registry",
      });
      const r = await post(t, form.toString());
      expect(r.status).toBe(value === "" ? 400 : 401);
    }
    const twice = await post(t, `grant_type=refresh_token&refresh_token=a&refresh_token=b&service=registry`);
    expect(twice.status).toBe(400);
  });
});
