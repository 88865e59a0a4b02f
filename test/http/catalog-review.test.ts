/**
 * Review of the permission-filtered catalog (issue 11 item 3), in-process through the API: what a
 * caller learns must be what they may pull, and nothing else, through the cursor too; an access
 * token shows what it could pull, not all its owner may.
 */
import { beforeAll, describe, expect, it } from "bun:test";
import { createAccessToken, type TokenScope } from "../../src/access-tokens/index.ts";
import { grant } from "../../src/accounts/permissions.ts";
import { createUser } from "../../src/accounts/users.ts";
import { recordManifestPush } from "../../src/registry-index/index-store.ts";
import { quickHash } from "../accounts-helpers.ts";
import { type ApiApp, call, testApiApp } from "../api-helpers.ts";

const NOW = 1_700_000_000;
/** More than a page's budget of candidates (MAX_CHECKS_PER_PAGE, 1000) that nobody but root may pull. */
const HIDDEN = Array.from({ length: 1100 }, (_, i) => `hidden/r${String(i).padStart(4, "0")}`);

function push(t: ApiApp, repository: string) {
  recordManifestPush(t.db, {
    repository,
    tag: "v1",
    digest: `sha256:${"a".repeat(64)}`,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    sizeBytes: 1,
    pusher: "root",
    pusherAddress: null,
    atUnixMs: NOW * 1000,
    eventId: repository,
    source: "notification",
  });
}

const names = (body: Record<string, unknown>) => (body.items as { name: string }[]).map((r) => r.name);

let t: ApiApp;
beforeAll(async () => {
  t = await testApiApp({});
  createUser(t.db, { name: "root", passwordHash: quickHash("root-password"), isAdmin: true, nowUnix: NOW });
  createUser(t.db, { name: "bob", passwordHash: quickHash("bob-password"), isAdmin: false, nowUnix: NOW });
  createUser(t.db, {
    name: "carol",
    passwordHash: quickHash("carol-password"),
    isAdmin: false,
    nowUnix: NOW,
  });
  grant(t.db, { kind: "public" }, "public/y", "read", NOW);
  grant(t.db, { kind: "user", name: "carol" }, "team/*", "read", NOW);
  grant(t.db, { kind: "user", name: "carol" }, "other/*", "read", NOW);
  t.db.transaction(() => {
    for (const name of [...HIDDEN, "other/x", "public/y", "team/app"]) push(t, name);
  })();
});

/** Follows next_cursor to the end; every cursor is returned too. */
async function walk(auth: [string, string] | string | null) {
  const seen: string[] = [];
  const cursors: string[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 20; i++) {
    const query: string = cursor ? `?cursor=${encodeURIComponent(cursor)}` : "";
    const { status, body } = await call(t, "GET", `/repositories${query}`, { auth });
    expect(status).toBe(200);
    seen.push(...names(body));
    cursor = body.next_cursor as string | null;
    if (cursor === null) break;
    cursors.push(cursor);
  }
  return { seen, cursors };
}

describe("the catalog's cursor", () => {
  it.each([
    ["an anonymous caller", null],
    ["a user with nothing", ["bob", "bob-password"] as [string, string]],
  ])("tells %s no name they may not pull", async (_name, auth) => {
    const { seen, cursors } = await walk(auth);
    expect(seen).toEqual(["public/y"]);
    // Over 1000 hidden candidates: at least one page stopped on its budget, with a cursor.
    expect(cursors.length).toBeGreaterThan(0);
    for (const cursor of cursors) {
      const decoded = Buffer.from(cursor, "base64url").toString("latin1");
      expect(decoded).not.toContain("hidden");
      expect(cursor).not.toContain("hidden");
    }
  });

  it("still pages an administrator through everything", async () => {
    const { seen } = await walk(["root", "root-password"]);
    expect(seen).toEqual([...HIDDEN, "other/x", "public/y", "team/app"]);
  });

  it("is refused (400) when forged or tampered with", async () => {
    const { cursors } = await walk(null);
    const first = cursors[0] as string;
    const tampered = `${first.slice(0, -2)}${first.endsWith("A") ? "B" : "A"}A`;
    for (const cursor of [Buffer.from(JSON.stringify("hidden/r0999")).toString("base64url"), tampered, "x"]) {
      const { status } = await call(t, "GET", `/repositories?cursor=${encodeURIComponent(cursor)}`);
      expect(status).toBe(400);
    }
  });
});

