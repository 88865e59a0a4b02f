/**
 * Links planted in the data directory (review finding 10, after issue 8 L4), against the compiled
 * binary: the database, its -wal and -shm, and the key files must be regular files of the
 * directory's owner (or ours). Root's `user add` in the service user's 0700 directory followed a
 * planted regauth.db link and created a 0644 database with the password hashes where the service
 * user pointed it.
 */
import { describe, expect, it } from "bun:test";
import {
  chmodSync,
  chownSync,
  existsSync,
  lchownSync,
  mkdirSync,
  renameSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { makeTempDir } from "../helpers.ts";
import { ensureBinary, run, startRegauth } from "./harness.ts";

const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;

function userAdd(dataDir: string, name = "evil") {
  return run([ensureBinary(), "user", "add", name, "--password-stdin", "--data-dir", dataDir], {
    stdin: `${name}-password-1\n`,
  });
}

describe("links planted in the data directory (review finding 10)", () => {
  it.skipIf(!isRoot)(
    "root's `user add` refuses to follow a planted regauth.db and creates nothing at the target",
    async () => {
      const base = makeTempDir("review-dd-");
      const rootOnly = join(base, "root-only");
      mkdirSync(rootOnly, { mode: 0o700 }); // a directory only root may write
      const dataDir = join(base, "state");
      mkdirSync(dataDir, { mode: 0o700 });
      const target = join(rootOnly, "planted.db");
      symlinkSync(target, join(dataDir, "regauth.db"));
      lchownSync(join(dataDir, "regauth.db"), NOBODY, NOBODY);
      chownSync(dataDir, NOBODY, NOBODY); // the service's StateDirectory
      chmodSync(dataDir, 0o700);
      const r = await userAdd(dataDir);
      expect({ exitCode: r.exitCode, createdAtTarget: existsSync(target) }).toEqual({
        exitCode: 1,
        createdAtTarget: false,
      });
      expect(r.stderr).toContain(`${join(dataDir, "regauth.db")} is a symbolic link`);
    },
  );

  it.skipIf(!isRoot)("as root: refuses a regauth.db that belongs to a third user", async () => {
    const dataDir = join(makeTempDir("review-dd-"), "state");
    mkdirSync(dataDir, { mode: 0o700 });
    writeFileSync(join(dataDir, "regauth.db"), "");
    chownSync(join(dataDir, "regauth.db"), 12345, 12345);
    chownSync(dataDir, NOBODY, NOBODY);
    const r = await userAdd(dataDir);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("belongs to user 12345");
  });

  it("refuses a regauth.db symlink in one's own directory too, naming it", async () => {
    const base = makeTempDir("dd-links-");
    const dataDir = join(base, "data");
    mkdirSync(dataDir, { mode: 0o700 });
    const target = join(base, "elsewhere.db");
    symlinkSync(target, join(dataDir, "regauth.db"));
    const r = await userAdd(dataDir);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("regauth.db is a symbolic link");
    expect(existsSync(target)).toBe(false);
  });

  it("serve refuses a planted -wal link and a planted token.key link, naming each", async () => {
    const regauth = await startRegauth();
    await regauth.stop();
    const dataDir = regauth.dataDir;
    const outside = makeTempDir("dd-outside-");
    symlinkSync(join(outside, "wal"), join(dataDir, "regauth.db-wal"));
    const wal = await run([ensureBinary(), "serve", "--data-dir", dataDir], { timeoutMs: 8000 });
    expect(wal.exitCode).toBe(1);
    expect(wal.stderr).toContain("regauth.db-wal is a symbolic link");
    expect(existsSync(join(outside, "wal"))).toBe(false);
    Bun.spawnSync(["rm", join(dataDir, "regauth.db-wal")]);
    // The real key, moved out and linked back: still refused (whoever can write the directory
    // could point the link at any key the server's user can read).
    renameSync(join(dataDir, "token.key"), join(outside, "token.key"));
    symlinkSync(join(outside, "token.key"), join(dataDir, "token.key"));
    const key = await run([ensureBinary(), "serve", "--data-dir", dataDir], { timeoutMs: 8000 });
    expect(key.exitCode).toBe(1);
    expect(key.stderr).toContain("token.key is a symbolic link");
  });
});
