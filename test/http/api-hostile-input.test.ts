/**
 * Hostile input on every field of the management API (issue 10 "Tests that must exist";
 * security.md §7.3 I6): each is a 4xx with the one error envelope, never a 500, and nothing is
 * created.
 */
import { beforeAll, describe, expect, it } from "bun:test";
import { createUser, listUsers } from "../../src/accounts/users.ts";
import { listAccessTokens } from "../../src/access-tokens/index.ts";
import { listPermissions } from "../../src/accounts/permissions.ts";
import { quickHash } from "../accounts-helpers.ts";
import { type ApiApp, call, testApiApp } from "../api-helpers.ts";
import { req } from "../helpers.ts";

const ROOT: [string, string] = ["root", "root-password"];
let t: ApiApp;

function state(): string {
  return JSON.stringify([
    listUsers(t.db).map((u) => u.name),
    listAccessTokens(t.db).map((x) => x.name),
    listPermissions(t.db).length,
  ]);
}

beforeAll(async () => {
  t = await testApiApp();
  createUser(t.db, { name: "root", passwordHash: quickHash("root-password"), isAdmin: true, nowUnix: 1 });
  createUser(t.db, { name: "alice", passwordHash: quickHash("alice-password"), nowUnix: 1 });
});

const NAMES: [string, string][] = [
  ["NUL", "ali\u0000ce"],
  ["Cyrillic look-alike", "\u0430dmin"],
  ["fullwidth", "\uff41lice"],
  ["zero-width joiner", "al\u200dice"],
  ["right-to-left override", "\u202eecila"],
  ["emoji", "\u{1f600}"],
  ["upper case", "Alice"],
  ["space", "al ice"],
  ["leading dot", ".alice"],
  ["slash", "team/alice"],
  ["plus (robot shape)", "team+ci"],
  ["65 characters", "a".repeat(65)],
  ["256 characters", "a".repeat(256)],
  ["empty", ""],
];

describe("user names", () => {
  for (const [what, name] of NAMES) {
    it(`POST /users refuses a name with ${what} (400)`, async () => {
      const before = state();
      const r = await call(t, "POST", "/users", { auth: ROOT, body: { name, password: "long-enough-pw" } });
      expect(r.status).toBe(400);
      expect(r.body.errors?.[0]?.code).toBe("BAD_REQUEST");
      expect(state()).toBe(before);
    });
  }
  it("a path name with NUL or look-alikes is a 404 or 400, never a 500", async () => {
    for (const name of ["ali%00ce", "%D0%B0dmin", "a".repeat(300), "%E2%80%AEecila", "..%2F..%2Fetc"]) {
      const r = await call(t, "GET", `/users/${name}`, { auth: ROOT });
      expect([400, 404]).toContain(r.status);
    }
  });
});

