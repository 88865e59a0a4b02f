import { Database } from "bun:sqlite";
import { describe, expect, it, spyOn } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { addMember, createGroup } from "../../src/accounts/groups.ts";
import { grant } from "../../src/accounts/permissions.ts";
import { createUser, findUser } from "../../src/accounts/users.ts";
import { LoginThrottle } from "../../src/authn/throttle.ts";
import { backgroundWriterFor } from "../../src/db/background-writer.ts";
import { log } from "../../src/log.ts";
import { cli, quickHash, testAccountsApp } from "../accounts-helpers.ts";
import { writeHook } from "../hook-fixtures.ts";
import { basic, makeTempDir, req, verifyToken } from "../helpers.ts";

const NOW = Math.floor(Date.now() / 1000);

type App = Awaited<ReturnType<typeof testAccountsApp>>;

async function token(
  t: App,
  scopes: string[],
  credentials?: [string, string],
  headers: Record<string, string> = {},
): Promise<{
  status: number;
  access: { type: string; name: string; actions: string[] }[];
  body: string;
  res: Response;
}> {
  const query = new URLSearchParams({ service: "registry" });
  for (const scope of scopes) query.append("scope", scope);
  const res = await t.app.handle(
    req(`/auth?${query}`, {
      headers: { ...headers, ...(credentials ? { authorization: basic(...credentials) } : {}) },
    }),
  );
  const body = await res.text();
  if (res.status !== 200) return { status: res.status, access: [], body, res };
  const { claims } = await verifyToken((JSON.parse(body) as { token: string }).token, t.loaded, "registry");
  return { status: 200, access: claims.access, body, res };
}

function actionsOf(access: { name: string; actions: string[] }[], name: string): string[] {
  return access.find((a) => a.name === name)?.actions ?? [];
}

describe("database users and permissions through the token endpoint", async () => {
  const t = await testAccountsApp({
    users: { carol: { password: quickHash("config-carol") } },
    acl: [
      { match: { account: "alice", name: "blocked/*" }, actions: [] },
      { match: { account: "carol" }, actions: ["pull"] },
    ],
  });
  createUser(t.db, { name: "alice", passwordHash: quickHash("alice-pass"), nowUnix: NOW });
  createUser(t.db, { name: "carol", passwordHash: quickHash("db-carol"), nowUnix: NOW });
  createUser(t.db, { name: "root", passwordHash: quickHash("root-pass"), isAdmin: true, nowUnix: NOW });
  grant(t.db, { kind: "user", name: "alice" }, "team/*", "write", NOW);
  grant(t.db, { kind: "user", name: "alice" }, "blocked/*", "admin", NOW);
  grant(t.db, { kind: "user", name: "carol" }, "team/*", "admin", NOW);

  it("grants a database user its permissions (write = pull, push) and its personal namespace", async () => {
    const r = await token(
      t,
      [
        "repository:team/app:pull,push,delete",
        "repository:alice/app:pull,push,delete",
        "repository:other/app:pull",
      ],
      ["alice", "alice-pass"],
    );
    expect(r.status).toBe(200);
    expect(actionsOf(r.access, "team/app")).toEqual(["pull", "push"]);
    expect(actionsOf(r.access, "alice/app")).toEqual(["delete", "pull", "push"]);
    expect(actionsOf(r.access, "other/app")).toEqual([]);
  });

  it("precedence: a matching config ACL rule decides before database permissions (even actions: [])", async () => {
    const r = await token(t, ["repository:blocked/app:pull"], ["alice", "alice-pass"]);
    expect(actionsOf(r.access, "blocked/app")).toEqual([]);
    // carol's config rule grants pull on everything; her database admin grant is never reached.
    const c = await token(t, ["repository:team/app:pull,push"], ["carol", "config-carol"]);
    expect(actionsOf(c.access, "team/app")).toEqual(["pull"]);
  });

  it("precedence: config users authenticate before database users of the same name", async () => {
    expect((await token(t, [], ["carol", "config-carol"])).status).toBe(200);
    expect((await token(t, [], ["carol", "db-carol"])).status).toBe(401);
  });

  it("admins get everything, including delete and the catalog; nobody else gets the catalog", async () => {
    const r = await token(
      t,
      ["repository:any/thing:delete,pull,push", "registry:catalog:*"],
      ["root", "root-pass"],
    );
    expect(actionsOf(r.access, "any/thing")).toEqual(["delete", "pull", "push"]);
    expect(actionsOf(r.access, "catalog")).toEqual(["*"]);
    const a = await token(t, ["registry:catalog:*"], ["alice", "alice-pass"]);
    expect(actionsOf(a.access, "catalog")).toEqual([]);
  });

  it("anonymous: refused while nothing is public, then gets exactly the public grants", async () => {
    expect((await token(t, ["repository:pub/app:pull"])).status).toBe(401);
    grant(t.db, { kind: "public" }, "pub/*", "read", NOW);
    const r = await token(t, ["repository:pub/app:pull,push", "repository:team/app:pull"]);
    expect(r.status).toBe(200);
    expect(actionsOf(r.access, "pub/app")).toEqual(["pull"]);
    expect(actionsOf(r.access, "team/app")).toEqual([]);
  });

  it("records the last login without delaying the response", async () => {
    await token(t, [], ["alice", "alice-pass"]);
    // Queued for the background writer (src/db/background-writer.ts), written in its next batch.
    expect(backgroundWriterFor(t.db).pending).toBeGreaterThanOrEqual(1);
    await backgroundWriterFor(t.db).flush();
    expect(findUser(t.db, "alice")?.lastLoginAtUnix).toBeGreaterThanOrEqual(NOW);
  });
});

