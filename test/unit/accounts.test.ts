import { describe, expect, it } from "bun:test";
import { ensureAdmin } from "../../src/accounts/bootstrap.ts";
import { addMember, createGroup, deleteGroup, listGroups } from "../../src/accounts/groups.ts";
import {
  checkPattern,
  effectiveLevel,
  grant,
  type Level,
  listPermissions,
  parseGrantee,
  patternMatches,
  revoke,
} from "../../src/accounts/permissions.ts";
import {
  createUser,
  deleteUser,
  findUser,
  passwordProblem,
  setEnabled,
  usernameProblem,
} from "../../src/accounts/users.ts";
import { BadRequest, Conflict, NotFound } from "../../src/errors.ts";
import { quickHash, tempDatabase } from "../accounts-helpers.ts";

const NOW = 1_700_000_000;

describe("user names", () => {
  const cases: [string, boolean][] = [
    ["alice", true],
    ["a", true],
    ["0day", true],
    ["john.doe", true],
    ["john_doe-2", true],
    ["a".repeat(64), true],
    ["a".repeat(65), false],
    ["", false],
    ["Alice", false],
    [".alice", false],
    ["-alice", false],
    ["_alice", false],
    ["al ice", false],
    ["alice/x", false],
    ["alice:x", false],
    ["alice@x", false],
    ["ａｄｍｉｎ", false], // fullwidth
    ["аdmin", false], // Cyrillic а
    ["admin\u200b", false], // zero-width space
    ["admin\0", false],
    ["admin\n", false],
    ["admin'--", false],
    ["x'); DROP TABLE users;--", false],
  ];
  for (const [name, ok] of cases) {
    it(`${ok ? "accepts" : "refuses"} ${JSON.stringify(name)}`, () => {
      expect(usernameProblem(name) === null).toBe(ok);
    });
  }

  it("passwords: 8 to 256 characters", () => {
    expect(passwordProblem("1234567")).not.toBeNull();
    expect(passwordProblem("12345678")).toBeNull();
    expect(passwordProblem("x".repeat(257))).not.toBeNull();
  });
});

describe("users", () => {
  it("create, find, conflict, disable, delete (cascading grants and memberships)", () => {
    const { db } = tempDatabase();
    const alice = createUser(db, { name: "alice", passwordHash: quickHash("pw"), nowUnix: NOW });
    expect(alice).toMatchObject({
      name: "alice",
      isAdmin: false,
      isEnabled: true,
      createdAtUnix: NOW,
      lastLoginAtUnix: 0,
    });
    expect(() => createUser(db, { name: "alice", passwordHash: "x", nowUnix: NOW })).toThrow(Conflict);
    expect(() => createUser(db, { name: "Alice", passwordHash: "x", nowUnix: NOW })).toThrow(BadRequest);
    setEnabled(db, "alice", false);
    expect(findUser(db, "alice")?.isEnabled).toBe(false);
    expect(() => setEnabled(db, "bob", false)).toThrow(NotFound);
    createGroup(db, "devs", NOW);
    addMember(db, "devs", "alice");
    grant(db, { kind: "user", name: "alice" }, "team/*", "write", NOW);
    deleteUser(db, "alice");
    expect(findUser(db, "alice")).toBeNull();
    expect(listPermissions(db)).toEqual([]);
    expect(listGroups(db)[0]?.members).toEqual([]);
    expect(() => deleteUser(db, "alice")).toThrow(NotFound);
  });

  it("takes SQL metacharacters literally in every name field and keeps the schema intact", () => {
    const { db } = tempDatabase();
    const schemaBefore = db.query("SELECT name, sql FROM sqlite_master ORDER BY name").all();
    createUser(db, { name: "alice", passwordHash: quickHash("x"), nowUnix: NOW });
    const hostile = [
      "admin'--",
      "x'); DROP TABLE users;--",
      "' OR '1'='1",
      'a"; DELETE FROM users; --',
      "%",
      "_",
    ];
    for (const text of hostile) {
      expect(findUser(db, text)).toBeNull();
      expect(() => createUser(db, { name: text, passwordHash: "x", nowUnix: NOW })).toThrow(BadRequest);
      expect(() => createGroup(db, text, NOW)).toThrow(BadRequest);
      expect(() => deleteUser(db, text)).toThrow(NotFound);
      expect(() => deleteGroup(db, text)).toThrow(NotFound);
      expect(() => grant(db, parseGrantee(text), "team/*", "read", NOW)).toThrow(NotFound);
      expect(() => grant(db, { kind: "user", name: "alice" }, text, "read", NOW)).toThrow(BadRequest);
      expect(() => grant(db, { kind: "user", name: "alice" }, `${text}/*`, "read", NOW)).toThrow(BadRequest);
      expect(() => revoke(db, { kind: "user", name: "alice" }, text)).toThrow(NotFound);
      expect(effectiveLevel(db, { userId: 1, userName: text, isAdmin: false }, text, false)).toBeNull();
    }
    // A password is data, never SQL: stored as a hash, verified literally.
    const password = "x'); DROP TABLE users;--";
    createUser(db, { name: "bob", passwordHash: quickHash(password), nowUnix: NOW });
    expect(Bun.password.verifySync(password, findUser(db, "bob")?.passwordHash ?? "")).toBe(true);
    expect(db.query("SELECT name, sql FROM sqlite_master ORDER BY name").all()).toEqual(schemaBefore);
    expect(db.query("SELECT name FROM users ORDER BY name").all()).toEqual([
      { name: "alice" },
      { name: "bob" },
    ]);
    expect(db.query("PRAGMA integrity_check").get()).toEqual({ integrity_check: "ok" });
  });
});

