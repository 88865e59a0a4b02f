import { describe, expect, it } from "bun:test";
import { join } from "node:path";
import { grant, parseGrantee } from "../../src/accounts/permissions.ts";
import { register } from "../../src/accounts/registration.ts";
import { reservedNamesForRegistration, validAccountNameSample } from "../../src/accounts/reserved-names.ts";
import { findUser, listUsers, MAX_USERNAME_LENGTH, usernameProblem } from "../../src/accounts/users.ts";
import { PasswordVerifier } from "../../src/authn/password-verifier.ts";
import { tempDatabase } from "../accounts-helpers.ts";

const NOW = 1_700_000_000;

describe("registration", () => {
  const cases: {
    title: string;
    mode: "open" | "approval";
    username: string;
    password: string;
    expected: string;
    enabled?: boolean;
  }[] = [
    {
      title: "open creates an enabled account",
      mode: "open",
      username: "carol",
      password: "carol-pass",
      expected: "created",
      enabled: true,
    },
    {
      title: "approval creates a disabled one",
      mode: "approval",
      username: "dave",
      password: "dave-pass",
      expected: "created",
      enabled: false,
    },
    {
      title: "refuses an upper-case name",
      mode: "open",
      username: "Carol",
      password: "carol-pass",
      expected: "refused",
    },
    {
      title: "refuses a Cyrillic look-alike",
      mode: "open",
      username: "саrol",
      password: "carol-pass",
      expected: "refused",
    },
    {
      title: "refuses SQL in the name",
      mode: "open",
      username: "x'); DROP TABLE users;--",
      password: "carol-pass",
      expected: "refused",
    },
    {
      title: "refuses a short password",
      mode: "open",
      username: "erin",
      password: "short",
      expected: "refused",
    },
    ...[
      "attacker-pw\u0001",
      "line\nbreak-pw",
      "nul\u0000-password",
      "tab\tpassword",
      "del\u007fpassword",
      "c1\u009bpassword",
    ].map((password) => ({
      title: `refuses a control character in the password (${JSON.stringify(password)})`,
      mode: "open" as const,
      username: "erin",
      password,
      expected: "refused",
    })),
  ];
  for (const c of cases) {
    it(c.title, async () => {
      const { db } = tempDatabase();
      const outcome = await register(db, new PasswordVerifier(), c.mode, c, NOW);
      expect(outcome.kind as string).toBe(c.expected);
      const user = findUser(db, c.username);
      if (c.expected === "created") {
        expect(user?.isEnabled).toBe(c.enabled as boolean);
        expect(user?.passwordHash).toStartWith("$argon2id$v=19$m=12288,t=3,");
        expect(await Bun.password.verify(c.password, user?.passwordHash ?? "")).toBe(true);
      } else {
        expect(listUsers(db)).toEqual([]);
      }
    });
  }

  it("refuses a name that grants use as a namespace (it would own NAME/* as personal namespace)", async () => {
    const { db } = tempDatabase();
    const { grant } = await import("../../src/accounts/permissions.ts");
    const { createUser } = await import("../../src/accounts/users.ts");
    createUser(db, { name: "alice", passwordHash: "x", nowUnix: NOW });
    grant(db, { kind: "user", name: "alice" }, "team/*", "write", NOW);
    grant(db, { kind: "public" }, "tools/cli", "read", NOW);
    const verifier = new PasswordVerifier();
    for (const name of ["team", "tools"]) {
      const outcome = await register(db, verifier, "open", { username: name, password: "long-enough" }, NOW);
      expect(outcome).toEqual({
        kind: "refused",
        reason: `cannot register ${name}: this name is not available`,
      });
    }
    expect(
      (await register(db, verifier, "open", { username: "tea", password: "long-enough" }, NOW)).kind,
    ).toBe("created");
  });

  it("refuses built-in reserved names and the reserved names it is given, with the same message (review H4)", async () => {
    const { db } = tempDatabase();
    const verifier = new PasswordVerifier();
    const reserved = reservedNamesForRegistration([
      { match: { account: "ci", name: "prod/*" }, actions: ["*"] },
    ]);
    for (const name of ["library", "admin", "root", "registry", "regauth", "v2", "prod"]) {
      const outcome = await register(
        db,
        verifier,
        "open",
        { username: name, password: "long-enough" },
        NOW,
        reserved,
      );
      expect(outcome).toEqual({
        kind: "refused",
        reason: `cannot register ${name}: this name is not available`,
      });
    }
    // Built-in names are refused even without the startup list.
    expect(
      (await register(db, verifier, "open", { username: "library", password: "long-enough" }, NOW)).kind,
    ).toBe("refused");
    expect(listUsers(db)).toEqual([]);
    expect(
      (
        await register(
          db,
          verifier,
          "open",
          { username: "production", password: "long-enough" },
          NOW,
          reserved,
        )
      ).kind,
    ).toBe("created");
  });

  it("an existing name is taken, not overwritten", async () => {
    const { db } = tempDatabase();
    const verifier = new PasswordVerifier();
    await register(db, verifier, "open", { username: "frank", password: "first-pass" }, NOW);
    const hash = findUser(db, "frank")?.passwordHash;
    expect(
      (await register(db, verifier, "open", { username: "frank", password: "second-pass" }, NOW)).kind,
    ).toBe("taken");
    expect(findUser(db, "frank")?.passwordHash).toBe(hash as string);
  });

  it("50 concurrent registrations of one name create exactly one account", async () => {
    const { db } = tempDatabase();
    const verifier = new PasswordVerifier();
    const outcomes = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        register(db, verifier, "open", { username: "grace", password: `password-${i}` }, NOW),
      ),
    );
    expect(outcomes.filter((o) => o.kind === "created")).toHaveLength(1);
    expect(outcomes.filter((o) => o.kind === "taken")).toHaveLength(49);
    expect(db.query("SELECT count(*) AS n FROM users WHERE name = 'grace'").get()).toEqual({ n: 1 });
  });
});