describe("cache coherence with the offline CLI in another process", () => {
  it("a password change, disable or delete by `regauth user` takes effect at once", async () => {
    const t = await testAccountsApp({});
    const dir = ["--data-dir", t.dataDir];
    expect((await cli(["user", "add", "dana", "--password-stdin", ...dir], "dana-pass-1\n")).exitCode).toBe(
      0,
    );
    expect((await token(t, [], ["dana", "dana-pass-1"])).status).toBe(200);
    expect((await token(t, [], ["dana", "dana-pass-1"])).status).toBe(200); // now cached
    expect((await cli(["user", "passwd", "dana", "--password-stdin", ...dir], "dana-pass-2")).exitCode).toBe(
      0,
    );
    expect((await token(t, [], ["dana", "dana-pass-1"])).status).toBe(401);
    expect((await token(t, [], ["dana", "dana-pass-2"])).status).toBe(200);
    expect((await cli(["user", "disable", "dana", ...dir])).exitCode).toBe(0);
    const disabled = await token(t, [], ["dana", "dana-pass-2"]);
    expect(disabled.status).toBe(401);
    expect(disabled.body).toContain("disabled by an administrator");
    // Registration is off: nothing awaits approval (issue 10).
    expect(disabled.body).not.toContain("approval");
    // Wrong password on a disabled account: the generic answer, nothing about its state.
    expect((await token(t, [], ["dana", "wrong-pass"])).body).not.toContain("disabled");
    expect((await cli(["user", "enable", "dana", ...dir])).exitCode).toBe(0);
    expect((await token(t, [], ["dana", "dana-pass-2"])).status).toBe(200);
    expect((await cli(["user", "rm", "dana", ...dir])).exitCode).toBe(0);
    expect((await token(t, [], ["dana", "dana-pass-2"])).status).toBe(401);
  });
});

