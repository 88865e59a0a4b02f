/**
 * Deleted users' names stay retired until an admin releases them (issue 8 M1); approval-pending
 * and admin-disabled are different states (issue 10); a short password at registration does not
 * reveal which names are reserved (issue 8 L7).
 */
import { describe, expect, it } from "bun:test";
import { NAME_NOT_AVAILABLE, register } from "../../src/accounts/registration.ts";
import { reservedNamesForRegistration } from "../../src/accounts/reserved-names.ts";
import {
  createUser,
  deleteUser,
  findUser,
  listRetiredNames,
  releaseName,
  retiredName,
  setEnabled,
  setPasswordHash,
} from "../../src/accounts/users.ts";
import { PasswordVerifier } from "../../src/authn/password-verifier.ts";
import { Conflict, NotFound } from "../../src/errors.ts";
import { cli, quickHash, tempDatabase } from "../accounts-helpers.ts";
import { makeTempDir } from "../helpers.ts";

const NOW = 1_700_000_000;

describe("retired names", () => {
  it("deleting a user retires the name, in the same transaction; release frees it", () => {
    const { db } = tempDatabase();
    createUser(db, { name: "dave", passwordHash: quickHash("dave-pass"), nowUnix: NOW });
    deleteUser(db, "dave", NOW + 5);
    expect(findUser(db, "dave")).toBeNull();
    expect(retiredName(db, "dave")).toEqual({ name: "dave", retiredAtUnix: NOW + 5 });
    expect(listRetiredNames(db)).toEqual([{ name: "dave", retiredAtUnix: NOW + 5 }]);
    releaseName(db, "dave");
    expect(retiredName(db, "dave")).toBeNull();
    expect(() => releaseName(db, "dave")).toThrow(NotFound);
    expect(() => releaseName(db, "x'); DROP TABLE users;--")).toThrow(NotFound);
  });

  it("createUser refuses a retired name with a message that says what to do", () => {
    const { db } = tempDatabase();
    createUser(db, { name: "dave", passwordHash: "x", nowUnix: NOW });
    deleteUser(db, "dave", NOW);
    expect(() => createUser(db, { name: "dave", passwordHash: "y", nowUnix: NOW })).toThrow(Conflict);
    expect(() => createUser(db, { name: "dave", passwordHash: "y", nowUnix: NOW })).toThrow(
      /regauth user release dave/,
    );
    releaseName(db, "dave");
    expect(createUser(db, { name: "dave", passwordHash: "y", nowUnix: NOW }).name).toBe("dave");
  });

  it("a failed delete retires nothing", () => {
    const { db } = tempDatabase();
    expect(() => deleteUser(db, "nobody", NOW)).toThrow(NotFound);
    expect(listRetiredNames(db)).toEqual([]);
  });

  it("registration refuses a retired name with the generic answer; after release it registers", async () => {
    const { db } = tempDatabase();
    const verifier = new PasswordVerifier();
    createUser(db, { name: "dave", passwordHash: quickHash("dave-pass"), nowUnix: NOW });
    deleteUser(db, "dave", NOW);
    const stranger = { username: "dave", password: "stranger-pass" };
    expect(await register(db, verifier, "open", stranger, NOW)).toEqual({
      kind: "refused",
      reason: `cannot register dave: ${NAME_NOT_AVAILABLE}`,
    });
    expect(findUser(db, "dave")).toBeNull();
    releaseName(db, "dave");
    expect(await register(db, verifier, "open", stranger, NOW)).toEqual({ kind: "created", enabled: true });
  });
});

describe("registration does not reveal reserved names through the password rules (review L7)", () => {
  const reserved = reservedNamesForRegistration([
    { match: { account: "ci", name: "prod/*" }, actions: ["*"] },
  ]);
  for (const password of ["short", "x", "line\nbreak-password"]) {
    it(`a reserved and a free name get the same answer for ${JSON.stringify(password)}`, async () => {
      const { db } = tempDatabase();
      const verifier = new PasswordVerifier();
      const answers = [];
      for (const username of ["prod", "library", "freely"]) {
        const outcome = await register(db, verifier, "open", { username, password }, NOW, reserved);
        expect(outcome.kind).toBe("refused");
        answers.push(outcome.kind === "refused" ? outcome.reason.replace(username, "NAME") : "");
      }
      expect(new Set(answers).size).toBe(1);
      expect(answers[0]).not.toContain(NAME_NOT_AVAILABLE);
    });
  }
});

