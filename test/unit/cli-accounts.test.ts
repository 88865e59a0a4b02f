import { describe, expect, it } from "bun:test";
import { chownSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { cli } from "../accounts-helpers.ts";
import { makeTempDir } from "../helpers.ts";

describe("regauth user / perm / group / admin on the command line", () => {
  const dataDir = makeTempDir("regauth-cli-");
  const d = ["--data-dir", dataDir];
  const steps: { argv: string[]; stdin?: string; exit: number; out?: RegExp; err?: RegExp }[] = [
    { argv: ["user", "--help"], exit: 0, out: /add NAME/ },
    { argv: ["perm", "--help"], exit: 0, out: /grant GRANTEE PATTERN LEVEL/ },
    { argv: ["user", ...d], exit: 2, err: /which subcommand/ },
    { argv: ["user", "frobnicate", ...d], exit: 2, err: /unknown subcommand/ },
    { argv: ["user", "add", ...d], exit: 2, err: /missing NAME/ },
    {
      argv: ["user", "add", "alice", "--password", "secret", ...d],
      exit: 2,
      err: /unknown option --password/,
    },
    { argv: ["user", "add", "alice", ...d], exit: 2, err: /--password-stdin/ },
    {
      argv: ["user", "add", "Alice", "--password-stdin", ...d],
      stdin: "alice-pass",
      exit: 1,
      err: /invalid user name "Alice"/,
    },
    {
      argv: ["user", "add", "x'); DROP TABLE users;--", "--password-stdin", ...d],
      stdin: "alice-pass",
      exit: 1,
      err: /invalid user name/,
    },
    { argv: ["user", "add", "alice", "--password-stdin", ...d], stdin: "short", exit: 1, err: /at least 8/ },
    {
      argv: ["user", "add", "alice", "--password-stdin", ...d],
      stdin: "alice-pass\n",
      exit: 0,
      out: /created user alice/,
    },
    {
      argv: ["user", "add", "alice", "--password-stdin", ...d],
      stdin: "alice-pass",
      exit: 1,
      err: /already exists/,
    },
    {
      argv: ["user", "passwd", "bob", "--password-stdin", ...d],
      stdin: "bob-password",
      exit: 1,
      err: /no user "bob"/,
    },
    { argv: ["user", "disable", "admin'--", ...d], exit: 1, err: /no user "admin'--"/ },
    { argv: ["perm", "grant", "alice", "team/*", "superuser", ...d], exit: 2, err: /read, write or admin/ },
    { argv: ["perm", "grant", "alice", "Team/*", "read", ...d], exit: 1, err: /invalid repository pattern/ },
    {
      argv: ["perm", "grant", "alice", "x'); DROP TABLE permissions;--", "read", ...d],
      exit: 1,
      err: /invalid repository pattern/,
    },
    { argv: ["perm", "grant", "*", "pub/*", "write", ...d], exit: 1, err: /read only/ },
    { argv: ["perm", "grant", "@devs", "team/*", "read", ...d], exit: 1, err: /no group "devs"/ },
    { argv: ["group", "create", "devs", ...d], exit: 0 },
    { argv: ["group", "create", "dev's", ...d], exit: 1, err: /invalid group name/ },
    { argv: ["group", "add-member", "devs", "alice", ...d], exit: 0 },
    { argv: ["perm", "grant", "@devs", "team/*", "read", ...d], exit: 0 },
    { argv: ["perm", "grant", "alice", "team/*", "write", ...d], exit: 0 },
    { argv: ["perm", "grant", "*", "pub/*", "read", ...d], exit: 0 },
    {
      argv: ["perm", "list", ...d],
      exit: 0,
      out: /\*\s+pub\/\*\s+read[\s\S]*@devs\s+team\/\*\s+read[\s\S]*alice\s+team\/\*\s+write/,
    },
    { argv: ["group", "list", ...d], exit: 0, out: /devs\s+alice/ },
    { argv: ["user", "list", ...d], exit: 0, out: /alice\s+enabled\s+-/ },
    { argv: ["perm", "revoke", "alice", "team/*", ...d], exit: 0 },
    { argv: ["perm", "revoke", "alice", "team/*", ...d], exit: 1, err: /has no grant/ },
    { argv: ["user", "disable", "alice", ...d], exit: 0 },
    { argv: ["user", "list", ...d], exit: 0, out: /alice\s+disabled/ },
    { argv: ["admin", "reset-password", ...d], exit: 0, out: /^password: [a-zA-Z2-9]{24}$/m },
    { argv: ["user", "list", ...d], exit: 0, out: /admin\s+enabled\s+admin/ },
    { argv: ["admin", ...d], exit: 2, err: /reset-password/ },
    { argv: ["user", "promote", "alice", ...d], exit: 0, out: /now an administrator/ },
    { argv: ["user", "list", ...d], exit: 0, out: /alice\s+disabled\s+admin/ },
    { argv: ["user", "demote", "alice", ...d], exit: 0 },
    { argv: ["user", "promote", "nobody", ...d], exit: 1, err: /no user "nobody"/ },
    { argv: ["user", "rm", "alice", ...d], exit: 0 },
    { argv: ["group", "list", ...d], exit: 0, out: /devs\s+-/ },
  ];
  for (const step of steps) {
    it(`${step.argv.filter((a) => a !== dataDir && a !== "--data-dir").join(" ")} → exit ${step.exit}`, async () => {
      const result = await cli(step.argv, step.stdin);
      expect(result.exitCode).toBe(step.exit);
      if (step.out) expect(result.stdout).toMatch(step.out);
      if (step.err) expect(result.stderr).toMatch(step.err);
      expect(result.stderr).not.toMatch(/\n\s+at /); // never a stack trace
    });
  }
});

describe("the password prompt on a terminal", () => {
  // util-linux `script` gives the CLI a pseudo-terminal; the lines are typed after the prompts.
  const hasScript = Bun.which("script") !== null;
  it.skipIf(!hasScript)("asks twice without echo and refuses a mismatch", async () => {
    const dataDir = makeTempDir("regauth-tty-");
    const main = `${import.meta.dir}/../../src/main.ts`;
    const typed = async (lines: string[]) => {
      const proc = Bun.spawn(
        ["script", "-qec", `bun ${main} user add tty --data-dir ${dataDir}`, "/dev/null"],
        {
          stdin: "pipe",
          stdout: "pipe",
          stderr: "pipe",
        },
      );
      for (const line of lines) {
        await Bun.sleep(700);
        proc.stdin.write(`${line}\n`);
        proc.stdin.flush();
      }
      await Bun.sleep(500);
      proc.stdin.end();
      const [stdout, exitCode] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
      return { stdout, exitCode };
    };
    const mismatch = await typed(["first-password", "second-password"]);
    expect(mismatch.stdout).toContain("passwords differ");
    expect(mismatch.stdout).not.toContain("first-password"); // not echoed
    const ok = await typed(["tty-password", "tty-password"]);
    expect(ok.stdout).toContain("created user tty");
    expect(ok.stdout).not.toContain("tty-password");
    expect((await cli(["user", "list", "--data-dir", dataDir])).stdout).toMatch(/^tty\s+enabled/m);
  });
});

describe("run as root on a server's data directory", () => {
  const isRoot = process.getuid?.() === 0;
  it.skipIf(!isRoot)(
    "creates the database for the directory's owner, so it stays writable for the server",
    async () => {
      const dataDir = join(makeTempDir(), "data");
      mkdirSync(dataDir, { mode: 0o700 });
      const nobody = 65534;
      chownSync(dataDir, nobody, nobody);
      const added = await cli(
        ["user", "add", "alice", "--password-stdin", "--data-dir", dataDir],
        "alice-password\n",
      );
      expect(added.exitCode).toBe(0);
      for (const name of readdirSync(dataDir)) expect(statSync(join(dataDir, name)).uid).toBe(nobody);
      expect(statSync(join(dataDir, "regauth.db")).mode & 0o777).toBe(0o600);
      const listed = await cli(["user", "list", "--data-dir", dataDir]);
      expect(listed.stdout).toContain("alice");
    },
  );
});