describe("registration by docker login", () => {
  it("off by default: an unknown name is a plain 401", async () => {
    const t = await testAccountsApp({});
    expect((await token(t, [], ["newbie", "newbie-pass"])).status).toBe(401);
    expect(findUser(t.db, "newbie")).toBeNull();
  });

  it("open: creates the account and logs in; its personal namespace works", async () => {
    const t = await testAccountsApp({ registration: { mode: "open" } });
    const r = await token(t, ["repository:newbie/app:push,pull"], ["newbie", "newbie-pass"]);
    expect(r.status).toBe(200);
    expect(actionsOf(r.access, "newbie/app")).toEqual(["pull", "push"]);
    expect((await token(t, [], ["newbie", "other-pass"])).status).toBe(401);
  });

  it("open: refuses bad names with a message, creating nothing", async () => {
    const t = await testAccountsApp({ registration: { mode: "open" } });
    for (const name of ["Newbie", "аdmin", "x'); DROP TABLE users;--"]) {
      const r = await token(t, [], [name, "newbie-pass"]);
      expect(r.status).toBe(401);
      expect(r.body).toContain("cannot register");
    }
    expect(t.db.query("SELECT count(*) AS n FROM users").get()).toEqual({ n: 0 });
  });

  it("refuses namespaces the config ACL hands out and reserved names, without saying why (review H4)", async () => {
    const t = await testAccountsApp({
      registration: { mode: "open" },
      users: { ci: { password: quickHash("ci-password") } },
      acl: [
        { match: { account: "ci", name: "prod/*" }, actions: ["*"] },
        { match: { account: "ci", name: "${account}-cache/*" }, actions: ["*"] },
      ],
    });
    grant(t.db, { kind: "public" }, "public/*", "read", NOW);
    for (const name of ["prod", "library", "admin", "public"]) {
      const r = await token(t, [`repository:${name}/app:pull,push,delete`], [name, "stranger-password"]);
      expect(r.status).toBe(401);
      expect(r.body).toContain("this name is not available");
      expect(r.body).not.toContain("prod/");
      expect(findUser(t.db, name)).toBeNull();
    }
    // ci keeps prod/*.
    const ci = await token(t, ["repository:prod/app:push"], ["ci", "ci-password"]);
    expect(actionsOf(ci.access, "prod/app")).toEqual(["push"]);
  });

  it("approval: creates a disabled account, says it awaits approval, works once enabled", async () => {
    const t = await testAccountsApp({ registration: { mode: "approval" } });
    const first = await token(t, [], ["pending", "pending-pass"]);
    expect(first.status).toBe(401);
    expect(first.body).toContain("awaits approval");
    const again = await token(t, [], ["pending", "pending-pass"]);
    expect(again.body).toContain("awaits approval");
    expect(findUser(t.db, "pending")?.isEnabled).toBe(false);
    expect((await cli(["user", "enable", "pending", "--data-dir", t.dataDir])).exitCode).toBe(0);
    expect((await token(t, [], ["pending", "pending-pass"])).status).toBe(200);
  });

  it("50 concurrent registrations of one name: one account; same password all succeed, others fail", async () => {
    const t = await testAccountsApp({ registration: { mode: "open" } });
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        token(t, [], ["race", i % 2 === 0 ? "same-password" : `other-${i}`]),
      ),
    );
    expect(t.db.query("SELECT count(*) AS n FROM users WHERE name = 'race'").get()).toEqual({ n: 1 });
    const ok = results.filter((r) => r.status === 200).length;
    // The winner's password is either "same-password" (25 requests use it) or one other-N (1 request).
    expect([1, 25]).toContain(ok);
  });
});

describe("database-derived rights belong to principals the database authenticated (review H3)", () => {
  it("a config user admin limited by the ACL is not widened by the bootstrap database admin", async () => {
    const t = await testAccountsApp({
      users: { admin: { password: quickHash("config-admin-pw") } },
      acl: [{ match: { account: "admin", name: "mine/*" }, actions: ["*"] }],
    });
    // What `regauth serve` did before it learned to leave a config admin alone.
    createUser(t.db, { name: "admin", passwordHash: quickHash("db-admin-pw"), isAdmin: true, nowUnix: NOW });
    const r = await token(
      t,
      ["repository:other/app:pull,push,delete", "repository:mine/app:pull,push", "registry:catalog:*"],
      ["admin", "config-admin-pw"],
    );
    expect(r.status).toBe(200);
    expect(actionsOf(r.access, "other/app")).toEqual([]);
    expect(actionsOf(r.access, "catalog")).toEqual([]);
    expect(actionsOf(r.access, "mine/app")).toEqual(["pull", "push"]);
  });

  it("a config user sharing a database account's name gets neither its grants, groups nor namespace", async () => {
    const t = await testAccountsApp({
      users: { dana: { password: quickHash("config-dana"), labels: { group: ["ops"] } } },
      accounts: { group_labels: ["group"] },
    });
    createUser(t.db, { name: "dana", passwordHash: quickHash("db-dana"), nowUnix: NOW });
    createGroup(t.db, "devs", NOW);
    createGroup(t.db, "ops", NOW);
    addMember(t.db, "devs", "dana");
    grant(t.db, { kind: "user", name: "dana" }, "team/*", "admin", NOW);
    grant(t.db, { kind: "group", name: "devs" }, "devs/*", "write", NOW);
    grant(t.db, { kind: "group", name: "ops" }, "ops/*", "write", NOW);
    grant(t.db, { kind: "public" }, "pub/*", "read", NOW);
    const scopes = [
      "repository:team/app:pull",
      "repository:devs/app:pull",
      "repository:dana/app:pull",
      "repository:ops/app:pull,push",
      "repository:pub/app:pull",
    ];
    const r = await token(t, scopes, ["dana", "config-dana"]);
    expect(r.status).toBe(200);
    for (const name of ["team/app", "devs/app", "dana/app"]) expect(actionsOf(r.access, name)).toEqual([]);
    // Label-derived groups and public grants apply to every principal.
    expect(actionsOf(r.access, "ops/app")).toEqual(["pull", "push"]);
    expect(actionsOf(r.access, "pub/app")).toEqual(["pull"]);
  });

  it("a registered account gets its personal namespace at once", async () => {
    const t = await testAccountsApp({ registration: { mode: "open" } });
    const r = await token(t, ["repository:newbie/app:pull,push"], ["newbie", "newbie-pass"]);
    expect(actionsOf(r.access, "newbie/app")).toEqual(["pull", "push"]);
  });
});

