/**
 * The Repositories and Webhooks pages in-process (issue 14 item 2): who may open what (the
 * API's matrix: administrator, namespace administrator inside and outside their namespace, a
 * user with team/* read, a user with nothing, anonymous), each page's contents and each action
 * compared with /api/v1's answer for the same caller, CSRF on every POST, pagination with the
 * catalog's cursor, and hostile input from forms and from the index, shown as text, never a 500.
 */
import { describe, expect, it } from "bun:test";
import { grant, parseGrantee } from "../../src/accounts/permissions.ts";
import { createUser } from "../../src/accounts/users.ts";
import { CONTENT_SECURITY_POLICY } from "../../src/http/pages/plugin.ts";
import { REPOSITORY_ROUTES } from "../../src/http/pages/repository-pages.ts";
import { WEBHOOK_ROUTES } from "../../src/http/pages/webhook-pages.ts";
import { recordManifestPush } from "../../src/registry-index/index-store.ts";
import { quickHash } from "../accounts-helpers.ts";
import { type ApiApp, call } from "../api-helpers.ts";
import { PASSWORD, testWebApp, WebClient } from "../web-helpers.ts";

type Role = "root" | "nsadmin" | "alice" | "bob" | "anonymous";
const ROLES: Role[] = ["root", "nsadmin", "alice", "bob", "anonymous"];
const SCRIPT = "<script>alert(1)</script>";
const HOST = "registry.example:5000";
const NOW_MS = 1_700_000_000_000;

function push(t: ApiApp, repository: string, tag: string, pusher: string | null = "alice", digest = "a") {
  recordManifestPush(t.db, {
    repository,
    tag,
    digest: `sha256:${digest.repeat(64).slice(0, 64)}`,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    sizeBytes: 1234,
    pusher,
    pusherAddress: "192.0.2.7",
    atUnixMs: NOW_MS,
    eventId: `${repository}:${tag}:${digest}`,
    source: "notification",
  });
}

/**
 * testWebApp's people (root; nsadmin with admin on team/*; alice, here with team/* read) and bob
 * with nothing; an index with team/, other/ and public/ repositories; two webhooks (everything,
 * made by root; team, inside team/*), the team one with a finished delivery.
 */
async function setUp(config: Record<string, unknown> = {}) {
  const t = await testWebApp({ notifications: { registry_host: HOST }, ...config });
  const now = Math.floor(Date.now() / 1000);
  createUser(t.db, { name: "bob", passwordHash: quickHash(PASSWORD), isEnabled: true, nowUnix: now });
  grant(t.db, parseGrantee("alice"), "team/*", "read", now);
  grant(t.db, parseGrantee("*"), "public/*", "read", now);
  push(t, "team/app", "v1");
  push(t, "team/app", "v2", "nsadmin", "b");
  push(t, "team/db", "latest");
  push(t, "other/x", "v1");
  push(t, "public/y", "1.0", null);
  const hook = (name: string, patterns: string[]) =>
    call(t, "POST", "/webhooks", {
      auth: ["root", PASSWORD],
      body: { name, url: "https://hooks.example.com/regauth", repository_patterns: patterns },
    });
  expect((await hook("everything", ["*"])).status).toBe(201);
  expect((await hook("team", ["team/*"])).status).toBe(201);
  expect((await call(t, "POST", "/webhooks/team/test", { auth: ["root", PASSWORD], body: {} })).status).toBe(
    201,
  );
  t.db.run(
    "UPDATE webhook_deliveries SET status = 'delivered', attempts = 1, response_status = 200, latency_ms = 12, response_excerpt = 'ok'",
  );
  return t;
}

async function clientFor(t: ApiApp, role: Role): Promise<WebClient> {
  const client = new WebClient(t);
  if (role !== "anonymous") expect((await client.signIn(role)).status).toBe(303);
  return client;
}

const links = (text: string, under: string) =>
  [...text.matchAll(new RegExp(`href="${under}/([^"?]+)"`, "g"))].map((m) => decodeURIComponent(m[1] ?? ""));

