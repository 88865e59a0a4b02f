/** Robot accounts (issue 10 item 4): names, listing apart from people, deletion retires the name. */
import { describe, expect, it, spyOn } from "bun:test";
import { createUser, findUser, listUsers } from "../../src/accounts/users.ts";
import { AppError } from "../../src/errors.ts";
import { createRobot, deleteRobot, getRobot, listRobots, robotFullName } from "../../src/robots/index.ts";
import { tempDatabase } from "../accounts-helpers.ts";

const NOW = 1_800_000_000;

describe("robot accounts", () => {
  it("are users rows named <owner>+<name> with password '!', listed apart from people", () => {
    const { db } = tempDatabase();
    createUser(db, { name: "alice", passwordHash: "x", nowUnix: NOW });
    const robot = createRobot(db, {
      ownerNamespace: "team",
      name: "ci",
      description: "builds",
      nowUnix: NOW,
    });
    const registry = createRobot(db, { ownerNamespace: null, name: "mirror", description: "", nowUnix: NOW });
    expect(robot).toEqual({
      name: "team+ci",
      ownerNamespace: "team",
      description: "builds",
      createdAtUnix: NOW,
      isEnabled: true,
      lastLoginAtUnix: 0,
    });
    expect(registry.name).toBe("regauth+mirror");
    expect(robotFullName(null, "x")).toBe("regauth+x");
    expect(findUser(db, "team+ci")).toMatchObject({ kind: "robot", passwordHash: "!", isAdmin: false });
    expect(listUsers(db).map((u) => u.name)).toEqual(["alice"]);
    expect(listRobots(db).map((r) => r.name)).toEqual(["regauth+mirror", "team+ci"]);
    expect(listRobots(db, { ownerNamespace: "team" }).map((r) => r.name)).toEqual(["team+ci"]);
    expect(listRobots(db, { ownerNamespace: null }).map((r) => r.name)).toEqual(["regauth+mirror"]);
    expect(() => getRobot(db, "alice")).toThrow(/no robot/);
  });

  it("deleting one takes its tokens and grants and retires the name", () => {
    const { db } = tempDatabase();
    createRobot(db, { ownerNamespace: "team", name: "ci", description: "", nowUnix: NOW });
    expect(deleteRobot(db, "team+ci", NOW).name).toBe("team+ci");
    expect(findUser(db, "team+ci")).toBeNull();
    expect(() =>
      createRobot(db, { ownerNamespace: "team", name: "ci", description: "", nowUnix: NOW }),
    ).toThrow(/belonged to a deleted robot/);
    expect(() => deleteRobot(db, "team+ci", NOW)).toThrow(/no robot/);
  });

  it("a person can never take a robot's name, nor a robot a person's", () => {
    const { db } = tempDatabase();
    createRobot(db, { ownerNamespace: "team", name: "ci", description: "", nowUnix: NOW });
    expect(() => createUser(db, { name: "team+ci", passwordHash: "x", nowUnix: NOW })).toThrow(
      /invalid user name/,
    );
    createRobot(db, { ownerNamespace: "team", name: "deploy", description: "", nowUnix: NOW });
    expect(() =>
      createRobot(db, { ownerNamespace: "team", name: "ci", description: "", nowUnix: NOW }),
    ).toThrow(/already exists/);
  });

  const hostile: [string, { ownerNamespace: string | null; name: string; description: string }, RegExp][] = [
    ["an empty name", { ownerNamespace: "team", name: "", description: "" }, /name is empty/],
    ["a name with +", { ownerNamespace: "team", name: "a+b", description: "" }, /invalid robot name/],
    ["an upper-case name", { ownerNamespace: "team", name: "CI", description: "" }, /invalid robot name/],
    [
      "a namespace with /",
      { ownerNamespace: "team/sub", name: "ci", description: "" },
      /invalid robot namespace/,
    ],
    [
      "the registry's own owner",
      { ownerNamespace: "regauth", name: "ci", description: "" },
      /registry's own/,
    ],
    ["a 65-character name", { ownerNamespace: "t", name: "a".repeat(65), description: "" }, /longer than 64/],
    [
      "a long description",
      { ownerNamespace: "t", name: "ci", description: "d".repeat(257) },
      /longer than 256/,
    ],
    ["a control character", { ownerNamespace: "t", name: "ci", description: "a\u001b[31m" }, /control/],
    [
      "a name that is not a string",
      { ownerNamespace: "t", name: 5 as never, description: "" },
      /must be a string/,
    ],
  ];
  for (const [what, input, message] of hostile) {
    it(`refuses ${what}`, () => {
      const { db } = tempDatabase();
      let caught: unknown;
      try {
        createRobot(db, { ...input, nowUnix: NOW });
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(AppError);
      expect((caught as AppError).status).toBe(400);
      expect((caught as AppError).message).toMatch(message);
      expect(listRobots(db)).toEqual([]);
    });
  }
});

describe("robots at the database authenticator and authorizer", () => {
  it("a password login as a robot is denied without hashing its '!' (the dummy hash keeps the timing)", async () => {
    const { PasswordVerifier } = await import("../../src/authn/password-verifier.ts");
    const { databaseUsersAuthenticator } = await import("../../src/authn/database-users.ts");
    const { db } = tempDatabase();
    createRobot(db, { ownerNamespace: "team", name: "ci", description: "", nowUnix: NOW });
    const verifier = new PasswordVerifier();
    const verify = spyOn(verifier, "verify");
    const dummy = spyOn(verifier, "verifyDummy");
    const auth = databaseUsersAuthenticator(db, verifier);
    for (const password of ["!", "", "a-long-password"])
      expect(await auth.authenticate({ username: "team+ci", password }, { ip: null })).toEqual({
        kind: "deny",
      });
    expect(verify).toHaveBeenCalledTimes(0);
    expect(dummy).toHaveBeenCalledTimes(3);
  });

  it("a robot never holds a personal namespace nor admin, even with personal namespaces on", async () => {
    const { databasePermissionsAuthorizer } = await import("../../src/authz/database-permissions.ts");
    const { grant } = await import("../../src/accounts/permissions.ts");
    const { db } = tempDatabase();
    createRobot(db, { ownerNamespace: "team", name: "ci", description: "", nowUnix: NOW });
    db.run("UPDATE users SET is_admin = 1 WHERE name = 'team+ci'"); // even if the row says so
    grant(db, { kind: "user", name: "team+ci" }, "team/*", "write", NOW);
    const authorizer = databasePermissionsAuthorizer(db, { personalNamespaces: true, groupLabels: [] });
    const principal = { account: "team+ci", labels: {}, isAnonymous: false, authenticator: "access-token" };
    const ask = (type: string, name: string) =>
      authorizer.authorize(
        {
          account: "team+ci",
          type,
          name,
          service: "registry",
          ip: null,
          actions: ["delete", "pull", "push"],
          labels: {},
        },
        principal,
      );
    expect(ask("repository", "team+ci/app")).toBeNull();
    expect(ask("repository", "other/app")).toBeNull();
    expect(ask("registry", "catalog")).toBeNull();
    expect(ask("repository", "team/app")).toEqual(["pull", "push"]);
  });
});