describe("repository patterns", () => {
  const matches: [string, string, boolean][] = [
    ["*", "anything/at/all", true],
    ["team/*", "team/app", true],
    ["team/*", "team/sub/app", true],
    ["team/*", "team", false],
    ["team/*", "teammate/app", false],
    ["team/*", "other/team/app", false],
    ["team/app", "team/app", true],
    ["team/app", "team/app2", false],
    ["team/app", "team/app/sub", false],
  ];
  for (const [pattern, name, expected] of matches) {
    it(`${pattern} ${expected ? "covers" : "does not cover"} ${name}`, () => {
      expect(patternMatches(pattern, name)).toBe(expected);
    });
  }
  const valid = ["*", "team/*", "team/app", "a/b/c", "a.b_c-d/e__f", "library/ubuntu"];
  const invalid = [
    "",
    "/*",
    "team/",
    "Team/*",
    "team/**",
    "team/*/app",
    "*/app",
    "team//app",
    "te am",
    "team/a..b",
    "x".repeat(256),
  ];
  for (const pattern of valid) it(`accepts pattern ${JSON.stringify(pattern)}`, () => checkPattern(pattern));
  for (const pattern of invalid) {
    it(`refuses pattern ${JSON.stringify(pattern.slice(0, 20))}`, () => {
      expect(() => checkPattern(pattern)).toThrow(BadRequest);
    });
  }
});

describe("effective permissions", () => {
  const { db } = tempDatabase();
  const id = (name: string, isAdmin = false) =>
    createUser(db, { name, passwordHash: "x", isAdmin, nowUnix: NOW }).id;
  const alice = id("alice");
  const bob = id("bob");
  const root = id("root", true);
  createGroup(db, "devs", NOW);
  addMember(db, "devs", "bob");
  grant(db, { kind: "user", name: "alice" }, "team/*", "write", NOW);
  grant(db, { kind: "user", name: "alice" }, "team/secret", "admin", NOW);
  grant(db, { kind: "group", name: "devs" }, "team/*", "read", NOW);
  grant(db, { kind: "public" }, "pub/*", "read", NOW);
  grant(db, { kind: "public" }, "lone/app", "read", NOW);

  it("public grants are read only", () => {
    expect(() => grant(db, { kind: "public" }, "pub/*", "write", NOW)).toThrow(BadRequest);
  });

  const cases: [
    string,
    { userId: number | null; userName: string | null; isAdmin: boolean },
    string,
    boolean,
    Level | null,
  ][] = [
    ["alice on team/app", { userId: alice, userName: "alice", isAdmin: false }, "team/app", true, "write"],
    [
      "alice: the highest level wins",
      { userId: alice, userName: "alice", isAdmin: false },
      "team/secret",
      true,
      "admin",
    ],
    [
      "alice on her namespace",
      { userId: alice, userName: "alice", isAdmin: false },
      "alice/x",
      true,
      "admin",
    ],
    [
      "alice, personal namespaces off",
      { userId: alice, userName: "alice", isAdmin: false },
      "alice/x",
      false,
      null,
    ],
    ["alice on bob's namespace", { userId: alice, userName: "alice", isAdmin: false }, "bob/x", true, null],
    ["bob through @devs", { userId: bob, userName: "bob", isAdmin: false }, "team/app", true, "read"],
    ["bob on public", { userId: bob, userName: "bob", isAdmin: false }, "pub/x/y", true, "read"],
    [
      "anonymous on public namespace",
      { userId: null, userName: null, isAdmin: false },
      "pub/x",
      true,
      "read",
    ],
    [
      "anonymous on public repository",
      { userId: null, userName: null, isAdmin: false },
      "lone/app",
      true,
      "read",
    ],
    ["anonymous elsewhere", { userId: null, userName: null, isAdmin: false }, "team/app", true, null],
    ["admin anywhere", { userId: root, userName: "root", isAdmin: true }, "whatever/repo", true, "admin"],
  ];
  for (const [title, subject, name, personal, expected] of cases) {
    it(title, () => expect(effectiveLevel(db, subject, name, personal)).toBe(expected));
  }

  it("revoke removes exactly one grant; granting again changes the level", () => {
    grant(db, { kind: "user", name: "alice" }, "team/*", "read", NOW);
    expect(effectiveLevel(db, { userId: alice, userName: "alice", isAdmin: false }, "team/app", false)).toBe(
      "read",
    );
    revoke(db, { kind: "user", name: "alice" }, "team/*");
    expect(
      effectiveLevel(db, { userId: alice, userName: "alice", isAdmin: false }, "team/app", false),
    ).toBeNull();
    expect(() => revoke(db, { kind: "user", name: "alice" }, "team/*")).toThrow(NotFound);
  });
});

describe("first-run administrator (ensureAdmin)", () => {
  it("creates admin in an empty database, once", async () => {
    const { db } = tempDatabase();
    const created = await ensureAdmin(db, NOW);
    expect(created.kind).toBe("created");
    expect(findUser(db, "admin")?.isAdmin).toBe(true);
    expect((await ensureAdmin(db, NOW)).kind).toBe("exists");
  });

  it("creates nothing when the config's users section has its own admin (review H3)", async () => {
    const { db } = tempDatabase();
    expect(await ensureAdmin(db, NOW, { admin: { password: "$2y$..." } })).toEqual({ kind: "config-user" });
    expect(findUser(db, "admin")).toBeNull();
    // Other config users do not stop it.
    expect((await ensureAdmin(db, NOW, { alice: {} })).kind).toBe("created");
  });

  it("an existing administrator is enough, whatever the config says", async () => {
    const { db } = tempDatabase();
    createUser(db, { name: "root", passwordHash: "x", isAdmin: true, nowUnix: NOW });
    expect(await ensureAdmin(db, NOW, { admin: {} })).toEqual({ kind: "exists" });
  });
});