describe("who may open which page (the API's matrix)", async () => {
  const t = await setUp();
  const pages: [string, Record<Role, number>][] = [
    ["/repositories", { root: 200, nsadmin: 200, alice: 200, bob: 200, anonymous: 303 }],
    ["/repositories/team/app", { root: 200, nsadmin: 200, alice: 200, bob: 404, anonymous: 303 }],
    ["/repositories/other/x", { root: 200, nsadmin: 404, alice: 404, bob: 404, anonymous: 303 }],
    ["/repositories/public/y", { root: 200, nsadmin: 200, alice: 200, bob: 200, anonymous: 303 }],
    ["/repositories/team/nothing", { root: 404, nsadmin: 404, alice: 404, bob: 404, anonymous: 303 }],
    ["/webhooks", { root: 200, nsadmin: 200, alice: 403, bob: 403, anonymous: 303 }],
    ["/webhooks/team", { root: 200, nsadmin: 200, alice: 404, bob: 404, anonymous: 303 }],
    ["/webhooks/everything", { root: 200, nsadmin: 404, alice: 404, bob: 404, anonymous: 303 }],
    ["/webhooks/none", { root: 404, nsadmin: 404, alice: 404, bob: 404, anonymous: 303 }],
  ];
  for (const role of ROLES)
    it(`${role}: every page answers as the API does, with the CSP`, async () => {
      const client = await clientFor(t, role);
      for (const [path, expected] of pages) {
        const res = await client.get(path);
        expect({ path, status: res.status }).toEqual({ path, status: expected[role] });
        expect(res.headers.get("content-security-policy")).toBe(CONTENT_SECURITY_POLICY);
        if (role === "anonymous") expect(res.location).toStartWith("/sign-in?next=");
      }
    });

  for (const role of ["root", "nsadmin", "alice", "bob"] as const)
    it(`${role}: the list shows exactly the repositories the API lists for them, and the same 404`, async () => {
      const client = await clientFor(t, role);
      const page = await client.get("/repositories");
      const api = await call(t, "GET", "/repositories", { auth: [role, PASSWORD] });
      const apiNames = (api.body.items as { name: string }[]).map((r) => r.name);
      expect(links(page.text, "/repositories").sort()).toEqual(apiNames.sort());
      const hidden = await client.get("/repositories/other/x");
      const missing = await client.get("/repositories/other/nothing");
      if (role !== "root") {
        // The same words whether it exists or not.
        expect(hidden.text.replace("other/x", "N")).toBe(missing.text.replace("other/nothing", "N"));
      }
    });

  it("the navigation shows Repositories to database accounts, Webhooks to whom may list them", async () => {
    const nav = async (role: Role) =>
      /<nav class="main"[^]*?<\/nav>/.exec((await (await clientFor(t, role)).get("/account")).text)?.[0] ??
      "";
    expect(await nav("root")).toContain('href="/webhooks"');
    expect(await nav("nsadmin")).toContain('href="/webhooks"');
    expect(await nav("alice")).not.toContain('href="/webhooks"');
    for (const role of ["root", "alice", "bob"] as const)
      expect(await nav(role)).toContain('href="/repositories"');
  });

  it("accounts of other back-ends get neither page (the API has no viewer for them either)", async () => {
    const other = await setUp({
      users: { carol: { password: Bun.password.hashSync(PASSWORD, { algorithm: "bcrypt", cost: 4 }) } },
    });
    const carol = new WebClient(other);
    expect((await carol.signIn("carol")).status).toBe(303);
    const account = await carol.get("/account");
    expect(account.text).not.toContain('href="/repositories"');
    expect(account.text).not.toContain('href="/webhooks"');
    expect((await carol.get("/repositories")).status).toBe(403);
    expect((await carol.get("/webhooks")).status).toBe(403);
  });

  it("a repository's page: tags, short and full digest, size, pusher, pulls, the pull command to copy", async () => {
    const alice = await clientFor(t, "alice");
    const page = await alice.get("/repositories/team/app");
    expect(page.text).toContain(`docker pull ${HOST}/team/app:v1`);
    expect(page.text).toContain(`docker pull ${HOST}/team/app:v2`);
    expect(page.text).toContain(`<code>sha256:${"a".repeat(12)}</code>`);
    expect(page.text).toContain(`sha256:${"a".repeat(64)}`);
    expect(page.text).toContain("1.2 kB");
    // Who pushed; the address only to administrators and for one's own pushes (review of issue 11).
    expect(page.text).toContain("<td>nsadmin</td>");
    expect(page.text).toContain("alice from 192.0.2.7");
    expect(page.text).not.toContain("nsadmin from");
    const root = await clientFor(t, "root");
    expect((await root.get("/repositories/team/app")).text).toContain("nsadmin from 192.0.2.7");
    expect(page.text).toContain('data-copy="pull-0"');
    expect((await alice.get("/repositories/team%2Fapp")).status).toBe(200);
  });

  it("search takes the API's glob; a bad one is shown next to the field", async () => {
    const root = await clientFor(t, "root");
    expect(links((await root.get("/repositories?pattern=team%2F*")).text, "/repositories").sort()).toEqual([
      "team/app",
      "team/db",
    ]);
    const none = await root.get("/repositories?pattern=zzz%2F*");
    expect(none.text).toContain("No repository you may pull matches this pattern.");
    const bad = await root.get("/repositories?pattern=Team%2F%5B");
    expect(bad.status).toBe(400);
    expect(bad.text).toMatch(/name="pattern"[^>]*aria-invalid="true"/);
  });
});