describe("anonymous access admitted by a public grant (review H2)", () => {
  it("gets the public grants only: a config ACL ip rule does not apply to it", async () => {
    // docker_auth reference.yml starts with IP rules: 127.0.0.0/8 gets "*" (for authenticated users).
    const t = await testAccountsApp({
      server: { real_ip_header: "X-Real-IP" },
      users: { alice: { password: quickHash("alice-password") } },
      acl: [{ match: { ip: "127.0.0.0/8" }, actions: ["*"] }],
    });
    const scopes = ["repository:secret/app:pull,push,delete", "repository:public/app:pull,push"];
    const loopback = { "x-real-ip": "127.0.0.1" };
    expect((await token(t, scopes, undefined, loopback)).status).toBe(401); // nothing public yet
    grant(t.db, { kind: "public" }, "public/*", "read", NOW); // README quick start step
    const anonymous = await token(t, scopes, undefined, loopback);
    expect(anonymous.status).toBe(200);
    expect(actionsOf(anonymous.access, "secret/app")).toEqual([]);
    expect(actionsOf(anonymous.access, "public/app")).toEqual(["pull"]);
    // Authenticated users still get the ip rule.
    const alice = await token(t, scopes, ["alice", "alice-password"], loopback);
    expect(actionsOf(alice.access, "secret/app").sort()).toEqual(["delete", "pull", "push"]);
  });

  it("ext_authz is not asked for it", async () => {
    const asked = join(makeTempDir(), "asked");
    const t = await testAccountsApp({
      ext_authz: {
        command: writeHook('echo asked >> "$1"; echo \'{"actions": ["*"]}\'; exit 0'),
        args: [asked],
      },
    });
    grant(t.db, { kind: "public" }, "public/*", "read", NOW);
    const r = await token(t, ["repository:secret/app:pull,push", "repository:public/app:pull"]);
    expect(r.status).toBe(200);
    expect(actionsOf(r.access, "secret/app")).toEqual([]);
    expect(actionsOf(r.access, "public/app")).toEqual(["pull"]);
    expect(existsSync(asked)).toBe(false);
  });

  it('the config ACL still decides for anonymous clients when the config defines the "" user', async () => {
    const t = await testAccountsApp({
      users: { "": {} },
      acl: [{ match: { account: "" }, actions: ["pull"] }],
    });
    grant(t.db, { kind: "public" }, "public/*", "read", NOW);
    const r = await token(t, ["repository:secret/app:pull,push"]);
    expect(actionsOf(r.access, "secret/app")).toEqual(["pull"]);
  });
});

describe("registration next to ext_auth", () => {
  it("a control character in the password does not register a hook user's name (review C1)", async () => {
    // ext_auth knows bob (password "bob-secret"); bob is in no other back-end.
    const hook = writeHook('read u p; [ "$u" = bob ] || exit 2; [ "$p" = bob-secret ] && exit 0; exit 1');
    const t = await testAccountsApp({
      registration: { mode: "open", allow_with_external_users: true },
      ext_auth: { command: hook, cache_ttl_seconds: 0 },
      acl: [{ match: { account: "bob" }, actions: ["*"] }],
    });
    expect((await token(t, ["repository:bob/app:pull"], ["bob", "bob-secret"])).status).toBe(200);
    for (const password of ["attacker-pw\u0001", "attacker-pw\n", "attacker\u0000pw"]) {
      expect((await token(t, ["repository:bob/app:pull"], ["bob", password])).status).toBe(401);
    }
    expect(findUser(t.db, "bob")).toBeNull();
    expect((await token(t, ["repository:bob/app:pull"], ["bob", "bob-secret"])).status).toBe(200);
  });

  it("refuses a control character in a new account's password, creating nothing", async () => {
    const t = await testAccountsApp({ registration: { mode: "open" } });
    const r = await token(t, [], ["newbie", "newbie-pass\u0001"]);
    expect(r.status).toBe(401);
    expect(r.body).toContain("control characters");
    expect(findUser(t.db, "newbie")).toBeNull();
  });
});

