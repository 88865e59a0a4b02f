/**
 * Registration must not hand a stranger rights or a namespace the ACL wrote for someone else
 * (review findings 1, 2, 3 after issue 8 H1): before the fix each stranger's `docker login`
 * created the account and the token carried another user's rights.
 */
import { afterAll, describe, expect, it } from "bun:test";
import { SQL } from "bun";
import { join } from "node:path";
import { findUser } from "../../src/accounts/users.ts";
import { quickHash, testAccountsApp } from "../accounts-helpers.ts";
import { basic, makeTempDir, req, verifyToken } from "../helpers.ts";

type App = Awaited<ReturnType<typeof testAccountsApp>>;

async function token(t: App, scopes: string[], credentials: [string, string], service = "registry") {
  const query = new URLSearchParams({ service });
  for (const scope of scopes) query.append("scope", scope);
  const res = await t.app.handle(
    req(`/auth?${query}`, { headers: { authorization: basic(...credentials) } }),
  );
  const body = await res.text();
  if (res.status !== 200) return { status: res.status, body, actions: [] as string[] };
  const { claims } = await verifyToken((JSON.parse(body) as { token: string }).token, t.loaded, service);
  const actions = (claims.access as { actions: string[] }[]).flatMap((a) => a.actions).sort();
  return { status: 200, body, actions };
}

/** What must hold for every case: no account created, no rights handed out. */
async function expectRefused(t: App, name: string, scope: string, service = "registry") {
  const r = await token(t, [scope], [name, "stranger-password"], service);
  expect({ status: r.status, actions: r.actions, created: findUser(t.db, name) !== null }).toEqual({
    status: 401,
    actions: [],
    created: false,
  });
}

describe("registration takes namespaces the ACL names by pattern (H1 bypass)", () => {
  it("a /regex/ name rule: `prod` is registrable and owns ci's prod/*", async () => {
    const t = await testAccountsApp({
      registration: { mode: "open" },
      users: { ci: { password: quickHash("ci-password") } },
      acl: [{ match: { account: "ci", name: "/^prod\\/.+$/" }, actions: ["*"] }],
    });
    await expectRefused(t, "prod", "repository:prod/app:pull,push,delete");
  });

  it("a glob in the first component: `team-a` is registrable and owns ci's team-a/*", async () => {
    const t = await testAccountsApp({
      registration: { mode: "open" },
      users: { ci: { password: quickHash("ci-password") } },
      acl: [{ match: { account: "ci", name: "team-*/*" }, actions: ["*"] }],
    });
    await expectRefused(t, "team-a", "repository:team-a/app:pull,push,delete");
  });

  it("${labels:team}/* (docker_auth's documented idiom): `blue` is registrable and owns the blue team's namespace", async () => {
    const t = await testAccountsApp({
      registration: { mode: "open" },
      users: { alice: { password: quickHash("alice-password"), labels: { team: ["blue"] } } },
      acl: [{ match: { name: "${labels:team}/*" }, actions: ["*"] }],
    });
    // alice (team blue) owns blue/* through the ACL ...
    expect((await token(t, ["repository:blue/app:push"], ["alice", "alice-password"])).actions).toEqual([
      "push",
    ]);
    // ... and a stranger must not get it by registering "blue".
    await expectRefused(t, "blue", "repository:blue/app:pull,push,delete");
  });

  it("${account}-cache/* for a literal account: `ci-cache` is registrable and owns ci's cache namespace", async () => {
    const t = await testAccountsApp({
      registration: { mode: "open" },
      users: { ci: { password: quickHash("ci-password") } },
      acl: [{ match: { account: "ci", name: "${account}-cache/*" }, actions: ["*"] }],
    });
    await expectRefused(t, "ci-cache", "repository:ci-cache/layer:pull,push,delete");
  });
});

describe("account patterns with request placeholders are judged with empty values (H1 bypass)", () => {
  it("account `${service}-deploy`: `registry-deploy` is registrable and gets push", async () => {
    const t = await testAccountsApp({
      registration: { mode: "open" },
      accounts: { personal_namespaces: false },
      acl: [{ match: { account: "${service}-deploy", name: "prod/*" }, actions: ["push", "pull"] }],
    });
    await expectRefused(t, "registry-deploy", "repository:prod/app:push,pull");
  });
});

describe("acl_xorm rows that name accounts are not reserved (H1 bypass)", () => {
  const dir = makeTempDir("review-aclxorm-");
  const file = join(dir, "acl.db");
  const admin = new SQL({ adapter: "sqlite", filename: file, create: true });
  afterAll(() => admin.close());

  it("registration next to acl_xorm or ext_authz is a config error without allow_with_external_users", async () => {
    for (const backEnd of [
      { acl_xorm: { database_type: "sqlite3", conn_string: file, cache_ttl: "1s" } },
      { ext_authz: { command: "/bin/false" } },
    ]) {
      const error = await testAccountsApp({ registration: { mode: "open" }, ...backEnd }).catch(
        (e: unknown) => e,
      );
      expect(String(error)).toContain("allow_with_external_users");
    }
  });

  it("a row {account: deploy} → push: a stranger registers `deploy` and pushes", async () => {
    await admin.unsafe("CREATE TABLE xorm_acl_entry (acl_entry TEXT NULL, seq BIGINT NULL)");
    await admin`INSERT INTO xorm_acl_entry (seq, acl_entry) VALUES (${1}, ${JSON.stringify({ match: { account: "deploy", name: "prod/*" }, actions: ["push", "pull"] })})`;
    // With the flag set, the rows loaded at that moment still reserve what they single out.
    const t = await testAccountsApp({
      registration: { mode: "open", allow_with_external_users: true },
      accounts: { personal_namespaces: false },
      acl_xorm: { database_type: "sqlite3", conn_string: file, cache_ttl: "1s" },
    });
    const authorizer = t.issuer.authorizers.find((a) => a.name === "acl_xorm") as unknown as {
      reload(): Promise<void>;
      close(): Promise<void>;
    };
    await authorizer.reload();
    try {
      await expectRefused(t, "deploy", "repository:prod/app:push,pull");
      await expectRefused(t, "prod", "repository:prod/app:push,pull");
      // A name no row singles out registers as usual.
      expect((await token(t, ["repository:newbie/app:pull"], ["newbie", "newbie-password"])).status).toBe(
        200,
      );
    } finally {
      await authorizer.close();
    }
  });
});