describe("actions get the API's verdict", () => {
  const actions: {
    name: string;
    page: [string, Record<string, string> | [string, string][]];
    api: [string, string, Record<string, unknown>];
  }[] = [
    {
      name: "create a webhook inside team/*",
      page: [
        "/webhooks",
        [
          ["name", "new"],
          ["url", "https://hooks.example.com/new"],
          ["repository_patterns", "team/*"],
          ["events", "tag.pushed"],
        ],
      ],
      api: [
        "POST",
        "/webhooks",
        {
          name: "new",
          url: "https://hooks.example.com/new",
          repository_patterns: ["team/*"],
          events: ["tag.pushed"],
        },
      ],
    },
    {
      name: "create a webhook on everything",
      page: [
        "/webhooks",
        [
          ["name", "new"],
          ["url", "https://hooks.example.com/new"],
          ["repository_patterns", "*"],
          ["events", "tag.pushed"],
        ],
      ],
      api: [
        "POST",
        "/webhooks",
        {
          name: "new",
          url: "https://hooks.example.com/new",
          repository_patterns: ["*"],
          events: ["tag.pushed"],
        },
      ],
    },
    {
      name: "change the team webhook's URL",
      page: [
        "/webhooks/team",
        [
          ["url", "https://hooks.example.com/other"],
          ["repository_patterns", "team/*"],
          ["events", "tag.pushed"],
        ],
      ],
      api: [
        "PATCH",
        "/webhooks/team",
        { url: "https://hooks.example.com/other", repository_patterns: ["team/*"], events: ["tag.pushed"] },
      ],
    },
    {
      name: "widen the team webhook to everything",
      page: [
        "/webhooks/team",
        [
          ["url", "https://hooks.example.com/regauth"],
          ["repository_patterns", "*"],
          ["events", "tag.pushed"],
        ],
      ],
      api: [
        "PATCH",
        "/webhooks/team",
        { url: "https://hooks.example.com/regauth", repository_patterns: ["*"], events: ["tag.pushed"] },
      ],
    },
    {
      name: "disable the team webhook",
      page: ["/webhooks/team/disable", {}],
      api: ["PATCH", "/webhooks/team", { enabled: false }],
    },
    {
      name: "disable everything",
      page: ["/webhooks/everything/disable", {}],
      api: ["PATCH", "/webhooks/everything", { enabled: false }],
    },
    {
      name: "rotate the team secret",
      page: ["/webhooks/team/secret", {}],
      api: ["POST", "/webhooks/team/secret", {}],
    },
    {
      name: "test the team webhook",
      page: ["/webhooks/team/test", {}],
      api: ["POST", "/webhooks/team/test", {}],
    },
    {
      name: "test everything",
      page: ["/webhooks/everything/test", {}],
      api: ["POST", "/webhooks/everything/test", {}],
    },
    {
      name: "redeliver the team delivery",
      page: ["/deliveries/1/redeliver", {}],
      api: ["POST", "/deliveries/1/redeliver", {}],
    },
    {
      name: "delete the team webhook",
      page: ["/webhooks/team/delete", {}],
      api: ["DELETE", "/webhooks/team", {}],
    },
    {
      name: "delete everything",
      page: ["/webhooks/everything/delete", {}],
      api: ["DELETE", "/webhooks/everything", {}],
    },
    {
      name: "sync with the registry",
      page: ["/repositories/sync", {}],
      api: ["POST", "/repositories/sync", {}],
    },
  ];
  for (const role of ["root", "nsadmin", "alice", "bob"] as const)
    for (const action of actions)
      it(`${role}: ${action.name}`, async () => {
        const pageApp = await setUp();
        const client = await clientFor(pageApp, role);
        const page = await client.post(action.page[0], action.page[1]);
        expect(page.status).toBeLessThan(500);
        const apiApp = await setUp();
        const [method, path, body] = action.api;
        const api = await call(apiApp, method, path, {
          auth: [role, PASSWORD],
          ...(method === "DELETE" ? {} : { body }),
        });
        const verdict = (status: number) => (status < 400 ? "allowed" : status);
        expect({ role, action: action.name, verdict: verdict(page.status) }).toEqual({
          role,
          action: action.name,
          verdict: verdict(api.status),
        });
      });

  it("anonymous: every POST of these pages goes to sign in, and nothing changes", async () => {
    const t = await setUp();
    const before = t.db.query("SELECT count(*) AS n FROM webhooks").get();
    const client = new WebClient(t);
    for (const route of [...REPOSITORY_ROUTES, ...WEBHOOK_ROUTES].filter((r) => r.method === "POST")) {
      const path = route.path.replace(":name", "team").replace(":id", "1");
      const res = await client.post(path, {}, { csrf: "forged" });
      expect({ path, status: res.status, location: res.location }).toEqual({
        path,
        status: 303,
        location: "/sign-in",
      });
    }
    expect(t.db.query("SELECT count(*) AS n FROM webhooks").get()).toEqual(before);
  });
});

