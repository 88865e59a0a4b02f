/**
 * Review (after issue 8 L4): root trusts a 0700 data directory of the service's user, and key
 * files are created O_EXCL|O_NOFOLLOW, but the database is opened through a symlink the
 * service user planted. `sudo regauth user add` then creates (or migrates) a SQLite file
 * anywhere root can write, mode 0644, holding the password hashes. FAILS on the current code.
 * Needs root (skipped otherwise).
 */
import { describe, expect, it } from "bun:test";
import { chmodSync, chownSync, existsSync, lchownSync, mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { cli } from "../accounts-helpers.ts";
import { makeTempDir } from "../helpers.ts";

const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;

describe("review: planted regauth.db symlink in the service user's data directory", () => {
  it.skipIf(!isRoot)("root's `user add` refuses to follow it and creates nothing at the target", async () => {
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
    const r = await cli(["user", "add", "evil", "--password-stdin", "--data-dir", dataDir], "evil-password-1\n");
    expect({ exitCode: r.exitCode, createdAtTarget: existsSync(target) }).toEqual({
      exitCode: 1,
      createdAtTarget: false,
    });
  });
});
