/** src/ops/backup.ts: what a backup copies, and the targets and data directories it refuses. */
import { Database } from "bun:sqlite";
import { describe, expect, it } from "bun:test";
import { existsSync, mkdirSync, readdirSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BackupError, backupDataDir } from "../../src/ops/backup.ts";
import { makeTempDir } from "../helpers.ts";

function dataDir(): { dir: string; db: Database } {
  const dir = join(makeTempDir(), "data");
  mkdirSync(dir, { mode: 0o700 });
  const db = new Database(join(dir, "regauth.db"));
  db.run("PRAGMA journal_mode = WAL");
  db.run("CREATE TABLE users (name TEXT)");
  db.run("INSERT INTO users VALUES ('alice')");
  for (const name of ["token.key", "token.crt", "refresh.key"]) writeFileSync(join(dir, name), `${name}\n`);
  writeFileSync(join(dir, "regauth.db.before-reinitialize-1700000000"), "");
  writeFileSync(join(dir, ".token.key.abc123.tmp"), "half");
  mkdirSync(join(dir, "keys"));
  writeFileSync(join(dir, "keys", "next.key"), "next\n");
  return { dir, db };
}

describe("backupDataDir", () => {
  it("copies the database through SQLite and every key file, 0600 in 0700, without leftovers", () => {
    const { dir, db } = dataDir();
    const target = join(makeTempDir(), "backup");
    const result = backupDataDir(dir, db, target);
    expect(result.files).toEqual(["regauth.db", "keys/next.key", "refresh.key", "token.crt", "token.key"]);
    expect(readdirSync(target).sort()).toEqual([
      "keys",
      "refresh.key",
      "regauth.db",
      "token.crt",
      "token.key",
    ]);
    expect(statSync(target).mode & 0o777).toBe(0o700);
    expect(statSync(join(target, "keys")).mode & 0o777).toBe(0o700);
    for (const file of result.files) expect(statSync(join(target, file)).mode & 0o777).toBe(0o600);
    const copy = new Database(join(target, "regauth.db"), { readonly: true });
    expect(copy.query("SELECT name FROM users").values()).toEqual([["alice"]]);
    copy.close();
  });

  it("accepts an existing empty directory", () => {
    const { dir, db } = dataDir();
    const target = makeTempDir();
    expect(backupDataDir(dir, db, target).files).toContain("token.key");
  });

  const badTargets: [string, (base: string) => string, RegExp][] = [
    [
      "a directory that is not empty",
      (base) => {
        writeFileSync(join(base, "x"), "");
        return base;
      },
      /not empty/,
    ],
    [
      "a file",
      (base) => {
        writeFileSync(join(base, "f"), "");
        return join(base, "f");
      },
      /not a directory/,
    ],
    [
      "a symbolic link to an empty directory",
      (base) => {
        mkdirSync(join(base, "real"));
        symlinkSync(join(base, "real"), join(base, "link"));
        return join(base, "link");
      },
      /symbolic link/,
    ],
  ];
  for (const [name, make, message] of badTargets) {
    it(`refuses ${name}`, () => {
      const { dir, db } = dataDir();
      const target = make(makeTempDir());
      expect(() => backupDataDir(dir, db, target)).toThrow(message);
      expect(() => backupDataDir(dir, db, target)).toThrow(BackupError);
    });
  }

  it("refuses a data directory holding a symbolic link, and removes the partial copy", () => {
    const { dir, db } = dataDir();
    symlinkSync("/etc/passwd", join(dir, "planted.key"));
    const target = join(makeTempDir(), "backup");
    expect(() => backupDataDir(dir, db, target)).toThrow(/symbolic link/);
    expect(existsSync(target)).toBe(false);
  });
});