describe("CSRF on every POST", () => {
  for (const route of [...REPOSITORY_ROUTES, ...WEBHOOK_ROUTES].filter((r) => r.method === "POST"))
    it(`${route.path}: a forged or missing token, or another site, is 403 and changes nothing`, async () => {
      const t = await setUp();
      const root = await clientFor(t, "root");
      const path = route.path.replace(":name", "team").replace(":id", "1");
      const state = () => [
        t.db.query("SELECT id, url, is_enabled, secret_nonce FROM webhooks ORDER BY id").all(),
        t.db.query("SELECT count(*) AS n FROM webhook_deliveries").get(),
      ];
      const before = state();
      const fields: [string, string][] = [
        ["url", "https://hooks.example.com/changed"],
        ["repository_patterns", "team/*"],
        ["events", "tag.pushed"],
        ...(path === "/webhooks" ? ([["name", "forged"]] as [string, string][]) : []),
      ];
      const body = path === "/webhooks" || path === "/webhooks/team" ? fields : [];
      for (const options of [
        { csrf: null },
        { csrf: "A".repeat(43) },
        { headers: { "sec-fetch-site": "cross-site" } },
      ]) {
        const res = await root.post(path, body, options);
        expect({ path, options, status: res.status }).toEqual({ path, options, status: 403 });
      }
      expect(state()).toEqual(before);
    });
});

