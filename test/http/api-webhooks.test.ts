/**
 * The webhook routes in-process (issue 11 item 4): the authorization matrix (administrator,
 * namespace administrator inside and outside their namespace, plain user, robot token,
 * anonymous), hostile input, URL policy refusals, the changed object in every answer, paging,
 * declared webhooks read-only, and no secret in listings or the audit log.
 */
import { describe, expect, it } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createAccessToken } from "../../src/access-tokens/index.ts";
import { grant } from "../../src/accounts/permissions.ts";
import { createUser } from "../../src/accounts/users.ts";
import { createRobot } from "../../src/robots/index.ts";
import { quickHash } from "../accounts-helpers.ts";
import { type ApiApp, call, testApiApp } from "../api-helpers.ts";
import { makeTempDir } from "../helpers.ts";

const NOW = Math.floor(Date.now() / 1000);
const ROOT: [string, string] = ["root", "root-password"];
const TESSA: [string, string] = ["tessa", "tessa-password"];
const ALICE: [string, string] = ["alice", "alice-password"];

async function setUp(config: Record<string, unknown> = {}) {
  const t = await testApiApp(config);
  for (const [name, admin] of [
    ["root", true],
    ["alice", false],
    ["tessa", false],
  ] as const)
    createUser(t.db, { name, passwordHash: quickHash(`${name}-password`), isAdmin: admin, nowUnix: NOW });
  grant(t.db, { kind: "user", name: "tessa" }, "team/*", "admin", NOW);
  createRobot(t.db, { ownerNamespace: "team", name: "ci", description: "", nowUnix: NOW });
  const robot = createAccessToken(t.db, t.accessTokenKey, {
    owner: "team+ci",
    name: "ci",
    scopes: ["push"],
    repositoryPatterns: ["*"],
    expiresAtUnix: null,
    nowUnix: NOW,
  }).secret;
  return { t, robot };
}

function count(t: ApiApp): number {
  return (t.db.query("SELECT count(*) AS n FROM webhooks").get() as { n: number }).n;
}

const hook = (name: string, patterns: string[], extra: Record<string, unknown> = {}) => ({
  name,
  url: "https://hooks.example.com/regauth",
  repository_patterns: patterns,
  ...extra,
});