describe("failed-login throttling", () => {
  it("429 with Retry-After for the hammering address only; the victim's own address still logs in", async () => {
    const t = await testAccountsApp({ server: { real_ip_header: "X-Forwarded-For" } });
    createUser(t.db, { name: "victim", passwordHash: quickHash("victim-pass"), nowUnix: NOW });
    const attacker = { "x-forwarded-for": "203.0.113.9" };
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++)
      statuses.push((await token(t, [], ["victim", `guess-${i}`], attacker)).status);
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(401));
    expect(statuses.slice(10)).toEqual([429, 429]);
    const throttled = await token(t, [], ["victim", "victim-pass"], attacker);
    expect(throttled.status).toBe(429);
    expect(Number(throttled.res.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(throttled.body).toContain("too many failed logins");
    expect(
      (await token(t, [], ["victim", "victim-pass"], { "x-forwarded-for": "198.51.100.7" })).status,
    ).toBe(200);
  });
});

describe("a shared address (review M1)", () => {
  it("per-ip-budget-refuses-correct-password: others' failures there do not lock out who logs in there", async () => {
    const t = await testAccountsApp({
      server: { real_ip_header: "X-Real-IP" },
      users: { alice: { password: quickHash("alice-password") } },
    });
    createUser(t.db, { name: "bob", passwordHash: quickHash("bob-password"), nowUnix: NOW });
    // 100+ sequential failures: what is counted here is the budget, not their time, so neither the
    // failure-latency floor (tested under "timing parity") nor an argon2id dummy hash each.
    delete t.issuer.failureLatency;
    t.verifier.useDummyHash(quickHash("never-sent"));
    const shared = { "x-real-ip": "198.51.100.1" }; // NAT, CI runners, a proxy without real_ip_header
    // alice (config user) and bob (database user) log in there in the morning.
    expect((await token(t, [], ["alice", "alice-password"], shared)).status).toBe(200);
    expect((await token(t, [], ["bob", "bob-password"], shared)).status).toBe(200);
    // Someone else behind the same address spends its whole budget.
    const lines: string[] = [];
    const restore = log.capture(lines);
    let failures = 0;
    try {
      while (
        failures < 150 &&
        (await token(t, [], [`nobody${failures}`, "wrong-password"], shared)).status === 401
      )
        failures++;
      // The budget still stops that spray, and a name never seen there.
      expect(failures).toBeGreaterThanOrEqual(100);
      expect(failures).toBeLessThan(150);
      expect((await token(t, [], ["newcomer", "wrong-password"], shared)).status).toBe(429);
    } finally {
      restore();
    }
    // docs/accounts.md: a successful login is never slowed by others' failures at its address,
    // whether its password is cached (alice, bob) or checked again (alice's cache entry gone).
    expect((await token(t, [], ["alice", "alice-password"], shared)).status).toBe(200);
    expect((await token(t, [], ["bob", "bob-password"], shared)).status).toBe(200);
    t.verifier.clear();
    expect((await token(t, [], ["alice", "alice-password"], shared)).status).toBe(200);
    // Only the credential that succeeded is exempt (review 2, M1): other passwords for alice are
    // new guesses and the spent address refuses them, so her own logins hand out no guesses.
    const guesses: number[] = [];
    for (let i = 0; i < 11; i++) guesses.push((await token(t, [], ["alice", `guess-${i}`], shared)).status);
    expect(guesses).toEqual(Array(11).fill(429));
    expect((await token(t, [], ["alice", "alice-password"], shared)).status).toBe(200);
  });
});