describe("the pages' own behaviour", () => {
  it("a new webhook's secret is shown once, with how receivers verify; never again", async () => {
    const t = await setUp();
    const root = await clientFor(t, "root");
    const created = await root.post("/webhooks", [
      ["name", "ci"],
      ["url", "https://ci.example.com/hook"],
      ["repository_patterns", "team/*"],
      ["events", "tag.pushed"],
      ["events", "tag.deleted"],
    ]);
    expect(created.status).toBe(201);
    const secret = /whsec_[\w-]+/.exec(created.text)?.[0] ?? "";
    expect(secret).not.toBe("");
    expect(created.text).toContain("X-Regauth-Signature");
    expect(created.text).toContain("Verifying a delivery");
    const api = await call(t, "GET", "/webhooks/ci", { auth: ["root", PASSWORD] });
    expect(api.body.events).toEqual(["tag.pushed", "tag.deleted"]);
    for (const path of ["/webhooks", "/webhooks/ci"])
      expect((await root.get(path)).text).not.toContain(secret);
    const rotated = await root.post("/webhooks/ci/secret", {});
    const second = /whsec_[\w-]+/.exec(rotated.text)?.[0] ?? "";
    expect(second).not.toBe("");
    expect(second).not.toBe(secret);
    expect((await root.get("/webhooks/ci")).text).not.toContain(second);
  });

  it("the delivery history: status, code, latency, attempts, excerpt; a test event queued from the page", async () => {
    const t = await setUp();
    const nsadmin = await clientFor(t, "nsadmin");
    const page = await nsadmin.get("/webhooks/team");
    expect(page.text).toContain("webhook.test");
    expect(page.text).toContain("delivered");
    expect(page.text).toContain("12 ms");
    expect(page.text).toContain("<code>ok</code>");
    expect(page.text).toContain('aria-label="Redeliver delivery 1"');
    const queued = await nsadmin.post("/webhooks/team/test", {});
    expect(queued.location).toBe("/webhooks/team?notice=test-queued");
    const after = await nsadmin.get(queued.location ?? "");
    expect(after.text).toContain("A test event was queued");
    expect(after.text).toContain('<span class="badge">pending</span>');
  });

  it("the delivery history pages with the API's cursor", async () => {
    const t = await setUp();
    for (let i = 0; i < 60; i++)
      expect(
        (await call(t, "POST", "/webhooks/everything/test", { auth: ["root", PASSWORD], body: {} })).status,
      ).toBe(201);
    const root = await clientFor(t, "root");
    const first = await root.get("/webhooks/everything");
    const next = /href="(\/webhooks\/everything\?cursor=[^"]+)"/.exec(first.text)?.[1];
    expect(next).toBeDefined();
    const second = await root.get(next ?? "");
    expect(second.status).toBe(200);
    expect(
      (second.text.match(/aria-label="Redeliver delivery|<span class="badge">pending/g) ?? []).length,
    ).toBe(10);
    expect(second.text).not.toContain("Older deliveries");
  });

  it("saving a webhook whose URL holds credentials (shown as ***) keeps them", async () => {
    const t = await setUp();
    const root = await clientFor(t, "root");
    const created = await root.post("/webhooks", [
      ["name", "basic"],
      ["url", "https://user:pass@hooks.example.com/x"],
      ["repository_patterns", "team/*"],
      ["events", "tag.pushed"],
    ]);
    expect(created.status).toBe(201);
    const page = await root.get("/webhooks/basic");
    expect(page.text).not.toContain("pass@");
    const shown = /name="url" type="text" value="([^"]+)"/.exec(page.text)?.[1] ?? "";
    expect(shown).toBe("https://***@hooks.example.com/x");
    const saved = await root.post("/webhooks/basic", [
      ["url", shown],
      ["repository_patterns", "team/app"],
      ["events", "tag.pushed"],
    ]);
    expect(saved.status).toBe(303);
    const row = t.db.query("SELECT url, repository_patterns FROM webhooks WHERE name = 'basic'").get() as {
      url: string;
      repository_patterns: string;
    };
    expect(row.url).toBe("https://user:pass@hooks.example.com/x");
    expect(row.repository_patterns).toContain("team/app");
  });

  it("declared webhooks are read-only, with a note", async () => {
    const { mkdtempSync, writeFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { tmpdir } = await import("node:os");
    const secretFile = join(mkdtempSync(join(tmpdir(), "regauth-web-")), "ops.secret");
    writeFileSync(secretFile, "a-secret-of-at-least-16-bytes\n");
    const t = await setUp({
      webhooks: {
        declared: [
          { name: "ops", url: "https://ops.example.com/x", repositories: ["*"], secret_file: secretFile },
        ],
      },
    });
    const root = await clientFor(t, "root");
    const page = await root.get("/webhooks/ops");
    expect(page.status).toBe(200);
    expect(page.text).toContain("declared in the config");
    expect(page.text).not.toContain('action="/webhooks/ops/delete"');
    expect(page.text).not.toContain("Save changes");
    expect((await root.post("/webhooks/ops/delete", {})).status).toBe(409);
    expect((await root.post("/webhooks/ops/test", {})).status).toBe(303);
  });

  it("a URL the policy refuses is shown next to the URL field with the API's words", async () => {
    const t = await setUp();
    const root = await clientFor(t, "root");
    const fields: [string, string][] = [
      ["name", "local"],
      ["url", "http://127.0.0.1:9/hook"],
      ["repository_patterns", "*"],
      ["events", "tag.pushed"],
    ];
    const page = await root.post("/webhooks", fields);
    expect(page.status).toBe(400);
    expect(page.text).toMatch(/name="url"[^>]*aria-invalid="true"/);
    const api = await call(t, "POST", "/webhooks", {
      auth: ["root", PASSWORD],
      body: { name: "local", url: "http://127.0.0.1:9/hook", repository_patterns: ["*"] },
    });
    const reason = (api.body.errors?.[0]?.message ?? "").replace(/^body\.url: /, "");
    expect(reason).not.toBe("");
    expect(page.text).toContain(Bun.escapeHTML(reason));
  });

  it("a namespace administrator's pattern outside their namespace is refused next to the patterns field", async () => {
    const t = await setUp();
    const nsadmin = await clientFor(t, "nsadmin");
    const form = await nsadmin.get("/webhooks");
    expect(form.text).toContain(">team/*</textarea>");
    const res = await nsadmin.post("/webhooks", [
      ["name", "wide"],
      ["url", "https://hooks.example.com/x"],
      ["repository_patterns", "team/*\nother/*"],
      ["events", "tag.pushed"],
    ]);
    expect(res.status).toBe(403);
    expect(res.text).toContain('id="webhook-patterns-error"');
    expect(res.text).toContain("must all lie inside team/");
    expect(res.text).toContain("team/*\nother/*</textarea>");
  });

  it("a webhook to a private address is allowed through webhooks.allow_private_networks", async () => {
    const t = await setUp({ webhooks: { allow_private_networks: ["127.0.0.0/8"] } });
    const root = await clientFor(t, "root");
    const page = await root.post("/webhooks", [
      ["name", "local"],
      ["url", "http://127.0.0.1:9/hook"],
      ["repository_patterns", "*"],
      ["events", "tag.pushed"],
    ]);
    expect(page.status).toBe(201);
  });

  it("repositories page with the catalog's cursor, a short page with a cursor included", async () => {
    const t = await setUp();
    // 1,100 repositories bob may not pull, before the one public one he may: the first page asks
    // about MAX_CHECKS_PER_PAGE of them and comes back empty with a cursor.
    for (let i = 0; i < 1100; i++) push(t, `aaa/r${String(i).padStart(4, "0")}`, "v1");
    const bob = await clientFor(t, "bob");
    const first = await bob.get("/repositories");
    expect(first.status).toBe(200);
    expect(first.text).toContain("None on this page; the search goes on in the next one.");
    const next = /href="(\/repositories\?cursor=[^"]+)"/.exec(first.text)?.[1];
    expect(next).toBeDefined();
    const second = await bob.get((next ?? "").replaceAll("&amp;", "&"));
    expect(links(second.text, "/repositories")).toEqual(["public/y"]);
    const root = await clientFor(t, "root");
    const all = await root.get("/repositories?pattern=aaa%2F*");
    expect(links(all.text, "/repositories")).toHaveLength(100);
    const rootNext = /href="(\/repositories\?[^"]*cursor=[^"]+)"/
      .exec(all.text)?.[1]
      ?.replaceAll("&amp;", "&");
    expect(rootNext).toContain("pattern=aaa%2F*");
    expect(links((await root.get(rootNext ?? "")).text, "/repositories")[0]).toBe("aaa/r0100");
  });

  it("an empty index tells a newcomer how to push, with the real host", async () => {
    const t = await testWebApp({ notifications: { registry_host: HOST } });
    const alice = await clientFor(t, "alice");
    const page = await alice.get("/repositories");
    expect(page.text).toContain("No images you may pull yet.");
    expect(page.text).toContain(`docker login -u alice ${HOST}`);
    expect(page.text).toContain(`docker push ${HOST}/`);
    const noHost = await testWebApp();
    const bare = await (await clientFor(noHost, "alice")).get("/repositories");
    expect(bare.text).toContain("docker push REGISTRY_HOST/");
  });

  it("administrators get the sync button only when a registry is configured; the report is shown", async () => {
    const t = await setUp();
    const root = await clientFor(t, "root");
    expect((await root.get("/repositories")).text).not.toContain("Sync with the registry now");
    const refused = await root.post("/repositories/sync", {});
    expect(refused.status).toBe(400);
    expect(refused.text).toContain("The sync failed: there is no registry to sync with");
    const registry = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (request) =>
        new URL(request.url).pathname === "/v2/_catalog"
          ? Response.json({ repositories: [] })
          : new Response("not found", { status: 404 }),
    });
    try {
      const synced = await setUp({ notifications: { registry_url: `http://127.0.0.1:${registry.port}` } });
      const admin = await clientFor(synced, "root");
      expect((await admin.get("/repositories")).text).toContain("Sync with the registry now");
      expect((await (await clientFor(synced, "alice")).get("/repositories")).text).not.toContain(
        "Sync with the registry now",
      );
      const report = await admin.post("/repositories/sync", {});
      expect(report.status).toBe(200);
      expect(report.text).toContain("Sync finished");
      expect(report.text).toContain("Repositories in the registry");
    } finally {
      registry.stop(true);
    }
    // A registry that does not answer: a failed sync shown on the page, not an error page.
    const gone = await setUp({ notifications: { registry_url: `http://127.0.0.1:${registry.port}` } });
    const failed = await (await clientFor(gone, "root")).post("/repositories/sync", {});
    expect(failed.status).toBe(502);
    expect(failed.text).toContain("The sync failed:");
    expect(failed.text).toContain("<h1>Repositories</h1>");
  });
});