describe("registration across processes", () => {
  it("8 processes registering one name at the same moment create exactly one account", async () => {
    const { path } = tempDatabase();
    const startAtMs = Date.now() + 1500;
    const procs = Array.from({ length: 8 }, (_, i) =>
      Bun.spawn(
        [
          "bun",
          join(import.meta.dir, "../fixtures/register-once.ts"),
          path,
          String(startAtMs),
          `pass-${i}-xx`,
        ],
        {
          stdout: "pipe",
          stderr: "inherit",
        },
      ),
    );
    const outcomes = await Promise.all(procs.map(async (p) => (await new Response(p.stdout).text()).trim()));
    expect(outcomes.filter((o) => o === "created")).toHaveLength(1);
    // The others see the winner's account, or (review finding 9) a 503 for the lock it held at
    // that instant; never a second account, never a crash.
    expect(outcomes.filter((o) => o === "taken" || o === "busy")).toHaveLength(7);
    const { Database } = await import("bun:sqlite");
    const db = new Database(path);
    expect(db.query("SELECT count(*) AS n FROM users WHERE name = 'racer'").get()).toEqual({ n: 1 });
  });
});

// Issue 8 H1: a stranger registering `deploy` or `ci-evil` received the rights the ACL wrote
// for those accounts (and pushed into another user's private repository).
describe("registration refuses names the ACL's account patterns single out", () => {
  const acl = [
    { match: { account: "deploy", name: "owner/*" }, actions: ["push", "pull"] },
    { match: { account: "/^ci-/", name: "owner/*" }, actions: ["pull"] },
    { match: { account: "svc-?", name: "owner/*" }, actions: ["pull"] },
    { match: { account: "/.+/", name: "${account}/*" }, actions: ["*"] },
  ];
  it("refuses them with the generic message and creates nothing", async () => {
    const { db } = tempDatabase();
    const verifier = new PasswordVerifier();
    const reserved = reservedNamesForRegistration(acl);
    for (const name of ["deploy", "ci-evil", "ci-", "svc-1"]) {
      expect(reserved.has(name)).toBe(true);
      const outcome = await register(
        db,
        verifier,
        "open",
        { username: name, password: "stranger-password" },
        NOW,
        reserved,
      );
      expect(outcome).toEqual({
        kind: "refused",
        reason: `cannot register ${name}: this name is not available`,
      });
    }
    expect(listUsers(db)).toEqual([]);
  });
  it("a catch-all account pattern reserves nothing", async () => {
    const { db } = tempDatabase();
    const reserved = reservedNamesForRegistration(acl);
    for (const name of ["newbie", "deployer", "ci", "svc-12", "0day"]) expect(reserved.has(name)).toBe(false);
    const outcome = await register(
      db,
      new PasswordVerifier(),
      "open",
      { username: "newbie", password: "newbie-password" },
      NOW,
      reserved,
    );
    expect(outcome.kind).toBe("created");
  });
  it("the sample of valid names tells a catch-all: every first and later character, both length limits", () => {
    const sample = validAccountNameSample();
    for (const name of sample) expect(usernameProblem(name)).toBeNull();
    expect(new Set(sample.map((name) => name[0])).size).toBe(36);
    expect(new Set(sample.flatMap((name) => [...name.slice(1)])).size).toBe(39);
    expect(Math.min(...sample.map((name) => name.length))).toBe(1);
    expect(Math.max(...sample.map((name) => name.length))).toBe(MAX_USERNAME_LENGTH);
    expect(validAccountNameSample()).toEqual(sample); // the same on every start
  });
});