describe("throttling is charged before the password check (review H1)", () => {
  it("throttle-check-then-act-race-allows-unbounded-parallel-guesses: 200 parallel guesses, 10 checked", async () => {
    const t = await testAccountsApp({
      server: { real_ip_header: "X-Real-IP" },
      users: { alice: { password: quickHash("alice-password") } },
    });
    // Counted from here: the failure-latency calibration's own checks at start are done.
    await t.issuer.failureLatency?.calibrated;
    const hashChecks = spyOn(Bun.password, "verify");
    try {
      const guesses = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          token(t, [], ["alice", `guess-${i}`], { "x-real-ip": "203.0.113.7" }),
        ),
      );
      const statuses = guesses.map((g) => g.status);
      // Per (address, account) the burst is 10: no more than 10 guesses reach the hash check.
      expect(statuses.filter((s) => s === 401)).toHaveLength(10);
      expect(statuses.filter((s) => s === 429)).toHaveLength(190);
      expect(hashChecks).toHaveBeenCalledTimes(10);
    } finally {
      hashChecks.mockRestore();
    }
    // alice from her own address is unaffected.
    expect((await token(t, [], ["alice", "alice-password"], { "x-real-ip": "198.51.100.7" })).status).toBe(
      200,
    );
  });

  it("registration-bulk-bypasses-address-budget: 150 parallel registrations from one address, at most 100", async () => {
    const startedMs = performance.now();
    const t = await testAccountsApp({
      server: { real_ip_header: "X-Real-IP" },
      registration: { mode: "open" },
    });
    const responses = await Promise.all(
      Array.from({ length: 150 }, (_, i) =>
        token(t, [], [`bulk${i}`, "bulk-password"], { "x-real-ip": "192.0.2.9" }),
      ),
    );
    const created = t.db.query("SELECT count(*) AS n FROM users WHERE name LIKE 'bulk%'").get() as {
      n: number;
    };
    expect(responses.filter((r) => r.status === 200)).toHaveLength(created.n);
    expect(created.n).toBeLessThanOrEqual(100);
    expect(responses.filter((r) => r.status === 429).length).toBeGreaterThanOrEqual(50);
    // Everything else is "busy, retry" (the password-hash queue), never an error or a success.
    expect(responses.every((r) => [200, 429, 503].includes(r.status))).toBe(true);
    // Sequentially too: a successful registration keeps its charge, and so does a "busy" answer
    // for the address's own pressure on the hash queue (review M4: refunding those let a few
    // addresses hold the queue full), so the budget runs out at 100 in all, give or take the refill.
    const busy = responses.filter((r) => r.status === 503).length;
    let sequential = 0;
    while (sequential < 60) {
      const r = await token(t, [], [`seq${sequential}`, "bulk-password"], { "x-real-ip": "192.0.2.9" });
      if (r.status === 429) break;
      expect(r.status).toBe(200);
      sequential++;
    }
    expect(created.n + busy + sequential).toBeGreaterThanOrEqual(100);
    // The address budget refills one every 3 s: on a loaded machine this test takes a while.
    const refilled = Math.ceil((performance.now() - startedMs) / 3000);
    expect(created.n + busy + sequential).toBeLessThanOrEqual(100 + refilled);
  }, 30_000); // ~100 argon2id hashes, two at a time: seconds on a loaded 2-core machine

  it("registration is charged per IPv6 /48 too: its /64s cannot create accounts without limit", async () => {
    const t = await testAccountsApp({
      server: { real_ip_header: "X-Real-IP" },
      registration: { mode: "open" },
    });
    // A budget of 5 (the default is the address's: 100, then one every 3 s), so the test is quick.
    t.issuer.throttle = new LoginThrottle({
      perAccount: { burst: 10, refillSeconds: 30 },
      perIp: { burst: 5, refillSeconds: 100_000 },
      successExemptionSeconds: 86_400,
      maxEntries: 1000,
    });
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 8; i++) {
      const r = await token(t, [], [`net${i}`, "net-password"], { "x-real-ip": `2001:db8:7:${i}::1` });
      statuses.push(r.status);
      if (r.status === 429) retryAfter = r.res.headers.get("retry-after");
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
    expect(Number(retryAfter)).toBeGreaterThan(0);
    expect(findUser(t.db, "net5")).toBeNull();
    // Another /48, and a refused name (nothing created) does not spend the budget.
    expect((await token(t, [], ["admin", "net-password"], { "x-real-ip": "2001:db8:8::1" })).status).toBe(
      401,
    );
    expect((await token(t, [], ["other0", "net-password"], { "x-real-ip": "2001:db8:8:1::1" })).status).toBe(
      200,
    );
    // Logins of the accounts created there still work.
    expect((await token(t, [], ["net0", "net-password"], { "x-real-ip": "2001:db8:7:99::1" })).status).toBe(
      200,
    );
  });

  it("a registration under another process's lock is 503 at once, and keeps its throttle charge (review finding 9)", async () => {
    const t = await testAccountsApp({
      server: { real_ip_header: "X-Real-IP" },
      registration: { mode: "open" },
    });
    const smallBudget = () =>
      new LoginThrottle({
        perAccount: { burst: 10, refillSeconds: 30 },
        perIp: { burst: 3, refillSeconds: 100_000 },
        successExemptionSeconds: 86_400,
        maxEntries: 1000,
      });
    t.issuer.throttle = smallBudget();
    const holder = new Database(t.db.filename);
    holder.run("BEGIN IMMEDIATE"); // as the CLI or a backup would, from another process
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        const startedMs = performance.now();
        const r = await token(t, [], [`locked${i}`, "locked-password"], { "x-real-ip": "192.0.2.77" });
        statuses.push(r.status);
        if (r.status === 503) {
          expect(Number(r.res.headers.get("retry-after"))).toBeGreaterThan(0);
          // The connection's busy_timeout here is 5 s: the write did not wait for it.
          expect(performance.now() - startedMs).toBeLessThan(2500);
        }
      }
      // Each 503 kept its charge: the client's own repeats spend its budget.
      expect(statuses).toEqual([503, 503, 503, 429]);
      expect((t.db.query("PRAGMA busy_timeout").get() as { timeout: number }).timeout).toBe(5000);
    } finally {
      holder.run("ROLLBACK");
      holder.close();
    }
    t.issuer.throttle = smallBudget();
    expect((await token(t, [], ["locked0", "locked-password"], { "x-real-ip": "192.0.2.77" })).status).toBe(
      200,
    );
  });

  it("a CI fan-out (same correct password, in parallel) is not refused after the burst", async () => {
    const t = await testAccountsApp({ server: { real_ip_header: "X-Real-IP" } });
    createUser(t.db, { name: "ci", passwordHash: quickHash("ci-password"), nowUnix: NOW });
    const statuses = await Promise.all(
      Array.from({ length: 40 }, () => token(t, [], ["ci", "ci-password"], { "x-real-ip": "192.0.2.50" })),
    );
    expect(statuses.map((r) => r.status)).toEqual(Array(40).fill(200));
  });

  it("a request that fails with an error is not counted as a failed login", async () => {
    const t = await testAccountsApp({ server: { real_ip_header: "X-Real-IP" } });
    createUser(t.db, { name: "erin", passwordHash: quickHash("erin-password"), nowUnix: NOW });
    const broken = spyOn(t.verifier, "verify").mockRejectedValue(new Error("back-end down"));
    const lines: string[] = [];
    const restore = log.capture(lines);
    try {
      for (let i = 0; i < 15; i++)
        expect((await token(t, [], ["erin", `try-${i}`], { "x-real-ip": "192.0.2.60" })).status).toBe(500);
    } finally {
      restore();
      broken.mockRestore();
    }
    expect((await token(t, [], ["erin", "erin-password"], { "x-real-ip": "192.0.2.60" })).status).toBe(200);
  });
});

