/**
 * A full disk (issue 9, items 4 and 5): a small tmpfs mounted by the test. Needs root and
 * permission to mount (a container without CAP_SYS_ADMIN has neither): skipped otherwise, with
 * the reason printed.
 */
import { afterAll, describe, expect, it } from "bun:test";
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTempDir } from "../helpers.ts";
import { ensureBinary, run, startRegauth } from "./harness.ts";

const mountPoint = makeTempDir("regauth-tmpfs-");
const mounted =
  process.getuid?.() === 0 &&
  Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", mountPoint]).exitCode === 0;
if (!mounted)
  console.warn("full-disk tests skipped: cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)");
afterAll(() => {
  if (mounted) Bun.spawnSync(["umount", "-l", mountPoint]);
});

/** Fills the file system with one file until ENOSPC; returns its path (delete it to free space). */
function fillDisk(dir: string): string {
  const filler = join(dir, "filler");
  Bun.spawnSync(["dd", "if=/dev/zero", `of=${filler}`, "bs=64k"], { stderr: "ignore" });
  return filler;
}

describe.skipIf(!mounted)("a full disk", () => {
  it("a first run says the disk is full and leaves no 0-byte token.key, then starts once space is freed", async () => {
    const dataDir = join(mountPoint, "first-run");
    mkdirSync(dataDir, { mode: 0o700 });
    const filler = fillDisk(mountPoint);
    const result = await run([ensureBinary(), "serve", "--data-dir", dataDir], { timeoutMs: 8000 });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain("the disk is full");
    expect(result.stderr).not.toMatch(/\n\s+at /);
    for (const file of readdirSync(dataDir))
      expect({ file, size: statSync(join(dataDir, file)).size }).not.toEqual({ file, size: 0 });
    expect(existsSync(join(dataDir, "token.key"))).toBe(false);
    rmSync(filler);
    const regauth = await startRegauth({ dataDir });
    await regauth.stdout.waitFor(/password: \S+/);
    await regauth.stop();
    rmSync(dataDir, { recursive: true });
  }, 30_000);

  it("registrations answer 503 and recover; the CLI names command, file and the full disk; lists still work", async () => {
    const dataDir = join(mountPoint, "running");
    mkdirSync(dataDir, { mode: 0o700 });
    const regauth = await startRegauth({
      dataDir,
      configYaml: `server: {addr: "127.0.0.1:{{PORT}}"}\ntoken: {issuer: full-test}\nregistration: {mode: open}\n`,
    });
    // Fill the WAL's headroom too: many writes before, so the next ones need new pages.
    const filler = fillDisk(mountPoint);
    const register = (name: string) =>
      fetch(`${regauth.url}/auth?service=registry`, {
        headers: { authorization: `Basic ${btoa(`${name}:${name}-password`)}` },
      });
    let status = 0;
    for (let i = 0; i < 20 && status !== 503; i++) status = (await register(`full${i}`)).status;
    expect(status).toBe(503);
    const cli = await run(
      [ensureBinary(), "user", "add", "cliuser", "--password-stdin", "--data-dir", dataDir],
      {
        stdin: "cliuser-password",
      },
    );
    if (cli.exitCode !== 0) {
      expect(cli.stderr).toContain("regauth user add");
      expect(cli.stderr).toContain("the disk is full");
      expect(cli.stderr).toContain(join(dataDir, "regauth.db"));
    }
    const list = await run([ensureBinary(), "user", "list", "--data-dir", dataDir]);
    expect(list.stderr).toBe("");
    expect(list.exitCode).toBe(0);
    expect(list.stdout).toContain("admin");
    rmSync(filler);
    expect((await register("afterwards")).status).toBe(200);
    expect(regauth.stderr.text).not.toMatch(/\n\s+at /);
    await regauth.stop();
  }, 30_000);
});
