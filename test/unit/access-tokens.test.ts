/**
 * Access tokens (issue 10 item 3): the secret's format and checksum, scope closure and what a
 * token allows, and every field's validation with hostile input.
 */
import { describe, expect, it } from "bun:test";
import { statSync } from "node:fs";
import { join } from "node:path";
import {
  ACCESS_TOKEN_KEY_FILE,
  ACCESS_TOKEN_LENGTH,
  ACCESS_TOKEN_PREFIX,
  AccessTokenKey,
  base62,
  checksumOf,
  closeScopes,
  createAccessToken,
  deleteAccessToken,
  ensureAccessTokenKey,
  findTokenBySecret,
  generateAccessTokenSecret,
  getAccessToken,
  LATEST_EXPIRY_UNIX,
  limitToToken,
  listAccessTokens,
  looksLikeAccessToken,
  type NewAccessToken,
  type TokenLimits,
} from "../../src/access-tokens/index.ts";
import { createUser } from "../../src/accounts/users.ts";
import { AppError } from "../../src/errors.ts";
import { createRobot } from "../../src/robots/index.ts";
import { tempDatabase } from "../accounts-helpers.ts";
import { makeTempDir } from "../helpers.ts";

const NOW = 1_800_000_000;

describe("access token secrets", () => {
  it("have the prefix, 32 random base62 characters and a 6-character CRC32 checksum", () => {
    const secret = generateAccessTokenSecret();
    expect(secret).toMatch(/^regauth_pat_[0-9A-Za-z]{38}$/);
    expect(secret).toHaveLength(ACCESS_TOKEN_LENGTH);
    const random = secret.slice(ACCESS_TOKEN_PREFIX.length, -6);
    expect(secret.slice(-6)).toBe(checksumOf(random));
    expect(looksLikeAccessToken(secret)).toBe(true);
  });

  it("are different every time and use every base62 digit about evenly", () => {
    const seen = new Set<string>();
    const counts = new Map<string, number>();
    for (let i = 0; i < 2000; i++) {
      const secret = generateAccessTokenSecret();
      seen.add(secret);
      for (const c of secret.slice(ACCESS_TOKEN_PREFIX.length, -6)) counts.set(c, (counts.get(c) ?? 0) + 1);
    }
    expect(seen.size).toBe(2000);
    expect(counts.size).toBe(62);
    const expected = (2000 * 32) / 62;
    for (const n of counts.values()) expect(Math.abs(n - expected) / expected).toBeLessThan(0.25);
  });

  it("base62 pads to the width and encodes the largest CRC32", () => {
    expect(base62(0, 6)).toBe("000000");
    expect(base62(61, 2)).toBe("0z");
    expect(base62(0xffffffff, 6)).toBe("4gfFC3");
  });

  const valid = generateAccessTokenSecret();
  const flipLast = valid.slice(0, -1) + (valid.endsWith("A") ? "B" : "A");
  const flipRandom = `${valid.slice(0, 20)}${valid[20] === "a" ? "b" : "a"}${valid.slice(21)}`;
  const cases: [string, string, boolean][] = [
    ["a generated secret", valid, true],
    ["empty", "", false],
    ["an ordinary password", "correct horse battery staple", false],
    ["the prefix alone", ACCESS_TOKEN_PREFIX, false],
    ["a wrong checksum", flipLast, false],
    ["a changed random part", flipRandom, false],
    ["one character short", valid.slice(0, -1), false],
    ["one character long", `${valid}0`, false],
    ["another prefix", valid.replace("regauth_pat_", "regauth_pak_"), false],
    ["upper-case prefix", valid.replace("regauth_pat_", "REGAUTH_PAT_"), false],
    ["a non-base62 character", `${valid.slice(0, 15)}-${valid.slice(16)}`, false],
    ["trailing newline", `${valid}\n`, false],
    ["leading space", ` ${valid}`.slice(0, ACCESS_TOKEN_LENGTH), false],
    ["a refresh token", "rt1.eyJzdWIiOiJhIn0.abc", false],
    ["a megabyte", "x".repeat(1 << 20), false],
  ];
  for (const [what, password, expected] of cases) {
    it(`looksLikeAccessToken: ${what} → ${expected}`, () => {
      expect(looksLikeAccessToken(password)).toBe(expected);
    });
  }
});