// Review M4: ten addresses kept the password-check queue full (2 running, 64 waiting) for 25 s, and
// their "busy" answers were refunded, so every uncached login from anywhere else got 503.
describe("a flood from many addresses does not shut everyone else out (review M4)", () => {
  it("a newcomer and a credential known at its address are still answered", async () => {
    const t = await testAccountsApp({
      server: { real_ip_header: "X-Real-IP" },
      users: {
        alice: { password: quickHash("alice-password") },
        bob: { password: quickHash("bob-password") },
      },
    });
    t.verifier.useDummyHash(quickHash("never-sent"));
    await t.issuer.failureLatency?.calibrated;
    const alicesAddress = { "x-real-ip": "198.51.100.7" };
    expect((await token(t, [], ["alice", "alice-password"], alicesAddress)).status).toBe(200);
    t.verifier.clear(); // her next login is checked again: it needs the queue
    const slowHash = Bun.password.verify.bind(Bun.password);
    const verify = spyOn(Bun.password, "verify").mockImplementation(async (password, hash) => {
      await Bun.sleep(20); // a real cost-10 hash: ~50 ms
      return slowHash(password, hash);
    });
    try {
      const flood = Array.from({ length: 10 }, (_, source) =>
        Array.from({ length: 40 }, (_, i) =>
          token(t, [], [`name${i}`, `guess-${source}-${i}`], { "x-real-ip": `203.0.113.${source}` }),
        ),
      ).flat();
      await Bun.sleep(5); // the flood is queued (or refused) by now
      const [newcomer, knownGood] = await Promise.all([
        token(t, [], ["bob", "bob-password"], { "x-real-ip": "192.0.2.50" }),
        token(t, [], ["alice", "alice-password"], alicesAddress),
      ]);
      expect(newcomer.status).toBe(200);
      expect(knownGood.status).toBe(200);
      const floodStatuses = (await Promise.all(flood)).map((r) => r.status);
      expect(floodStatuses.filter((s) => s === 503).length).toBeGreaterThan(200); // the queue was full
      expect(floodStatuses.every((s) => s === 401 || s === 503)).toBe(true);
    } finally {
      verify.mockRestore();
    }
  }, 30_000);
});

