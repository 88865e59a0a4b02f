/**
 * A data directory regauth cannot write: a clear error at start and a non-zero exit. The tests
 * run as root, for whom chmod does not stop writes, so the binary runs as `nobody` (setpriv).
 */
import { describe, expect, it } from "bun:test";
import { chmodSync, chownSync, copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTempDir } from "../helpers.ts";
import { ensureBinary, freePort, run } from "./harness.ts";

const NOBODY = 65_534;
const isRoot = process.getuid?.() === 0;

/** The binary, a config with a free port, and a runner that drops to nobody when we are root. */
async function setup() {
  const dir = makeTempDir("regauth-ro-");
  chmodSync(dir, 0o755);
  const binary = join(dir, "regauth");
  copyFileSync(ensureBinary(), binary);
  chmodSync(binary, 0o755);
  const config = join(dir, "config.yml");
  writeFileSync(config, `server: {addr: "127.0.0.1:${await freePort()}"}\ntoken: {issuer: ro-test}\n`);
  chmodSync(config, 0o644);
  const dataDir = join(dir, "data");
  const asUnprivileged = (argv: string[]) =>
    isRoot ? ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", ...argv] : argv;
  const serve = (timeoutMs = 8000) =>
    run(asUnprivileged([binary, "serve", "--config", config, "--data-dir", dataDir]), { timeoutMs });
  return { dir, dataDir, binary, config, serve, asUnprivileged };
}

describe("a read-only data directory", () => {
  it("refuses to start when the directory is not writable", async () => {
    const { dataDir, serve } = await setup();
    mkdirSync(dataDir, { mode: 0o555 });
    chmodSync(dataDir, 0o555);
    const result = await serve();
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(`data directory ${dataDir} is not writable`);
    expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it("refuses to start when the database file is read-only, naming the database", async () => {
    const { dataDir, serve, binary, config, asUnprivileged } = await setup();
    mkdirSync(dataDir, { mode: 0o700 });
    if (isRoot) chownSync(dataDir, NOBODY, NOBODY);
    // A first run as that user creates the key and the database; then the database is made read-only.
    const add = await run(
      asUnprivileged([
        binary,
        "user",
        "add",
        "someone",
        "--password-stdin",
        "--config",
        config,
        "--data-dir",
        dataDir,
      ]),
      { stdin: "someone-pass" },
    );
    expect(add.exitCode).toBe(0);
    chmodSync(join(dataDir, "regauth.db"), 0o444);
    const result = await serve();
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain("regauth.db");
    expect(result.stderr).toMatch(/readonly|read-only|writable/i);
    // Commands that only read open the database read-only, so they still work (issue 9, item 5).
    for (const command of [
      ["user", "list"],
      ["perm", "list"],
      ["group", "list"],
    ]) {
      const listed = await run(
        asUnprivileged([binary, ...command, "--config", config, "--data-dir", dataDir]),
      );
      expect({ command, stderr: listed.stderr, exitCode: listed.exitCode }).toEqual({
        command,
        stderr: "",
        exitCode: 0,
      });
      if (command[0] === "user") expect(listed.stdout).toContain("someone");
    }
    const addOnReadOnly = await run(
      asUnprivileged([
        binary,
        "user",
        "add",
        "other",
        "--password-stdin",
        "--config",
        config,
        "--data-dir",
        dataDir,
      ]),
      { stdin: "other-password" },
    );
    expect(addOnReadOnly.exitCode).toBe(1);
    expect(addOnReadOnly.stderr).toContain("regauth user add");
    expect(addOnReadOnly.stderr).toContain("regauth.db");
  });
});