describe("wrong types and unknown fields: 400 with the field's path", () => {
  const cases: [string, string, string, unknown, string][] = [
    ["number for a name", "POST", "/users", { name: 5, password: "long-enough-pw" }, "body.name"],
    ["array for a password", "POST", "/users", { name: "bob", password: ["x"] }, "body.password"],
    [
      "string for a boolean",
      "POST",
      "/users",
      { name: "bob", password: "long-enough-pw", admin: "true" },
      "body.admin",
    ],
    ["unknown field", "POST", "/users", { name: "bob", password: "long-enough-pw", id: 1 }, "body.id"],
    [
      "prototype pollution key",
      "POST",
      "/users",
      JSON.parse('{"name":"bob","password":"long-enough-pw","__proto__":{"admin":true}}'),
      "body.__proto__",
    ],
    ["null body", "POST", "/users", null, "body"],
    ["array body", "POST", "/users", [], "body"],
    [
      "bad scope",
      "POST",
      "/tokens",
      { name: "x", scopes: ["root"], repository_patterns: ["*"] },
      "body.scopes.0: expected one of pull, push, delete, api",
    ],
    ["no scopes", "POST", "/tokens", { name: "x", scopes: [], repository_patterns: ["*"] }, "body.scopes"],
    [
      "scope as a string",
      "POST",
      "/tokens",
      { name: "x", scopes: "pull", repository_patterns: ["*"] },
      "body.scopes",
    ],
    [
      "33 patterns",
      "POST",
      "/tokens",
      { name: "x", scopes: ["pull"], repository_patterns: Array.from({ length: 33 }, (_, i) => `a/${i}`) },
      "body.repository_patterns",
    ],
    [
      "expiry not a date",
      "POST",
      "/tokens",
      { name: "x", scopes: ["pull"], repository_patterns: ["*"], expires_at: "tomorrow" },
      "body.expires_at",
    ],
    [
      "expiry as a number",
      "POST",
      "/tokens",
      { name: "x", scopes: ["pull"], repository_patterns: ["*"], expires_at: 1e12 },
      "body.expires_at",
    ],
    [
      "expiry without a zone",
      "POST",
      "/tokens",
      { name: "x", scopes: ["pull"], repository_patterns: ["*"], expires_at: "2030-01-01T00:00:00" },
      "body.expires_at",
    ],
    [
      "expiry in the past",
      "POST",
      "/tokens",
      { name: "x", scopes: ["pull"], repository_patterns: ["*"], expires_at: "2001-01-01T00:00:00Z" },
      "past",
    ],
    [
      "expiry after 9999",
      "POST",
      "/tokens",
      { name: "x", scopes: ["pull"], repository_patterns: ["*"], expires_at: "+275760-09-13T00:00:00Z" },
      "",
    ],
    [
      "bad level",
      "POST",
      "/permissions",
      { grantee: "alice", pattern: "team/*", level: "owner" },
      "body.level: expected one of read, write, admin",
    ],
    [
      "pattern with ..",
      "POST",
      "/permissions",
      { grantee: "alice", pattern: "team/../*", level: "read" },
      "invalid repository pattern",
    ],
    [
      "pattern with a glob in the middle",
      "POST",
      "/permissions",
      { grantee: "alice", pattern: "team/*/app", level: "read" },
      "invalid repository pattern",
    ],
    [
      "pattern with NUL",
      "POST",
      "/permissions",
      { grantee: "alice", pattern: "team/\u0000", level: "read" },
      "invalid repository pattern",
    ],
    [
      "pattern of 300 characters",
      "POST",
      "/permissions",
      { grantee: "alice", pattern: "a".repeat(300), level: "read" },
      "body.pattern",
    ],
    [
      "token name with a newline",
      "POST",
      "/tokens",
      { name: "a\nb", scopes: ["pull"], repository_patterns: ["*"] },
      "",
    ],
    ["limit 0", "GET", "/users?limit=0", undefined, "query.limit"],
    ["limit 501", "GET", "/users?limit=501", undefined, "query.limit"],
    ["limit not a number", "GET", "/users?limit=ten", undefined, "query.limit"],
    ["limit twice", "GET", "/users?limit=1&limit=2", undefined, "query.limit"],
    ["forged cursor", "GET", "/users?cursor=%7B%7D", undefined, "query.cursor"],
    ["unknown query field", "GET", "/users?admin=true", undefined, "query.admin"],
    ["bad state", "GET", "/users?state=root", undefined, "query.state"],
    ["token id not a number", "DELETE", "/tokens/abc", undefined, "params.id"],
    ["token id negative", "DELETE", "/tokens/-1", undefined, "params.id"],
    ["token id huge", "DELETE", "/tokens/99999999999999999999", undefined, "params.id"],
    ["audit since not a date", "GET", "/audit?since=yesterday", undefined, "query.since"],
    ["audit unknown kind", "GET", "/audit?kind=everything", undefined, "query.kind"],
  ];
  for (const [what, method, path, body, message] of cases) {
    it(`${what} → 400 (${message || "a reason"})`, async () => {
      const before = state();
      const r = await call(t, method, path, { auth: ROOT, ...(body !== undefined ? { body } : {}) });
      expect({ status: r.status, message: r.body.errors?.[0]?.message }).toMatchObject({ status: 400 });
      expect(r.body.errors?.[0]?.message).toContain(message);
      expect(state()).toBe(before);
    });
  }
});