describe("webhook routes: who may do what", async () => {
  const { t, robot } = await setUp();
  const rootHook = await call(t, "POST", "/webhooks", { auth: ROOT, body: hook("everything", ["*"]) });
  const teamHook = await call(t, "POST", "/webhooks", {
    auth: TESSA,
    body: hook("team", ["team/*", "team/app"]),
  });

  it("an administrator creates any webhook; the answer is the webhook with its secret, once", () => {
    expect(rootHook.status).toBe(201);
    expect(rootHook.body).toMatchObject({
      name: "everything",
      url: "https://hooks.example.com/regauth",
      repository_patterns: ["*"],
      events: ["repository.created", "tag.pushed", "tag.deleted"],
      enabled: true,
      state: "active",
      declared: false,
      created_by: "root",
    });
    expect(rootHook.body.secret).toMatch(/^whsec_/);
  });

  it("a namespace administrator creates one inside their namespace", () => {
    expect(teamHook.status).toBe(201);
    expect(teamHook.body.created_by).toBe("tessa");
  });

  it.each([
    ["a namespace admin outside the namespace", TESSA, ["other/*"], 403],
    ["a namespace admin for every repository", TESSA, ["*"], 403],
    ["a namespace admin mixing inside and outside", TESSA, ["team/*", "other/app"], 403],
    ["a plain user", ALICE, ["alice/*"], 403],
  ] as const)("refuses creation by %s", async (_who, auth, patterns, status) => {
    const before = count(t);
    const r = await call(t, "POST", "/webhooks", { auth, body: hook("nope", [...patterns]) });
    expect(r.status).toBe(status);
    expect(count(t)).toBe(before);
  });

  it("refuses a robot's token and anonymous callers (401: robot tokens never carry the api scope)", async () => {
    expect((await call(t, "POST", "/webhooks", { auth: robot, body: hook("r", ["team/*"]) })).status).toBe(
      401,
    );
    expect((await call(t, "GET", "/webhooks", { auth: robot })).status).toBe(401);
    expect((await call(t, "GET", "/webhooks", { auth: null })).status).toBe(401);
    expect((await call(t, "POST", "/webhooks", { auth: null, body: hook("a", ["*"]) })).status).toBe(401);
  });

  it("lists what each caller may manage, without secrets", async () => {
    const asRoot = await call(t, "GET", "/webhooks", { auth: ROOT });
    expect((asRoot.body.items as { name: string }[]).map((w) => w.name)).toEqual(["everything", "team"]);
    const asTessa = await call(t, "GET", "/webhooks", { auth: TESSA });
    expect((asTessa.body.items as { name: string }[]).map((w) => w.name)).toEqual(["team"]);
    expect((await call(t, "GET", "/webhooks", { auth: ALICE })).status).toBe(403);
    expect(JSON.stringify(asRoot.body)).not.toContain("whsec_");
  });

  it("another's webhook is a 404, like a missing one, for every operation", async () => {
    for (const [method, path] of [
      ["GET", "/webhooks/everything"],
      ["PATCH", "/webhooks/everything"],
      ["DELETE", "/webhooks/everything"],
      ["POST", "/webhooks/everything/test"],
      ["POST", "/webhooks/everything/secret"],
      ["GET", "/webhooks/everything/deliveries"],
      ["GET", `/webhooks/${rootHook.body.id}`],
      ["GET", "/webhooks/missing"],
    ] as const) {
      const r = await call(t, method, path, {
        auth: TESSA,
        ...(method === "POST" || method === "PATCH"
          ? { body: method === "PATCH" ? { enabled: false } : {} }
          : {}),
      });
      expect([path, r.status]).toEqual([path, 404]);
    }
    expect((await call(t, "GET", "/webhooks/everything", { auth: ROOT })).body.enabled).toBe(true);
  });

  it("a namespace admin cannot widen their webhook beyond their namespace", async () => {
    const r = await call(t, "PATCH", "/webhooks/team", { auth: TESSA, body: { repository_patterns: ["*"] } });
    expect(r.status).toBe(403);
    expect((await call(t, "GET", "/webhooks/team", { auth: TESSA })).body.repository_patterns).toEqual([
      "team/*",
      "team/app",
    ]);
  });

  it("every change returns the changed object and is audited without the secret", async () => {
    const disabled = await call(t, "PATCH", "/webhooks/team", {
      auth: TESSA,
      body: { enabled: false, events: ["tag.pushed"] },
    });
    expect(disabled.status).toBe(200);
    expect(disabled.body).toMatchObject({
      name: "team",
      enabled: false,
      state: "disabled",
      events: ["tag.pushed"],
    });
    // A disabled webhook sends no test.
    expect((await call(t, "POST", "/webhooks/team/test", { auth: TESSA, body: {} })).status).toBe(409);
    const enabled = await call(t, "PATCH", `/webhooks/${teamHook.body.id}`, {
      auth: TESSA,
      body: { enabled: true },
    });
    expect(enabled.body.state).toBe("active");
    const test = await call(t, "POST", "/webhooks/team/test", { auth: TESSA, body: {} });
    expect(test.status).toBe(201);
    expect(test.body).toMatchObject({
      webhook: "team",
      type: "webhook.test",
      test: true,
      status: "pending",
      attempts: 0,
    });
    const history = await call(t, "GET", "/webhooks/team/deliveries", { auth: TESSA });
    expect((history.body.items as { id: number }[]).map((d) => d.id)).toEqual([test.body.id as number]);
    const deleted = await call(t, "DELETE", "/webhooks/team", { auth: TESSA });
    expect(deleted.status).toBe(200);
    expect(deleted.body.name).toBe("team");
    await t.audit.log.flush?.();
    const events = t.audit.events.filter((e) => e.kind.startsWith("webhook."));
    expect(events.map((e) => e.kind)).toEqual([
      "webhook.created",
      "webhook.created",
      "webhook.updated",
      "webhook.updated",
      "webhook.deleted",
    ]);
    expect(JSON.stringify(events)).not.toContain("whsec_");
  });

  it("rotating the secret answers a new one, once; the listing still shows none", async () => {
    const rotated = await call(t, "POST", "/webhooks/everything/secret", { auth: ROOT, body: {} });
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).toMatch(/^whsec_/);
    expect(rotated.body.secret).not.toBe(rootHook.body.secret);
    expect(JSON.stringify((await call(t, "GET", "/webhooks/everything", { auth: ROOT })).body)).not.toContain(
      "whsec_",
    );
  });

  it("redeliver: a pending delivery is 409; another's is 404", async () => {
    const test = await call(t, "POST", "/webhooks/everything/test", { auth: ROOT, body: {} });
    expect(
      (await call(t, "POST", `/deliveries/${test.body.id}/redeliver`, { auth: ROOT, body: {} })).status,
    ).toBe(409);
    expect(
      (await call(t, "POST", `/deliveries/${test.body.id}/redeliver`, { auth: TESSA, body: {} })).status,
    ).toBe(404);
    expect((await call(t, "POST", "/deliveries/999999/redeliver", { auth: ROOT, body: {} })).status).toBe(
      404,
    );
  });
});