describe("hostile input", () => {
  it("script in webhook names, URLs and patterns is shown as text", async () => {
    const t = await setUp();
    const root = await clientFor(t, "root");
    const pages = [
      await root.post("/webhooks", [
        ["name", SCRIPT],
        ["url", SCRIPT],
        ["repository_patterns", SCRIPT],
        ["events", "tag.pushed"],
      ]),
      await root.post("/webhooks", [
        ["name", "ok"],
        ["url", `https://hooks.example.com/${SCRIPT}`],
        ["repository_patterns", SCRIPT],
        ["events", "tag.pushed"],
      ]),
      await root.post("/webhooks/team", [
        ["url", SCRIPT],
        ["repository_patterns", SCRIPT],
        ["events", SCRIPT],
      ]),
      await root.get(`/webhooks/${encodeURIComponent(SCRIPT)}`),
      await root.get(`/repositories?pattern=${encodeURIComponent(SCRIPT)}`),
      await root.get(`/repositories/${encodeURIComponent(SCRIPT)}`),
    ];
    // A URL with script in its path is a URL: accepted, and shown as text (percent-encoded by URL).
    const stored = await root.post("/webhooks", [
      ["name", "quoted"],
      ["url", `https://hooks.example.com/x?q="'><b>`],
      ["repository_patterns", "team/*"],
      ["events", "tag.pushed"],
    ]);
    expect(stored.status).toBe(201);
    pages.push(stored, await root.get("/webhooks"), await root.get("/webhooks/quoted"));
    for (const page of pages) {
      expect(page.status).toBeLessThan(500);
      expect(page.text).not.toContain("<script>alert");
      expect(page.text).not.toContain("<b>");
    }
    expect(pages[0]?.status).toBe(400);
    expect(pages[0]?.text).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
  });

  it("script in repository, tag and pusher names from the index, and in a receiver's answer, is text", async () => {
    const t = await setUp();
    push(t, `team/${SCRIPT}`, "v1");
    push(t, "team/app", SCRIPT, SCRIPT, "c");
    t.db.run("UPDATE webhook_deliveries SET last_error = ?, response_excerpt = ?", [SCRIPT, SCRIPT]);
    const root = await clientFor(t, "root");
    for (const path of ["/repositories", "/repositories/team/app", "/webhooks/team"]) {
      const page = await root.get(path);
      expect({ path, status: page.status }).toEqual({ path, status: 200 });
      expect(page.text).not.toContain("<script>alert");
      expect(page.text).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    }
  });

  it("oversized fields are refused with a message next to the field", async () => {
    const t = await setUp();
    const root = await clientFor(t, "root");
    const long = "a".repeat(5000);
    const base: Record<string, string> = {
      name: "big",
      url: "https://hooks.example.com/x",
      repository_patterns: "team/*",
      events: "tag.pushed",
    };
    for (const [path, field, value] of [
      ["/webhooks", "name", long],
      ["/webhooks", "url", `https://hooks.example.com/${long}`],
      ["/webhooks", "repository_patterns", long],
      ["/webhooks/team", "url", `https://hooks.example.com/${long}`],
      ["/webhooks/team", "repository_patterns", long],
      ["/webhooks", "events", ""],
    ] as const) {
      const fields = { ...base, [field]: value };
      if (path !== "/webhooks") delete fields.name;
      const entries = Object.entries(fields).filter(([k, v]) => !(k === "events" && v === ""));
      const res = await root.post(path, entries);
      expect({ path, field, status: res.status }).toEqual({ path, field, status: 400 });
      expect(res.text).toContain('class="error"');
      if (field !== "events") expect(res.text).toMatch(new RegExp(`name="${field}"[^>]*aria-invalid="true"`));
    }
    const search = await root.get(`/repositories?pattern=${long}`);
    expect(search.status).toBe(400);
    expect(search.text).toMatch(/name="pattern"[^>]*aria-invalid="true"/);
  });

  it("unknown fields and parameters, bad cursors and ids: 4xx pages, never 500", async () => {
    const t = await setUp();
    const root = await clientFor(t, "root");
    const checks: [string, Promise<{ status: number }>][] = [
      ["unknown field", root.post("/webhooks/team/test", { extra: "1" })],
      [
        "unknown create field",
        root.post("/webhooks", { name: "x", url: "https://h.example/x", secret: "mine" }),
      ],
      [
        "repeated url",
        root.post("/webhooks/team", [
          ["url", "a"],
          ["url", "b"],
        ]),
      ],
      ["bad delivery id", root.post("/deliveries/abc/redeliver", {})],
      ["unknown delivery", root.post("/deliveries/999/redeliver", {})],
      ["bad cursor", root.get("/repositories?cursor=%%%")],
      ["bad tag cursor", root.get("/repositories/team/app?cursor=xyz")],
      ["bad delivery cursor", root.get("/webhooks/team?cursor=xyz")],
      ["unknown parameter", root.get("/repositories?drop=1")],
      ["repeated parameter", root.get("/repositories?pattern=a&pattern=b")],
      ["a name too long", root.get(`/webhooks/${"x".repeat(100)}`)],
      ["a repository name too long", root.get(`/repositories/${"x/".repeat(300)}y`)],
      ["a bad escape", root.get("/repositories/team/%ZZ")],
      ["upper case", root.get("/repositories/Team/App")],
    ];
    for (const [name, pending] of checks) {
      const res = await pending;
      expect({ name, ok: res.status >= 400 && res.status < 500 }).toEqual({ name, ok: true });
    }
  });
});