describe("an access token with the api scope", () => {
  const make = (scopes: TokenScope[], patterns: string[], owner = "carol") => {
    const key = t.issuer.accessTokenKey;
    if (!key) throw new Error("no access token key");
    return createAccessToken(t.db, key, {
      owner,
      name: `t${Math.random()}`,
      scopes,
      repositoryPatterns: patterns,
      expiresAtUnix: null,
      nowUnix: NOW,
    }).secret;
  };

  it("limited to team/* lists only what it could pull there (the public one is outside it too)", async () => {
    const { seen } = await walk(make(["api", "pull"], ["team/*"]));
    expect(seen).toEqual(["team/app"]);
    expect(
      (await call(t, "GET", "/repositories/other%2Fx", { auth: make(["api", "pull"], ["team/*"]) })).status,
    ).toBe(404);
  });

  it("for every repository shows what its owner may pull", async () => {
    const { seen } = await walk(make(["api"], ["*"]));
    expect(seen).toEqual(["other/x", "public/y", "team/app"]);
  });

  it("of an administrator limited to team/* lists team/ only", async () => {
    const { seen } = await walk(make(["api"], ["team/*"], "root"));
    expect(seen).toEqual(["team/app"]);
  });
});

describe("names with a host component (the registry's grammar; notifications index them)", () => {
  it("are shown, listed by tag and 404 alike when not pullable", async () => {
    push(t, "Team.example/app");
    const root = ["root", "root-password"] as [string, string];
    const repo = await call(t, "GET", "/repositories/Team.example%2Fapp", { auth: root });
    expect(repo.status).toBe(200);
    expect(repo.body).toMatchObject({ name: "Team.example/app", tag_count: 1 });
    const tag = await call(t, "GET", "/repositories/Team.example%2Fapp/tags/v1", { auth: root });
    expect(tag.status).toBe(200);
    const hidden = await call(t, "GET", "/repositories/Team.example%2Fapp", {
      auth: ["bob", "bob-password"],
    });
    const none = await call(t, "GET", "/repositories/Nobody.example%2Fapp", {
      auth: ["bob", "bob-password"],
    });
    expect([hidden.status, none.status]).toEqual([404, 404]);
    expect(hidden.body.errors?.[0]?.message.replace("Team", "Nobody")).toBe(none.body.errors?.[0]?.message);
  });
});

describe("config ACL rules as the token path applies them", () => {
  it("first match wins (a deny before an allow), and ${account} expands", async () => {
    const app = await testApiApp({
      acl: [
        { match: { account: "dave", name: "dave/secret" }, actions: [] },
        { match: { account: "/.+/", name: "${account}/*" }, actions: ["pull"] },
      ],
    });
    createUser(app.db, {
      name: "dave",
      passwordHash: quickHash("dave-password"),
      isAdmin: false,
      nowUnix: NOW,
    });
    for (const name of ["dave/app", "dave/secret", "erin/app"]) push(app, name);
    const { status, body } = await call(app, "GET", "/repositories", { auth: ["dave", "dave-password"] });
    expect(status).toBe(200);
    expect(names(body)).toEqual(["dave/app"]);
  });
});

describe("who pushed and from where (the audit log's facts are for administrators)", () => {
  it("an administrator sees both, a user the name and only their own address, anonymous neither", async () => {
    const app = await testApiApp({});
    for (const [name, isAdmin] of [
      ["root", true],
      ["alice", false],
      ["bob", false],
    ] as const)
      createUser(app.db, { name, passwordHash: quickHash(`${name}-pw`), isAdmin, nowUnix: NOW });
    grant(app.db, { kind: "public" }, "public/*", "read", NOW);
    for (const [tag, pusher] of [
      ["by-alice", "alice"],
      ["by-bob", "bob"],
    ] as const)
      recordManifestPush(app.db, {
        repository: "public/app",
        tag,
        digest: `sha256:${"a".repeat(64)}`,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        sizeBytes: 1,
        pusher,
        pusherAddress: `10.0.0.${pusher === "alice" ? 1 : 2}`,
        atUnixMs: NOW * 1000,
        eventId: tag,
        source: "notification",
      });
    const seen = async (auth: [string, string] | null) => {
      const list = await call(app, "GET", "/repositories/public%2Fapp/tags", { auth });
      const one = await call(app, "GET", "/repositories/public%2Fapp/tags/by-bob", { auth });
      expect(list.status).toBe(200);
      expect(one.status).toBe(200);
      const items = list.body.items as {
        tag: string;
        pushed_by: string | null;
        pushed_from: string | null;
      }[];
      return [
        ...items.map((i) => `${i.tag} ${i.pushed_by} ${i.pushed_from}`),
        `one ${one.body.pushed_by} ${one.body.pushed_from}`,
      ];
    };
    expect(await seen(["root", "root-pw"])).toEqual([
      "by-alice alice 10.0.0.1",
      "by-bob bob 10.0.0.2",
      "one bob 10.0.0.2",
    ]);
    expect(await seen(["alice", "alice-pw"])).toEqual([
      "by-alice alice 10.0.0.1",
      "by-bob bob null",
      "one bob null",
    ]);
    expect(await seen(null)).toEqual(["by-alice null null", "by-bob null null", "one null null"]);
  });
});
