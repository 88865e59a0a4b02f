/**
 * The catalog filtered by permission (issue 11 item 3) through the API in-process: each caller
 * sees exactly what the token path's authorizers let them pull (database grants, public grants,
 * the config ACL), anonymous callers the public repositories, a repository they may not pull is
 * a 404 like one that does not exist, and hostile input is a 400.
 */
import { beforeAll, describe, expect, it } from "bun:test";
import { addMember, createGroup } from "../../src/accounts/groups.ts";
import { grant } from "../../src/accounts/permissions.ts";
import { createUser } from "../../src/accounts/users.ts";
import { recordManifestPush } from "../../src/registry-index/index-store.ts";
import { quickHash } from "../accounts-helpers.ts";
import { type ApiApp, call, testApiApp } from "../api-helpers.ts";

const NOW = 1_700_000_000;
const REPOSITORIES = ["team/app", "team/db", "other/x", "public/y"];

function push(t: ApiApp, repository: string, tag: string, digest = `sha256:${"a".repeat(64)}`) {
  recordManifestPush(t.db, {
    repository,
    tag,
    digest,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    sizeBytes: 1234,
    pusher: "alice",
    pusherAddress: "192.0.2.7",
    atUnixMs: NOW * 1000,
    eventId: `${repository}:${tag}`,
    source: "notification",
  });
}

const names = (body: Record<string, unknown>) => (body.items as { name: string }[]).map((r) => r.name);

let t: ApiApp;
beforeAll(async () => {
  t = await testApiApp({
    // dave has no database grant: only this config ACL rule lets him pull other/x.
    acl: [{ match: { account: "dave", name: "other/x" }, actions: ["pull"] }],
    notifications: { registry_url: "http://registry.example:5000" },
  });
  for (const [name, isAdmin] of [
    ["root", true],
    ["alice", false],
    ["bob", false],
    ["dave", false],
    ["erin", false],
  ] as const)
    createUser(t.db, { name, passwordHash: quickHash(`${name}-password`), isAdmin, nowUnix: NOW });
  grant(t.db, { kind: "user", name: "alice" }, "team/*", "read", NOW);
  grant(t.db, { kind: "public" }, "public/y", "read", NOW);
  createGroup(t.db, "ops", NOW);
  addMember(t.db, "ops", "erin");
  grant(t.db, { kind: "group", name: "ops" }, "other/*", "read", NOW);
  for (const repository of REPOSITORIES) push(t, repository, "v1");
  push(t, "team/app", "v2", `sha256:${"b".repeat(64)}`);
});

const who = (name: string): [string, string] => [name, `${name}-password`];

describe("GET /api/v1/repositories: what the caller may pull", () => {
  it.each([
    ["an administrator sees all four", who("root"), ["other/x", "public/y", "team/app", "team/db"]],
    [
      "a user with team/* read sees team/ and the public one",
      who("alice"),
      ["public/y", "team/app", "team/db"],
    ],
    ["a user with nothing sees only the public one", who("bob"), ["public/y"]],
    ["a config-ACL-only grant is honoured", who("dave"), ["other/x", "public/y"]],
    ["a group's grant is honoured", who("erin"), ["other/x", "public/y"]],
    ["an anonymous caller sees only the public one", null, ["public/y"]],
  ])("%s", async (_name, auth, expected) => {
    const { status, body } = await call(t, "GET", "/repositories", { auth });
    expect(status).toBe(200);
    expect(names(body)).toEqual(expected);
    expect(body.next_cursor).toBeNull();
  });

  it("refuses wrong credentials (401), not treating them as anonymous", async () => {
    expect((await call(t, "GET", "/repositories", { auth: ["bob", "wrong"] })).status).toBe(401);
  });

  it("keeps every other route closed to anonymous callers", async () => {
    expect((await call(t, "GET", "/me")).status).toBe(401);
    expect((await call(t, "POST", "/repositories/sync", { body: {} })).status).toBe(401);
  });

  it("pages by name with a cursor, and filters by a glob", async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 10; i++) {
      const query: string = `?limit=1${cursor ? `&cursor=${cursor}` : ""}`;
      const { status, body } = await call(t, "GET", `/repositories${query}`, { auth: who("alice") });
      expect(status).toBe(200);
      seen.push(...names(body));
      cursor = body.next_cursor as string | null;
      if (cursor === null) break;
    }
    expect(seen).toEqual(["public/y", "team/app", "team/db"]);
    const filtered = await call(t, "GET", "/repositories?pattern=team/*", { auth: who("root") });
    expect(names(filtered.body)).toEqual(["team/app", "team/db"]);
    const star = await call(t, "GET", `/repositories?pattern=${encodeURIComponent("*/[xy]")}`, {
      auth: who("bob"),
    });
    expect(names(star.body)).toEqual(["public/y"]);
  });
});