describe("webhook routes: hostile input", async () => {
  const { t } = await setUp({ webhooks: { allow_private_networks: ["192.168.7.0/24"] } });

  it.each([
    ["http://127.0.0.1:8080/", "loopback"],
    ["http://169.254.169.254/latest/meta-data/", "link-local"],
    ["http://[::1]/", "loopback"],
    ["http://0x7f000001/", "loopback"],
    ["http://2130706433/", "loopback"],
    ["http://localhost:5000/", "loopback"],
    ["http://[::ffff:10.0.0.1]/", "private"],
    ["http://192.168.8.1/", "private"],
    ["file:///etc/passwd", "only http and https"],
    ["gopher://example.com/", "only http and https"],
  ])("refuses the URL %s naming the rule", async (url, rule) => {
    const r = await call(t, "POST", "/webhooks", { auth: ROOT, body: hook("x", ["*"], { url }) });
    expect(r.status).toBe(400);
    expect(r.body.errors?.[0]?.message).toContain(rule);
    expect(count(t)).toBe(0);
  });

  it("accepts an address inside allow_private_networks", async () => {
    const r = await call(t, "POST", "/webhooks", {
      auth: ROOT,
      body: hook("lan", ["*"], { url: "http://192.168.7.20:9000/hook" }),
    });
    expect(r.status).toBe(201);
    const patched = await call(t, "PATCH", "/webhooks/lan", {
      auth: ROOT,
      body: { url: "http://127.0.0.1/" },
    });
    expect(patched.status).toBe(400);
    await call(t, "DELETE", "/webhooks/lan", { auth: ROOT });
  });

  it.each([
    ["an unknown field", { ...hook("a", ["*"]), admin: true }, "unknown field"],
    ["a wrong type", { ...hook("a", ["*"]), enabled: "yes" }, "body.enabled"],
    ["an unknown event", hook("a", ["*"], { events: ["image.pulled"] }), "body.events"],
    ["no patterns", hook("a", []), "body.repository_patterns"],
    ["a bad pattern", hook("a", ["../etc"]), "invalid repository pattern"],
    ["a script as name", hook("<script>alert(1)</script>", ["*"]), "body.name"],
    ["a too long URL", hook("a", ["*"], { url: `https://example.com/${"a".repeat(3000)}` }), "body.url"],
    ["a name that is a number", hook("123", ["*"]), "body.name"],
  ])("refuses %s with 400 and the field's path", async (_what, body, text) => {
    const r = await call(t, "POST", "/webhooks", { auth: ROOT, body });
    expect(r.status).toBe(400);
    expect(r.body.errors?.[0]?.message).toContain(text);
    expect(count(t)).toBe(0);
  });

  it("refuses a huge body with 413 and a wrong content type with 415", async () => {
    const huge = await call(t, "POST", "/webhooks", {
      auth: ROOT,
      rawBody: JSON.stringify(hook("a", ["*"], { url: `https://e.com/${"a".repeat(10_000_000)}` })),
      headers: { "content-type": "application/json" },
    });
    expect(huge.status).toBe(413);
    const text = await call(t, "POST", "/webhooks", {
      auth: ROOT,
      rawBody: "name=a",
      headers: { "content-type": "text/plain" },
    });
    expect(text.status).toBe(415);
  });

  it("shows a script in a URL path as data, and redacts credentials in URLs", async () => {
    const r = await call(t, "POST", "/webhooks", {
      auth: ROOT,
      body: hook("creds", ["*"], { url: "https://user:hunter2@hooks.example.com/<script>" }),
    });
    expect(r.status).toBe(201);
    expect(r.body.url).toBe("https://***@hooks.example.com/%3Cscript%3E");
    expect(r.res.headers.get("content-type")).toContain("application/json");
    const listed = await call(t, "GET", "/webhooks", { auth: ROOT });
    expect(JSON.stringify(listed.body)).not.toContain("hunter2");
    await t.audit.log.flush?.();
    expect(JSON.stringify(t.audit.events)).not.toContain("hunter2");
    await call(t, "DELETE", "/webhooks/creds", { auth: ROOT });
  });

  it("a duplicate name is 409", async () => {
    expect((await call(t, "POST", "/webhooks", { auth: ROOT, body: hook("dup", ["*"]) })).status).toBe(201);
    expect((await call(t, "POST", "/webhooks", { auth: ROOT, body: hook("dup", ["*"]) })).status).toBe(409);
    await call(t, "DELETE", "/webhooks/dup", { auth: ROOT });
  });

  it("pages webhooks and deliveries", async () => {
    for (let i = 0; i < 5; i++)
      await call(t, "POST", "/webhooks", { auth: ROOT, body: hook(`p${i}`, ["*"]) });
    const first = await call(t, "GET", "/webhooks?limit=2", { auth: ROOT });
    expect((first.body.items as unknown[]).length).toBe(2);
    const second = await call(t, "GET", `/webhooks?limit=2&cursor=${first.body.next_cursor}`, { auth: ROOT });
    expect((second.body.items as { name: string }[]).map((w) => w.name)).toEqual(["p2", "p3"]);
    for (let i = 0; i < 5; i++) await call(t, "POST", "/webhooks/p0/test", { auth: ROOT, body: {} });
    const page1 = await call(t, "GET", "/webhooks/p0/deliveries?limit=3", { auth: ROOT });
    const page2 = await call(t, "GET", `/webhooks/p0/deliveries?limit=3&cursor=${page1.body.next_cursor}`, {
      auth: ROOT,
    });
    const ids = [...(page1.body.items as { id: number }[]), ...(page2.body.items as { id: number }[])].map(
      (d) => d.id,
    );
    expect(ids.length).toBe(5);
    expect([...ids].sort((a, b) => b - a)).toEqual(ids);
    expect(page2.body.next_cursor).toBeNull();
    expect((await call(t, "GET", "/webhooks/p0/deliveries?cursor=garbage", { auth: ROOT })).status).toBe(400);
    expect((await call(t, "GET", "/webhooks?limit=0", { auth: ROOT })).status).toBe(400);
  });
});

