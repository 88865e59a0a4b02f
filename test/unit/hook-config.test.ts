import { describe, expect, it } from "bun:test";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfigFile, prepareConfig } from "../../src/config/load.ts";
import { ConfigError } from "../../src/errors.ts";
import { makeTempDir } from "../helpers.ts";
import { writeHook } from "../hook-fixtures.ts";

async function load(sections: Record<string, unknown>, env: Record<string, string> = {}) {
  return prepareConfig({ token: { issuer: "t" }, ...sections }, "test config", {
    dataDir: makeTempDir(),
    env,
  });
}

async function problemsOf(sections: Record<string, unknown>, env: Record<string, string> = {}) {
  try {
    await load(sections, env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe("ext_auth / ext_authz config", () => {
  it("accepts docker_auth's keys and fills regauth's defaults", async () => {
    const hook = writeHook("exit 0");
    const { config } = await load({
      ext_auth: { command: hook },
      ext_authz: { command: hook, args: ["-v"] },
    });
    expect(config.ext_auth).toEqual({ command: hook, args: [], timeout_seconds: 5, cache_ttl_seconds: 10 });
    expect(config.ext_authz).toEqual({
      command: hook,
      args: ["-v"],
      timeout_seconds: 5,
      cache_ttl_seconds: 0,
    });
  });

  it("reports a missing program at its key path", async () => {
    expect(await problemsOf({ ext_auth: { command: "/nonexistent/hook.sh" } })).toEqual([
      { path: "ext_auth.command", message: "/nonexistent/hook.sh does not exist" },
    ]);
  });

  it("reports a program that is not executable", async () => {
    const hook = writeHook("exit 0");
    chmodSync(hook, 0o644);
    const problems = await problemsOf({ ext_authz: { command: hook } });
    expect(problems).toEqual([
      { path: "ext_authz.command", message: `${hook} is not executable (chmod +x)` },
    ]);
  });

  it("reports a directory, and a program anyone may rewrite", async () => {
    const dir = makeTempDir();
    const hook = writeHook("exit 0");
    chmodSync(hook, 0o777);
    const problems = await problemsOf({ ext_auth: { command: dir }, ext_authz: { command: hook } });
    expect(problems).toEqual([
      { path: "ext_auth.command", message: `${dir} is not a regular file` },
      { path: "ext_authz.command", message: `${hook} is writable by every user (chmod o-w)` },
    ]);
  });

  it("resolves a relative path from the config file's directory, not the working directory", async () => {
    const dir = makeTempDir();
    mkdirSync(join(dir, "hooks"));
    const hook = writeHook("exit 0", "auth.sh", join(dir, "hooks"));
    const configPath = join(dir, "auth_config.yml");
    writeFileSync(
      configPath,
      "token: {issuer: t}\next_auth: {command: hooks/auth.sh}\next_authz:\n  command: ./hooks/auth.sh\n",
    );
    const loaded = await loadConfigFile(configPath, { dataDir: join(dir, "data"), env: {} });
    expect(loaded.config.ext_auth?.command).toBe(hook);
    expect(loaded.config.ext_authz?.command).toBe(hook);
    expect(process.cwd()).not.toBe(dir);
  });

  it("reports a relative path that does not exist next to the config file with its absolute form", async () => {
    const dir = makeTempDir();
    const configPath = join(dir, "auth_config.yml");
    writeFileSync(configPath, "token: {issuer: t}\next_auth: {command: ./missing.sh}\n");
    await expect(loadConfigFile(configPath, { dataDir: join(dir, "data"), env: {} })).rejects.toThrow(
      `ext_auth.command: ${join(dir, "missing.sh")} does not exist`,
    );
  });

  it("looks a bare name up in PATH, as docker_auth's exec.LookPath does", async () => {
    const dir = makeTempDir();
    const hook = writeHook("exit 0", "my-hook", dir);
    const { config } = await load({ ext_auth: { command: "my-hook" } }, { PATH: `/nonexistent:${dir}` });
    expect(config.ext_auth?.command).toBe(hook);
    expect(await problemsOf({ ext_auth: { command: "no-such-hook-anywhere" } }, { PATH: dir })).toEqual([
      { path: "ext_auth.command", message: "no-such-hook-anywhere not found in PATH; give an absolute path" },
    ]);
  });

  it.each([
    [{ command: "" }, "ext_auth.command"],
    [{ args: [] }, "ext_auth.command"],
    [{ command: "/bin/true", shell: true }, "ext_auth.shell"],
    [{ command: "/bin/true", args: "-v" }, "ext_auth.args"],
    [{ command: "/bin/true", timeout_seconds: 0 }, "ext_auth.timeout_seconds"],
    [{ command: "/bin/true", timeout_seconds: 3600 }, "ext_auth.timeout_seconds"],
    [{ command: "/bin/true", cache_ttl_seconds: -1 }, "ext_auth.cache_ttl_seconds"],
  ])("rejects %j at %s", async (section, path) => {
    const problems = await problemsOf({ ext_auth: section });
    expect(problems.map((p) => p.path)).toContain(path);
  });
});
