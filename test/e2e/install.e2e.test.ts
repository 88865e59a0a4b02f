/**
 * scripts/install.sh into a temporary root (DESTDIR): the binary, the sample config (which
 * check-config accepts) and the unit; idempotent; uninstall keeps config and data unless --purge.
 */
import { describe, expect, it } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { makeTempDir } from "../helpers.ts";
import { ensureBinary, REPO_ROOT, run } from "./harness.ts";

ensureBinary();
const SCRIPT = join(REPO_ROOT, "scripts/install.sh");

function installScript(destdir: string, args: string[] = [], env: Record<string, string> = {}) {
  return run(["bash", SCRIPT, ...args], { env: { DESTDIR: destdir, PREFIX: "/usr/local", ...env } });
}

/** Every file under `root` with its mode and content hash, for before/after comparisons. */
function snapshot(root: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      const mode = (statSync(path).mode & 0o7777).toString(8);
      if (entry.isDirectory()) {
        files[`${relative(root, path)}/`] = mode;
        walk(path);
      } else {
        files[relative(root, path)] =
          `${mode} ${createHash("sha256").update(readFileSync(path)).digest("hex")}`;
      }
    }
  };
  walk(root);
  return files;
}

const mode = (path: string) => (statSync(path).mode & 0o777).toString(8);

describe("scripts/install.sh", () => {
  it("installs the binary, the sample config and the unit into DESTDIR", async () => {
    const root = makeTempDir("install-root-");
    const result = await installScript(root);
    expect(result.exitCode, result.stderr).toBe(0);
    const binary = join(root, "usr/local/bin/regauth");
    expect(mode(binary)).toBe("755");
    expect((await run([binary, "--version"])).stdout).toMatch(/^regauth \d+\.\d+\.\d+/);
    expect(mode(join(root, "etc/regauth"))).toBe("755");
    expect(mode(join(root, "etc/regauth/config.yml"))).toBe("644");
    expect(readFileSync(join(root, "etc/regauth/config.yml"), "utf8")).toBe(
      readFileSync(join(REPO_ROOT, "docs/config.sample.yml"), "utf8"),
    );
    expect(existsSync(join(root, "usr/local/share/regauth/config.sample.yml"))).toBe(true);
    const unit = join(root, "etc/systemd/system/regauth.service");
    expect(mode(unit)).toBe("644");
    expect(readFileSync(unit, "utf8")).toBe(readFileSync(join(REPO_ROOT, "systemd/regauth.service"), "utf8"));
    expect(result.stdout).toContain("systemctl enable --now regauth");
  });

  it("installs a sample config that `regauth check-config` accepts", async () => {
    const root = makeTempDir("install-root-");
    expect((await installScript(root)).exitCode).toBe(0);
    const check = await run([
      join(root, "usr/local/bin/regauth"),
      "check-config",
      join(root, "etc/regauth/config.yml"),
    ]);
    expect(check.stdout).toContain(": ok");
    expect(check.exitCode).toBe(0);
  });

  it("follows PREFIX in the unit's ExecStart", async () => {
    const root = makeTempDir("install-root-");
    expect((await installScript(root, [], { PREFIX: "/usr" })).exitCode).toBe(0);
    const unit = readFileSync(join(root, "etc/systemd/system/regauth.service"), "utf8");
    expect(unit).toContain("ExecStart=/usr/bin/regauth serve --config ${CONFIGURATION_DIRECTORY}/config.yml");
    expect(unit).not.toContain("/usr/local/bin");
    expect(existsSync(join(root, "usr/bin/regauth"))).toBe(true);
  });

  it("is idempotent and never overwrites an existing config", async () => {
    const root = makeTempDir("install-root-");
    expect((await installScript(root)).exitCode).toBe(0);
    const first = snapshot(root);
    expect((await installScript(root)).exitCode).toBe(0);
    expect(snapshot(root)).toEqual(first);

    const config = join(root, "etc/regauth/config.yml");
    writeFileSync(config, "server: {addr: ':5001'}\ntoken: {issuer: mine}\n");
    const again = await installScript(root);
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toContain("kept /etc/regauth/config.yml");
    expect(readFileSync(config, "utf8")).toBe("server: {addr: ':5001'}\ntoken: {issuer: mine}\n");
  });

  it("--uninstall keeps the config and the data; --uninstall --purge removes them", async () => {
    const root = makeTempDir("install-root-");
    expect((await installScript(root)).exitCode).toBe(0);
    const data = join(root, "var/lib/private/regauth");
    mkdirSync(data, { recursive: true });
    writeFileSync(join(data, "regauth.db"), "accounts");

    const uninstall = await installScript(root, ["--uninstall"]);
    expect(uninstall.exitCode, uninstall.stderr).toBe(0);
    expect(existsSync(join(root, "usr/local/bin/regauth"))).toBe(false);
    expect(existsSync(join(root, "etc/systemd/system/regauth.service"))).toBe(false);
    expect(existsSync(join(root, "usr/local/share/regauth"))).toBe(false);
    expect(readFileSync(join(data, "regauth.db"), "utf8")).toBe("accounts");
    expect(existsSync(join(root, "etc/regauth/config.yml"))).toBe(true);
    expect(uninstall.stdout).toContain("kept /etc/regauth");
    expect((await installScript(root, ["--uninstall"])).exitCode).toBe(0); // twice is fine

    const purge = await installScript(root, ["--uninstall", "--purge"]);
    expect(purge.exitCode).toBe(0);
    expect(existsSync(data)).toBe(false);
    expect(existsSync(join(root, "etc/regauth"))).toBe(false);
  });

  it.each([[["--bogus"]], [["--purge"]]])("refuses %p with exit 2 and changes nothing", async (args) => {
    const root = makeTempDir("install-root-");
    const result = await installScript(root, args);
    expect(result.exitCode).toBe(2);
    expect(readdirSync(root)).toEqual([]);
  });
});