describe("reserved namespaces: every namespace an ACL name pattern could match under (review finding 1)", () => {
  // [title, match, names refused, names left free]
  const cases: [string, { account?: string; name?: string; type?: string }, string[], string[]][] = [
    ["a namespace glob", { name: "prod/*" }, ["prod"], ["prodx", "pro"]],
    ["a repository", { name: "tools/cli" }, ["tools"], ["tool"]],
    ["a bare name", { name: "solo" }, [], ["solo"]],
    ["a nested path", { name: "org/team/*" }, ["org"], ["team"]],
    ["dots and dashes are literal", { name: "my.org-x/*" }, ["my.org-x"], ["myxorg-x"]],
    ["no name", {}, [], ["anyone"]],
    ["a single star matches no namespace", { name: "*" }, [], ["anyone"]],
    ["star-slash-star names none in particular", { name: "*/*" }, [], ["anyone"]],
    ["a glob in the first component", { name: "prod-*/app" }, ["prod-a", "prod-"], ["prod", "pro-a"]],
    ["a ? glob", { name: "pro?/app" }, ["prod", "prox"], ["pro", "produ"]],
    ["a character class", { name: "[ab]x/*" }, ["ax", "bx"], ["cx", "x"]],
    ["${account} as the first component is the registrant's own", { name: "${account}/*" }, [], ["anyone"]],
    [
      "${account} inside the first component",
      { account: "ci", name: "${account}-cache/*" },
      ["ci-cache", "x-cache"],
      ["cache", "cix"],
    ],
    ["a labels placeholder can be any namespace", { name: "${labels:team}/*" }, ["blue", "anyone"], []],
    ["an anchored regex", { name: "/^prod\\/.+$/" }, ["prod"], ["prodx", "xprod"]],
    ["a regex with a class", { name: "/^team-[0-9]+\\//" }, ["team-1", "team-42"], ["team-a", "team-"]],
    ["an unanchored regex names none in particular", { name: "/prod\\//" }, [], ["anyone"]],
    [
      "a regex starting with ${account}/ is the registrant's own",
      { name: "/^${account}\\/.+$/" },
      [],
      ["anyone"],
    ],
    ["a regex with ${account} inside", { name: "/^${account}-ci\\/.+$/" }, ["x-ci"], ["x", "ci"]],
    ["a registry rule", { type: "registry", name: "ops/*" }, [], ["ops"]],
    ["an explicit repository rule", { type: "repository", name: "ops/*" }, ["ops"], []],
    ["a type glob", { type: "*", name: "ops/*" }, ["ops"], []],
  ];
  for (const [title, match, refused, free] of cases) {
    it(title, () => {
      const reserved = reservedNamesForRegistration([{ match, actions: ["pull"] }]);
      expect({
        refused: refused.filter((n) => !reserved.has(n)),
        free: free.filter((n) => reserved.has(n)),
      }).toEqual({
        refused: [],
        free: [],
      });
    });
  }
});

describe("the availability check is repeated under the write lock (review: a grant made while the password hashes)", () => {
  it("a grant on NAME/* made while the password hashes makes the name unavailable", async () => {
    const { db } = tempDatabase();
    const verifier = new PasswordVerifier();
    const limited = verifier.limited.bind(verifier);
    verifier.limited = <T>(work: () => Promise<T>) => {
      // An admin grants the namespace while this registration hashes its password.
      grant(db, parseGrantee("*"), "newbie/*", "read", NOW);
      return limited(work);
    };
    const outcome = await register(
      db,
      verifier,
      "open",
      { username: "newbie", password: "long-enough" },
      NOW,
    );
    expect(outcome).toEqual({
      kind: "refused",
      reason: "cannot register newbie: this name is not available",
    });
    expect(listUsers(db)).toEqual([]);
  });
});

describe("config user names with a '/' reserve their first component", () => {
  it("team/ci owns team/ci/* through ${account}/*, so `team` is not registrable", () => {
    const rules = [{ match: { account: "/.+/", name: "${account}/*" }, actions: ["*"] }];
    const reserved = reservedNamesForRegistration(rules, undefined, { knownAccounts: ["team/ci", "alice"] });
    expect(["team", "alice", "newbie"].map((name) => reserved.has(name))).toEqual([true, false, false]);
  });
});