describe("timing parity", () => {
  it("with the database, an unknown name is checked against an argon2id hash like a database user", async () => {
    const t = await testAccountsApp({});
    await t.issuer.failureLatency?.calibrated; // its own checks, timed at start, are not this request's
    const verify = spyOn(Bun.password, "verify");
    try {
      expect((await token(t, [], ["nobody-here", "some-password"])).status).toBe(401);
      expect(verify).toHaveBeenCalledTimes(1);
      expect(String(verify.mock.calls[0]?.[1])).toStartWith("$argon2id$v=19$m=12288,t=3,p=1$");
    } finally {
      verify.mockRestore();
    }
  });

  // Review L5: the floor was "the slowest failure seen recently", so the first failure against a
  // config bcrypt user took twice as long as any other until the floor rose.
  it("the very first failure already takes as long as a slow config user's wrong password", async () => {
    const slowHash = Bun.password.hashSync("alice-password", { algorithm: "bcrypt", cost: 11 });
    const t = await testAccountsApp({ users: { alice: { password: slowHash } } });
    const timed = async (credentials: [string, string]) => {
      const startedMs = performance.now();
      expect((await token(t, [], credentials)).status).toBe(401);
      return performance.now() - startedMs;
    };
    const unknownMs = await timed(["nobody-here", "some-password"]); // the first failure since start
    // The quickest of three of alice's failures: on a loaded machine one bcrypt-11 check can take
    // far longer than the start-up measurement, and that noise is not what this test is about.
    let aliceMs = Number.POSITIVE_INFINITY;
    for (const guess of ["wrong-password-1", "wrong-password-2", "wrong-password-3"])
      aliceMs = Math.min(aliceMs, await timed(["alice", guess]));
    expect(unknownMs).toBeGreaterThan(aliceMs * 0.8);
  });
});

describe("accounts.group_labels: label values name database groups", async () => {
  const config = {
    users: {
      // Labels as ldap_auth (memberOf → group), a hook or the config would produce them.
      dora: { password: quickHash("dora-pass"), labels: { group: ["builders", "no-such-group"] } },
      eve: { password: quickHash("eve-pass"), labels: { team: ["builders"] } },
    },
    accounts: { group_labels: ["group"] },
  };
  const t = await testAccountsApp(config);
  createGroup(t.db, "builders", NOW);
  grant(t.db, { kind: "group", name: "builders" }, "ci/*", "write", NOW);

  it("grants a labelled user the grants of the group its label names", async () => {
    const r = await token(t, ["repository:ci/app:pull,push,delete"], ["dora", "dora-pass"]);
    expect(r.status).toBe(200);
    expect(actionsOf(r.access, "ci/app")).toEqual(["pull", "push"]);
  });

  it("ignores labels under other keys", async () => {
    const r = await token(t, ["repository:ci/app:pull,push"], ["eve", "eve-pass"]);
    expect(actionsOf(r.access, "ci/app")).toEqual([]);
  });

  it("does nothing unless configured", async () => {
    const plain = await testAccountsApp({ users: config.users });
    createGroup(plain.db, "builders", NOW);
    grant(plain.db, { kind: "group", name: "builders" }, "ci/*", "write", NOW);
    const r = await token(plain, ["repository:ci/app:pull,push"], ["dora", "dora-pass"]);
    expect(actionsOf(r.access, "ci/app")).toEqual([]);
  });
});

describe("an empty password (review 2, M5)", () => {
  it("tells no known name from an unknown one, and is throttled like any failed login", async () => {
    const t = await testAccountsApp({ registration: { mode: "open" } });
    createUser(t.db, { name: "alice", passwordHash: quickHash("alice-password"), nowUnix: NOW });
    const known = await token(t, [], ["alice", ""]);
    const unknown = await token(t, [], ["bob", ""]);
    expect(known.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(unknown.body).toBe(known.body);
    expect(findUser(t.db, "bob")).toBeNull(); // no registration with an empty password
    delete t.issuer.failureLatency; // 110 sequential failures: the budget is counted, not their time
    const statuses: number[] = [];
    for (let i = 0; i < 110; i++) statuses.push((await token(t, [], [`probe${i}`, ""])).status);
    expect(statuses).toContain(429);
  });
});