describe("GET /api/v1/repositories/NAME (name URL-encoded, team%2Fapp)", () => {
  it("shows a repository the caller may pull, with its tags and a docker pull line", async () => {
    const repo = await call(t, "GET", "/repositories/team%2Fapp", { auth: who("alice") });
    expect(repo.status).toBe(200);
    expect(repo.body).toMatchObject({ name: "team/app", tag_count: 2 });
    const tags = await call(t, "GET", "/repositories/team%2Fapp/tags", { auth: who("alice") });
    expect((tags.body.items as { tag: string }[]).map((x) => x.tag)).toEqual(["v1", "v2"]);
    const tag = await call(t, "GET", "/repositories/team%2Fapp/tags/v2", { auth: who("alice") });
    expect(tag.status).toBe(200);
    expect(tag.body).toMatchObject({
      repository: "team/app",
      tag: "v2",
      digest: `sha256:${"b".repeat(64)}`,
      media_type: "application/vnd.oci.image.manifest.v1+json",
      size_bytes: 1234,
      pushed_by: "alice",
      pushed_from: "192.0.2.7",
      pull_count: 0,
      last_pull_at: null,
      pull_command: "docker pull registry.example:5000/team/app:v2",
    });
  });

  it("lets anonymous callers see a public repository's tags", async () => {
    expect((await call(t, "GET", "/repositories/public%2Fy/tags/v1")).status).toBe(200);
  });

  it.each([
    ["bob, another namespace's repository", who("bob"), "/repositories/team%2Fapp"],
    ["bob, its tags", who("bob"), "/repositories/team%2Fapp/tags"],
    ["bob, one tag", who("bob"), "/repositories/team%2Fapp/tags/v1"],
    ["anonymous, a private repository", null, "/repositories/team%2Fdb"],
    ["alice, a repository that does not exist", who("alice"), "/repositories/team%2Fnope"],
  ])("is 404 when the caller may not pull it (%s), as for none at all", async (_name, auth, path) => {
    const { status, body } = await call(t, "GET", path, { auth });
    expect(status).toBe(404);
    expect(body.errors?.[0]?.message).toMatch(/^no repository "team\/(app|db|nope)"$/);
  });
});

describe("hostile input is a 400, never a 500", () => {
  it.each([
    ["a huge limit", "/repositories?limit=100000000"],
    ["a negative limit", "/repositories?limit=-1"],
    ["a bad cursor", "/repositories?cursor=%%%"],
    ["a cursor of another list", `/repositories?cursor=${Buffer.from("17").toString("base64url")}`],
    [
      "a pattern with regex metacharacters",
      `/repositories?pattern=${encodeURIComponent("(team|other)/.+$")}`,
    ],
    ["an unterminated class", `/repositories?pattern=${encodeURIComponent("team/[a")}`],
    ["an overlong pattern", `/repositories?pattern=${"a".repeat(300)}`],
    ["an unknown query field", "/repositories?admin=true"],
    ["%00 in a name", "/repositories/team%00app"],
    ["a malformed percent escape", "/repositories/team%ZZapp"],
    ["a name with a NUL in a pattern", "/repositories?pattern=team%00"],
    ["dot segments in a name", "/repositories/..%2F..%2Fetc"],
    ["an upper-case name", "/repositories/Team%2FApp"],
    ["an overlong name", `/repositories/${"a".repeat(300)}`],
    ["a bad tag", "/repositories/team%2Fapp/tags/..%2Fx"],
    ["a page limit on tags", "/repositories/team%2Fapp/tags?limit=0"],
  ])("%s", async (_name, path) => {
    for (const auth of [who("root"), null]) {
      const { status, body } = await call(t, "GET", path, { auth });
      expect(status).toBe(400);
      expect(JSON.stringify(body)).not.toMatch(/at .*\.ts:\d+/);
    }
  });
});

describe("POST /api/v1/repositories/sync", () => {
  it("is for administrators only", async () => {
    expect((await call(t, "POST", "/repositories/sync", { auth: who("alice"), body: {} })).status).toBe(403);
  });
  it("says clearly that the registry cannot be reached (502), without a stack trace", async () => {
    const { status, body } = await call(t, "POST", "/repositories/sync", { auth: who("root"), body: {} });
    expect(status).toBe(502);
    expect(body.errors?.[0]?.message).toMatch(/cannot reach the registry at http:\/\/registry\.example:5000/);
  });
});

describe("the catalog follows a reload", () => {
  it("asks the issuer current at the request: a new config ACL shows at once", async () => {
    const { CurrentIssuer } = await import("../../src/reload/current-issuer.ts");
    const { buildApp, buildIssuer, managementServices } = await import("../../src/server.ts");
    const { loadTestConfig } = await import("../helpers.ts");
    const current = new CurrentIssuer(t.issuer);
    const app = buildApp(t.loaded, current, managementServices(t.loaded, t.issuer, t.db));
    const served = { ...t, app };
    expect(names((await call(served, "GET", "/repositories", { auth: who("bob") })).body)).toEqual([
      "public/y",
    ]);
    const reloaded = await loadTestConfig(
      {
        acl: [{ match: { account: "bob", name: "team/db" }, actions: ["pull"] }],
        notifications: { registry_url: "http://registry.example:5000" },
      },
      t.dataDir,
    );
    if (!reloaded.signingKey) throw new Error("no signing key");
    await current.swap(buildIssuer(reloaded, reloaded.signingKey, t.verifier, t.db));
    expect(names((await call(served, "GET", "/repositories", { auth: who("bob") })).body)).toEqual([
      "public/y",
      "team/db",
    ]);
  });
});
