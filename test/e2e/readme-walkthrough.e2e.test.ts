/**
 * README "From download to `docker login`": regauth on its embedded default, a registry set up
 * only by the README's `-e REGISTRY_AUTH...` settings (read from the README itself, so the two
 * cannot drift apart), and `docker login` as admin with the password printed on the first run.
 * Debian's docker-registry stands in for the registry:2 container (the same distribution code
 * reads the same environment variables); --addr stands in for a free port 5001.
 */
import { describe, expect, it } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTempDir } from "../helpers.ts";
import { dockerLogin, freePort, Output, REPO_ROOT, startRegauth, waitForHttp } from "./harness.ts";

const readme = readFileSync(join(REPO_ROOT, "README.md"), "utf8");
const walkthrough = readme.slice(readme.indexOf("## From download to `docker login`"));
const section = walkthrough.slice(0, walkthrough.indexOf("\n## ", 1));

describe("the README walk-through", () => {
  it("has at most five commands", () => {
    const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? "";
    const commands = block
      .replace(/\\\n/g, " ")
      .split("\n")
      .filter((line) => line.trim() !== "" && !line.trim().startsWith("#"));
    expect(commands.length).toBeGreaterThan(0);
    expect(commands.length).toBeLessThanOrEqual(5);
    expect(commands.at(-1)).toStartWith("docker login");
  });

  it("ends with a working docker login", async () => {
    const port = await freePort();
    const regauth = await startRegauth({ dataDir: null, extraArgs: ["--addr", `127.0.0.1:${port}`] });
    const password = (await regauth.stdout.waitFor(/^password: (\S+)$/m))[1] as string;

    const settings = [...section.matchAll(/-e (REGISTRY_[A-Z_]+)=(\S+)/g)].map(
      ([, name, value]) => [name as string, value as string] as const,
    );
    expect(settings.map(([name]) => name).sort()).toEqual([
      "REGISTRY_AUTH",
      "REGISTRY_AUTH_TOKEN_ISSUER",
      "REGISTRY_AUTH_TOKEN_REALM",
      "REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE",
      "REGISTRY_AUTH_TOKEN_SERVICE",
    ]);
    // The README's -v mount: the bundle, the file `regauth key rotate` rewrites (token.crt keeps
    // only the first key's certificate, so a registry trusting it refuses tokens after a rotation).
    const mount = /-v "\$PWD\/(\S+?):(\S+?):ro"/.exec(section);
    expect(mount?.[1]).toBe("regauth-data/token-bundle.crt");
    const [, source, target] = mount as RegExpExecArray;
    // The README's paths and port, as they are on this machine.
    const env = Object.fromEntries(
      settings.map(([name, value]) => [
        name,
        value === target
          ? join(regauth.dir, source as string)
          : value.replace("127.0.0.1:5001", `127.0.0.1:${port}`),
      ]),
    );
    expect(env.REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE).toBe(join(regauth.dir, "regauth-data/token-bundle.crt"));

    const dir = makeTempDir("walkthrough-registry-");
    const registryPort = await freePort();
    const configPath = join(dir, "config.yml");
    // Debian's default registry config has no auth section; the environment adds it.
    writeFileSync(
      configPath,
      `version: 0.1\nstorage: {filesystem: {rootdirectory: ${join(dir, "storage")}}}\nhttp: {addr: "127.0.0.1:${registryPort}"}\n`,
    );
    const registry = Bun.spawn(["docker-registry", "serve", configPath], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
      stdin: "ignore",
      stdout: "ignore",
      stderr: "pipe",
    });
    const log = new Output(registry.stderr);
    try {
      await waitForHttp(`http://127.0.0.1:${registryPort}/v2/`);
      const login = await dockerLogin(`127.0.0.1:${registryPort}`, "admin", password);
      expect(login.stdout + login.stderr, log.text).toContain("Login Succeeded");
    } finally {
      registry.kill("SIGKILL");
      await registry.exited;
    }
  });
});