describe("webhooks declared in the config", async () => {
  const dir = makeTempDir();
  const secretFile = join(dir, "hook.secret");
  writeFileSync(secretFile, "a-long-enough-declared-secret\n", { mode: 0o600 });
  const { t } = await setUp({
    webhooks: {
      declared: [
        {
          name: "ops",
          url: "https://ops.example.com/hook",
          repositories: ["team/*"],
          secret_file: secretFile,
        },
      ],
    },
  });

  it("are listed, marked declared, and read-only (409 naming the config)", async () => {
    const listed = await call(t, "GET", "/webhooks", { auth: ROOT });
    expect(listed.body.items).toEqual([
      expect.objectContaining({
        name: "ops",
        declared: true,
        created_by: "config",
        repository_patterns: ["team/*"],
      }),
    ]);
    for (const [method, path, body] of [
      ["PATCH", "/webhooks/ops", { enabled: false }],
      ["DELETE", "/webhooks/ops", undefined],
      ["POST", "/webhooks/ops/secret", {}],
    ] as const) {
      const r = await call(t, method, path, { auth: ROOT, ...(body ? { body } : {}) });
      expect(r.status).toBe(409);
      expect(r.body.errors?.[0]?.message).toContain("declared in the config");
    }
    // Visible to the namespace's administrator too, and still read-only.
    expect((await call(t, "GET", "/webhooks/ops", { auth: TESSA })).status).toBe(200);
    expect((await call(t, "POST", "/webhooks/ops/test", { auth: ROOT, body: {} })).status).toBe(201);
  });
});

describe("webhooks.enabled: false", async () => {
  const { t } = await setUp({ webhooks: { enabled: false } });
  it("still lists them, says switched-off, and sends no test", async () => {
    const created = await call(t, "POST", "/webhooks", { auth: ROOT, body: hook("off", ["*"]) });
    expect(created.body.state).toBe("switched-off");
    const test = await call(t, "POST", "/webhooks/off/test", { auth: ROOT, body: {} });
    expect(test.status).toBe(409);
    expect(test.body.errors?.[0]?.message).toContain("webhooks.enabled: false");
  });
});

describe("webhooks.max_webhooks (review of issue 11 item 4)", async () => {
  // Unbounded, a namespace administrator could make thousands (each push then fans out to every
  // one, and each holds up to max_pending queued deliveries).
  const { t } = await setUp({ webhooks: { max_webhooks: 2 } });

  it("creating beyond the cap is a 409 naming the key; deleting one makes room", async () => {
    expect((await call(t, "POST", "/webhooks", { auth: TESSA, body: hook("one", ["team/*"]) })).status).toBe(
      201,
    );
    expect((await call(t, "POST", "/webhooks", { auth: ROOT, body: hook("two", ["*"]) })).status).toBe(201);
    const third = await call(t, "POST", "/webhooks", { auth: TESSA, body: hook("three", ["team/*"]) });
    expect(third.status).toBe(409);
    expect(third.body.errors?.[0]?.message).toContain("webhooks.max_webhooks");
    expect(count(t)).toBe(2);
    expect((await call(t, "DELETE", "/webhooks/one", { auth: TESSA })).status).toBe(200);
    expect(
      (await call(t, "POST", "/webhooks", { auth: TESSA, body: hook("three", ["team/*"]) })).status,
    ).toBe(201);
  });
});