describe("bodies", () => {
  const rawPost = (body: string | Uint8Array | ReadableStream, headers: Record<string, string>) =>
    t.app.handle(
      req("/api/v1/users", {
        method: "POST",
        headers: { authorization: `Basic ${btoa("root:root-password")}`, ...headers },
        body,
      }),
    );

  it("a 10 MB body is 413 from its Content-Length, before authentication and without reading it", async () => {
    let pulled = 0;
    const stream = new ReadableStream({
      pull(controller) {
        pulled++;
        controller.enqueue(new Uint8Array(1024 * 1024));
        if (pulled >= 10) controller.close();
      },
    });
    const res = await t.app.handle(
      new Request("http://localhost/api/v1/users", {
        method: "POST",
        headers: { "content-type": "application/json", "content-length": String(10 * 1024 * 1024) },
        body: stream,
        duplex: "half",
      }),
    );
    expect(res.status).toBe(413);
    expect(((await res.json()) as { errors: { code: string }[] }).errors[0]?.code).toBe("PAYLOAD_TOO_LARGE");
    expect(pulled).toBeLessThanOrEqual(2);
  });

  it("a streamed body without Content-Length is cut off at the limit (413)", async () => {
    let pulled = 0;
    const stream = new ReadableStream({
      pull(controller) {
        pulled++;
        controller.enqueue(new Uint8Array(16 * 1024).fill(0x20));
        if (pulled >= 640) controller.close();
      },
    });
    const res = await rawPost(stream, { "content-type": "application/json" });
    expect(res.status).toBe(413);
    expect(pulled).toBeLessThan(10);
  });

  it("a body just over the limit is 413, one under is judged on its content", async () => {
    const limit = t.loaded.config.api.max_body_bytes;
    const over = JSON.stringify({ name: "bob", password: "x".repeat(limit) });
    expect((await rawPost(over, { "content-type": "application/json" })).status).toBe(413);
    const under = JSON.stringify({ name: "bob", password: "x".repeat(limit - 100) });
    expect((await rawPost(under, { "content-type": "application/json" })).status).toBe(400);
  });

  for (const [what, type] of <[string, string][]>[
    ["form", "application/x-www-form-urlencoded"],
    ["text", "text/plain"],
    ["none", ""],
    ["json look-alike", "application/jsonx"],
    ["multipart", "multipart/form-data; boundary=x"],
  ]) {
    it(`Content-Type ${what} → 415`, async () => {
      const before = state();
      const res = await rawPost(
        '{"name":"bob","password":"long-enough-pw"}',
        type === "" ? {} : { "content-type": type },
      );
      expect(res.status).toBe(415);
      expect(state()).toBe(before);
    });
  }

  it("application/json with a charset is accepted", async () => {
    const res = await rawPost('{"name":"carol","password":"long-enough-pw"}', {
      "content-type": "application/json; charset=utf-8",
    });
    expect(res.status).toBe(201);
  });

  for (const [what, body, message] of [
    [
      "duplicate keys",
      '{"name":"bob","password":"long-enough-pw","admin":false,"admin":true}',
      "duplicate key",
    ],
    [
      "duplicate keys by escape",
      '{"name":"bob","name":"b\\u006fb","password":"long-enough-pw"}',
      "duplicate key",
    ],
    ["deep nesting", `{"name":${"[".repeat(5000)}${"]".repeat(5000)},"password":"x"}`, "nested deeper"],
    ["truncated JSON", '{"name":"bob"', "not valid JSON"],
    ["trailing garbage", '{"name":"bob","password":"long-enough-pw"} x', "not valid JSON"],
    ["not UTF-8", new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), "not UTF-8"],
    ["empty body", "", "not valid JSON"],
    ["a huge number", '{"name":"bob","password":1e999999}', "body.password"],
  ] as [string, string | Uint8Array, string][]) {
    it(`${what} → 400`, async () => {
      const before = state();
      const res = await rawPost(body, { "content-type": "application/json" });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { errors: { message: string }[] }).errors[0]?.message).toContain(message);
      expect(state()).toBe(before);
    });
  }

  it("many keys within the size limit are a 400 for the first unknown one, quickly", async () => {
    const fields = Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`k${i}`, i]));
    const started = performance.now();
    const r = await call(t, "POST", "/users", {
      auth: ROOT,
      body: { name: "bob", password: "long-enough-pw", ...fields },
    });
    expect(r.status).toBe(400);
    expect(performance.now() - started).toBeLessThan(2000);
  });
});

describe("responses", () => {
  it("carry Strict-Transport-Security with server.hsts, on answers and errors alike", async () => {
    const hsts = await testApiApp({ server: { hsts: true } });
    createUser(hsts.db, {
      name: "root",
      passwordHash: quickHash("root-password"),
      isAdmin: true,
      nowUnix: 1,
    });
    for (const auth of [ROOT, null] as const) {
      const r = await call(hsts, "GET", "/me", { auth });
      expect(r.res.headers.get("strict-transport-security")).toStartWith("max-age=");
    }
  });
  it("carry cache-control: no-store and JSON", async () => {
    const r = await call(t, "GET", "/me", { auth: ROOT });
    expect(r.res.headers.get("cache-control")).toBe("no-store");
    expect(r.res.headers.get("content-type")).toStartWith("application/json");
  });
  it("an unknown API path is a JSON 404 in the envelope", async () => {
    const r = await call(t, "GET", "/users/alice/secrets", { auth: ROOT });
    expect(r.status).toBe(404);
    expect(r.body.errors?.[0]?.code).toBe("NOT_FOUND");
  });
  it("a wrong method on a known path is a 404, never a 500", async () => {
    const r = await call(t, "PATCH", "/tokens", { auth: ROOT, body: {} });
    expect(r.status).toBe(404);
  });
  it("a garbage Authorization header is 401, never a 500", async () => {
    for (const header of [
      "Basic !!!",
      "Bearer",
      "Bearer a b",
      "Digest x",
      `Basic ${btoa("root")}`,
      "Basic " + "A".repeat(10000),
    ]) {
      const r = await call(t, "GET", "/me", { headers: { authorization: header } });
      expect([400, 401]).toContain(r.status);
    }
  });
});