describe("the access token key", () => {
  it("is 32 random bytes in <data_dir>/access-token.key, 0600, the same on every read", () => {
    const dataDir = makeTempDir();
    const first = ensureAccessTokenKey(dataDir);
    const again = ensureAccessTokenKey(dataDir);
    const path = join(dataDir, ACCESS_TOKEN_KEY_FILE);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(path).size).toBe(32);
    expect(first.digest("x").equals(again.digest("x"))).toBe(true);
    expect(first.digest("x").equals(AccessTokenKey.random().digest("x"))).toBe(false);
  });
});

describe("scopes", () => {
  const closures: [string[], string[]][] = [
    [["pull"], ["pull"]],
    [["push"], ["pull", "push"]],
    [["delete"], ["pull", "push", "delete"]],
    [["api"], ["api"]],
    [
      ["delete", "pull", "pull"],
      ["pull", "push", "delete"],
    ],
    [
      ["api", "push"],
      ["pull", "push", "api"],
    ],
  ];
  for (const [given, closed] of closures) {
    it(`${given.join("+")} is stored as ${closed.join("+")}`, () => {
      expect(closeScopes(given as never)).toEqual(closed as never);
    });
  }

  const token = (scopes: string[], repositoryPatterns: string[]): TokenLimits => ({
    id: 1,
    scopes: closeScopes(scopes as never),
    repositoryPatterns,
  });
  const ALL = ["delete", "pull", "push", "*"];
  const limits: [string, TokenLimits, { type: string; name: string }, string[], string[]][] = [
    [
      "pull token, owner may do all",
      token(["pull"], ["team/*"]),
      { type: "repository", name: "team/app" },
      ALL,
      ["pull"],
    ],
    [
      "push token",
      token(["push"], ["team/*"]),
      { type: "repository", name: "team/app" },
      ALL,
      ["pull", "push"],
    ],
    ["delete token", token(["delete"], ["*"]), { type: "repository", name: "a/b" }, ALL, ALL],
    [
      "owner may only pull",
      token(["delete"], ["*"]),
      { type: "repository", name: "a/b" },
      ["pull"],
      ["pull"],
    ],
    ["owner may do nothing", token(["delete"], ["*"]), { type: "repository", name: "a/b" }, [], []],
    ["outside the patterns", token(["push"], ["team/*"]), { type: "repository", name: "other/app" }, ALL, []],
    [
      "namespace itself is not under team/*",
      token(["push"], ["team/*"]),
      { type: "repository", name: "team" },
      ALL,
      [],
    ],
    [
      "exact repository pattern",
      token(["push"], ["team/app"]),
      { type: "repository", name: "team/app" },
      ALL,
      ["pull", "push"],
    ],
    [
      "exact pattern, other repo",
      token(["push"], ["team/app"]),
      { type: "repository", name: "team/app2" },
      ALL,
      [],
    ],
    ["api-only token", token(["api"], ["*"]), { type: "repository", name: "a/b" }, ALL, []],
    [
      "catalog with delete on *",
      token(["delete"], ["*"]),
      { type: "registry", name: "catalog" },
      ["*"],
      ["*"],
    ],
    ["catalog with push on *", token(["push"], ["*"]), { type: "registry", name: "catalog" }, ["*"], []],
    [
      "catalog with delete on team/*",
      token(["delete"], ["team/*"]),
      { type: "registry", name: "catalog" },
      ["*"],
      [],
    ],
    [
      "catalog the owner may not list",
      token(["delete"], ["*"]),
      { type: "registry", name: "catalog" },
      [],
      [],
    ],
    ["another resource type", token(["delete"], ["*"]), { type: "plugin", name: "x" }, ALL, []],
  ];
  for (const [what, limitsOf, resource, owner, expected] of limits) {
    it(`limitToToken: ${what} → [${expected.join(",")}]`, () => {
      expect(limitToToken(limitsOf, resource, owner)).toEqual(expected);
    });
  }
});