describe("pending approval and disabled are different states (issue 10)", () => {
  it("approval mode marks the account pending; enable clears it; disable is not pending", async () => {
    const { db } = tempDatabase();
    await register(
      db,
      new PasswordVerifier(),
      "approval",
      { username: "pat", password: "pat-password" },
      NOW,
    );
    expect(findUser(db, "pat")).toMatchObject({ isEnabled: false, isPendingApproval: true });
    setEnabled(db, "pat", true);
    expect(findUser(db, "pat")).toMatchObject({ isEnabled: true, isPendingApproval: false });
    setEnabled(db, "pat", false);
    expect(findUser(db, "pat")).toMatchObject({ isEnabled: false, isPendingApproval: false });
  });
});

describe("the credential epoch (refresh tokens revoked by disable, issue 8)", () => {
  it("moves on disable and on a password change, not on enable", () => {
    const { db } = tempDatabase();
    createUser(db, { name: "bob", passwordHash: "x", nowUnix: NOW });
    const epoch = () => findUser(db, "bob")?.credentialEpoch;
    expect(epoch()).toBe(0);
    setEnabled(db, "bob", false);
    expect(epoch()).toBe(1);
    setEnabled(db, "bob", true);
    expect(epoch()).toBe(1);
    setPasswordHash(db, "bob", "y");
    expect(epoch()).toBe(2);
  });
});

describe("regauth user rm / release / list --retired", () => {
  const dataDir = makeTempDir("regauth-cli-retired-");
  const d = ["--data-dir", dataDir];
  const steps: { argv: string[]; stdin?: string; exit: number; out?: RegExp; err?: RegExp }[] = [
    { argv: ["user", "add", "dave", "--password-stdin", ...d], stdin: "dave-password", exit: 0 },
    { argv: ["user", "rm", "dave", ...d], exit: 0, out: /deleted user dave[\s\S]*regauth user release dave/ },
    { argv: ["user", "list", ...d], exit: 0, out: /^NAME/ },
    { argv: ["user", "list", "--retired", ...d], exit: 0, out: /^NAME\s+RETIRED\ndave\s+\d{4}-\d\d-\d\dT/ },
    {
      argv: ["user", "add", "dave", "--password-stdin", ...d],
      stdin: "new-dave-password",
      exit: 1,
      err: /belonged to a deleted user[\s\S]*regauth user release dave/,
    },
    { argv: ["user", "release", ...d], exit: 2, err: /missing NAME/ },
    { argv: ["user", "release", "erin", ...d], exit: 1, err: /"erin" is not a retired name/ },
    { argv: ["user", "release", "dave", ...d], exit: 0, out: /released dave/ },
    { argv: ["user", "list", "--retired", ...d], exit: 0, out: /^NAME\s+RETIRED\n$/ },
    { argv: ["user", "add", "dave", "--password-stdin", ...d], stdin: "new-dave-password", exit: 0 },
    { argv: ["user", "--help"], exit: 0, out: /release NAME/ },
  ];
  for (const step of steps) {
    it(`${step.argv.filter((a) => a !== dataDir && a !== "--data-dir").join(" ")} → exit ${step.exit}`, async () => {
      const result = await cli(step.argv, step.stdin);
      expect(result.exitCode).toBe(step.exit);
      if (step.out) expect(result.stdout).toMatch(step.out);
      if (step.err) expect(result.stderr).toMatch(step.err);
      expect(result.stderr).not.toMatch(/\n\s+at /);
    });
  }
  it("user list shows a pending registration as pending, a disabled user as disabled", async () => {
    const dir = makeTempDir("regauth-cli-pending-");
    const { openDatabase, databasePath } = await import("../../src/db/database.ts");
    const db = openDatabase(databasePath(dir));
    await register(
      db,
      new PasswordVerifier(),
      "approval",
      { username: "pat", password: "pat-password" },
      NOW,
    );
    createUser(db, { name: "dis", passwordHash: "x", isEnabled: false, nowUnix: NOW });
    db.close();
    const listed = await cli(["user", "list", "--data-dir", dir]);
    expect(listed.stdout).toMatch(/^dis\s+disabled/m);
    expect(listed.stdout).toMatch(/^pat\s+pending approval/m);
  });
});