describe("creating, listing and deleting access tokens", () => {
  const setup = () => {
    const { db } = tempDatabase();
    createUser(db, { name: "alice", passwordHash: "x", nowUnix: NOW });
    const key = AccessTokenKey.random();
    return { db, key };
  };
  const input = (over: Partial<NewAccessToken> = {}): NewAccessToken => ({
    owner: "alice",
    name: "ci",
    scopes: ["push"],
    repositoryPatterns: ["alice/*"],
    expiresAtUnix: null,
    nowUnix: NOW,
    ...over,
  });

  it("stores the closure, the HMAC of the secret (never the secret), and finds it by the secret", () => {
    const { db, key } = setup();
    const { token, secret } = createAccessToken(db, key, input({ expiresAtUnix: NOW + 3600 }));
    expect(token).toEqual({
      id: token.id,
      owner: "alice",
      ownerKind: "person",
      name: "ci",
      scopes: ["pull", "push"],
      repositoryPatterns: ["alice/*"],
      createdAtUnix: NOW,
      expiresAtUnix: NOW + 3600,
      lastUsedAtUnix: 0,
      lastUsedIp: "",
    });
    const dump = JSON.stringify(db.query("SELECT * FROM access_tokens").all());
    expect(dump).not.toContain(secret);
    expect(dump).not.toContain(secret.slice(ACCESS_TOKEN_PREFIX.length));
    expect(findTokenBySecret(db, key, secret)?.id).toBe(token.id);
    expect(findTokenBySecret(db, AccessTokenKey.random(), secret)).toBeNull();
    expect(listAccessTokens(db, { owner: "alice" }).map((t) => t.name)).toEqual(["ci"]);
    expect(listAccessTokens(db, { owner: "bob" })).toEqual([]);
    expect(deleteAccessToken(db, token.id).name).toBe("ci");
    expect(findTokenBySecret(db, key, secret)).toBeNull();
    expect(() => getAccessToken(db, token.id)).toThrow(/no access token/);
    expect(() => deleteAccessToken(db, token.id)).toThrow(/no access token/);
  });

  it("refuses a second token of the same name for one owner (409), not for another", () => {
    const { db, key } = setup();
    createUser(db, { name: "bob", passwordHash: "x", nowUnix: NOW });
    createAccessToken(db, key, input());
    expect(() => createAccessToken(db, key, input())).toThrow(/already has a token named "ci"/);
    expect(
      createAccessToken(db, key, input({ owner: "bob", repositoryPatterns: ["bob/*"] })).token.owner,
    ).toBe("bob");
  });

  it("gives robots tokens, never with the api scope", () => {
    const { db, key } = setup();
    createRobot(db, { ownerNamespace: "team", name: "ci", description: "", nowUnix: NOW });
    const { token } = createAccessToken(db, key, input({ owner: "team+ci", repositoryPatterns: ["team/*"] }));
    expect(token.ownerKind).toBe("robot");
    expect(() => createAccessToken(db, key, input({ owner: "team+ci", name: "x", scopes: ["api"] }))).toThrow(
      /robot tokens cannot have the api scope/,
    );
  });

  const DAY = 86_400;
  const hostile: [string, Partial<NewAccessToken>, RegExp][] = [
    ["an empty name", { name: "" }, /name is empty/],
    ["a 65-character name", { name: "x".repeat(65) }, /longer than 64/],
    ["a name with a newline", { name: "ci\nlevel=error" }, /printable ASCII/],
    ["a name with a NUL", { name: "ci\u0000" }, /printable ASCII/],
    ["a name with leading space", { name: " ci" }, /leading or trailing space/],
    ["a Unicode look-alike name", { name: "сi" }, /printable ASCII/],
    ["a name that is not a string", { name: 42 as never }, /must be a string/],
    ["no scopes", { scopes: [] }, /at least one scope/],
    ["an unknown scope", { scopes: ["admin" as never] }, /unknown scope "admin"/],
    ["scopes that are not a list", { scopes: "pull" as never }, /scopes must be a list/],
    ["a huge scope list", { scopes: Array(10_000).fill("pull") }, /too many scopes/],
    ["a scope that is an object", { scopes: [{ toString: () => "pull" } as never] }, /unknown scope/],
    ["no patterns", { repositoryPatterns: [] }, /at least one repository pattern/],
    ["33 patterns", { repositoryPatterns: Array.from({ length: 33 }, (_, i) => `a/r${i}`) }, /at most 32/],
    ["a huge pattern list", { repositoryPatterns: Array(100_000).fill("a/*") }, /at most 32/],
    ["an upper-case pattern", { repositoryPatterns: ["Team/*"] }, /invalid repository pattern/],
    ["a pattern with ..", { repositoryPatterns: ["../*"] }, /invalid repository pattern/],
    ["a glob in the middle", { repositoryPatterns: ["team/*/app"] }, /invalid repository pattern/],
    ["an SQL pattern", { repositoryPatterns: ["x'); DROP TABLE users;--"] }, /invalid repository pattern/],
    ["a 300-character pattern", { repositoryPatterns: [`${"a".repeat(300)}/*`] }, /longer than 255/],
    ["a pattern that is a number", { repositoryPatterns: [7 as never] }, /must be strings/],
    ["an expiry in the past", { expiresAtUnix: NOW - 1 }, /in the past/],
    ["an expiry of now", { expiresAtUnix: NOW }, /in the past/],
    ["an expiry after 9999", { expiresAtUnix: LATEST_EXPIRY_UNIX + 1 }, /after the year 9999/],
    ["a fractional expiry", { expiresAtUnix: NOW + 0.5 }, /whole number/],
    ["a NaN expiry", { expiresAtUnix: Number.NaN }, /whole number/],
    ["an infinite expiry", { expiresAtUnix: Number.POSITIVE_INFINITY }, /whole number/],
    ["a string expiry", { expiresAtUnix: "2030-01-01" as never }, /whole number/],
    ["no expiry under a maximum", { expiresAtUnix: null, maxLifetimeDays: 30 }, /at most 30 days/],
    [
      "31 days under a 30-day maximum",
      { expiresAtUnix: NOW + 31 * DAY, maxLifetimeDays: 30 },
      /more than 30 days/,
    ],
    ["an owner that does not exist", { owner: "nobody" }, /no account "nobody"/],
  ];
  for (const [what, over, message] of hostile) {
    it(`refuses ${what} with a 4xx`, () => {
      const { db, key } = setup();
      let caught: unknown;
      try {
        createAccessToken(db, key, input(over));
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(AppError);
      expect((caught as AppError).status).toBeGreaterThanOrEqual(400);
      expect((caught as AppError).status).toBeLessThan(500);
      expect((caught as AppError).message).toMatch(message);
      expect(db.query("SELECT count(*) AS n FROM access_tokens").get()).toEqual({ n: 0 });
    });
  }

  it("accepts exactly the maximum lifetime and 32 patterns (deduplicated)", () => {
    const { db, key } = setup();
    const patterns = [...Array.from({ length: 31 }, (_, i) => `a/r${i}`), "a/r0"];
    const { token } = createAccessToken(
      db,
      key,
      input({ expiresAtUnix: NOW + 30 * DAY, maxLifetimeDays: 30, repositoryPatterns: patterns }),
    );
    expect(token.repositoryPatterns).toHaveLength(31);
  });
});
