/**
 * The embedded default: `regauth serve` with no config file makes its data directory and signing
 * key, prints the registry's auth block on first run, and a registry configured from that block
 * accepts its tokens.
 */
import { describe, expect, it } from "bun:test";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { hashPassword, makeTempDir } from "../helpers.ts";
import { isPortFree } from "./free-port.ts";
import {
  BINARY,
  dockerLogin,
  ensureBinary,
  makeOciImage,
  skopeoPull,
  skopeoPush,
  startRegauth,
  startRegistry,
} from "./harness.ts";

interface RegistryBlock {
  realm: string;
  service: string;
  issuer: string;
  rootcertbundle: string;
}

/** The `auth.token` mapping from what `regauth serve` or `regauth registry-config` printed. */
function parseRegistryBlock(output: string): RegistryBlock {
  const start = output.indexOf("auth:\n");
  expect(start).toBeGreaterThanOrEqual(0);
  const parsed = Bun.YAML.parse(output.slice(start)) as { auth: { token: RegistryBlock } };
  return parsed.auth.token;
}

function mode(path: string): string {
  return (statSync(path).mode & 0o777).toString(8);
}

/** The embedded default's address is fixed by design (issue 2: "starts on 127.0.0.1:5001"). */
const EMBEDDED_PORT = 5001;

const USERS = `
users:
  alice:
    password: "${hashPassword("alice-secret")}"
acl:
  - match: {account: alice}
    actions: ["*"]
`;

ensureBinary();
const embeddedPortFree = await isPortFree(EMBEDDED_PORT);
if (!embeddedPortFree)
  console.warn(
    `SKIPPED: 127.0.0.1:${EMBEDDED_PORT} is in use, so the no-config embedded default cannot start here; the other data-directory tests still run`,
  );

describe("regauth serve with no config file", () => {
  it.skipIf(!embeddedPortFree)(
    "creates ./regauth-data with a 0600 key and certificate, prints the registry block once, and that block works",
    async () => {
      const dir = makeTempDir("embedded-");
      const first = await startRegauth({ dir, dataDir: null });
      expect(first.url).toBe(`http://127.0.0.1:${EMBEDDED_PORT}`);
      const dataDir = join(dir, "regauth-data");
      expect(first.dataDir).toBe(dataDir);
      expect(mode(dataDir)).toBe("700");
      expect(mode(join(dataDir, "token.key"))).toBe("600");
      expect(mode(join(dataDir, "token.crt"))).toBe("600");
      expect(mode(join(dataDir, "refresh.key"))).toBe("600"); // docs/refresh-tokens.md
      await first.stdout.waitFor(/rootcertbundle: .*\n/);
      const block = parseRegistryBlock(first.stdout.text);
      expect(block).toEqual({
        realm: `http://127.0.0.1:${EMBEDDED_PORT}/auth`,
        service: "registry",
        issuer: "regauth",
        rootcertbundle: join(dataDir, "token-bundle.crt"),
      });
      // Issue 3's first run: the printed admin password logs in and pushes through a registry
      // configured from the printed block, with nothing else set up.
      const adminPassword = (await first.stdout.waitFor(/^password: (\S+)$/m))[1] as string;
      const firstRegistry = await startRegistry({ ...block, certificatePath: block.rootcertbundle });
      const login = await dockerLogin(firstRegistry.host, "admin", adminPassword);
      expect(login.stdout + login.stderr).toContain("Login Succeeded");
      const adminPush = await skopeoPush(
        makeOciImage(),
        `${firstRegistry.host}/team/app:v1`,
        `admin:${adminPassword}`,
      );
      expect(adminPush.exitCode).toBe(0);
      await first.stop();
      expect(await first.proc.exited).toBe(0);

      // Second start on the same directory: same key, nothing printed.
      const keyBefore = await Bun.file(join(dataDir, "token.key")).text();
      const second = await startRegauth({ dir, dataDir: null });
      await second.stop();
      expect(second.stdout.text).not.toContain("auth:");
      expect(await Bun.file(join(dataDir, "token.key")).text()).toBe(keyBefore);

      // The embedded default has no users yet, so give it one with a tiny config on the same data
      // directory and address; the registry is configured from the block printed above, verbatim.
      const withUser = await startRegauth({
        dir,
        dataDir: null,
        configYaml: `server: {addr: "127.0.0.1:${EMBEDDED_PORT}"}\ntoken: {issuer: regauth, services: [registry]}\n${USERS}`,
      });
      const registry = await startRegistry({ ...block, certificatePath: block.rootcertbundle });
      const push = await skopeoPush(makeOciImage(), `${registry.host}/alice/app:v1`, "alice:alice-secret");
      expect(push.stderr).toBe("");
      expect(push.exitCode).toBe(0);
      await withUser.stop();
    },
  );
});

describe("the data directory", () => {
  it("is $STATE_DIRECTORY under systemd, and a registry configured from the printed block accepts the tokens", async () => {
    const stateDirectory = join(makeTempDir("state-"), "regauth");
    const regauth = await startRegauth({
      dataDir: null,
      env: { STATE_DIRECTORY: stateDirectory },
      configYaml: `server: {addr: "127.0.0.1:{{PORT}}"}\ntoken: {issuer: regauth, services: [registry]}\n${USERS}`,
    });
    expect(regauth.dataDir).toBe(stateDirectory);
    expect(mode(join(stateDirectory, "token.key"))).toBe("600");
    await regauth.stdout.waitFor(/rootcertbundle: .*\n/);
    const block = parseRegistryBlock(regauth.stdout.text);
    expect(block.realm).toBe(`${regauth.url}/auth`);
    expect(block.rootcertbundle).toBe(join(stateDirectory, "token-bundle.crt"));
    const registry = await startRegistry({ ...block, certificatePath: block.rootcertbundle });
    const push = await skopeoPush(makeOciImage(), `${registry.host}/alice/app:v1`, "alice:alice-secret");
    expect(push.stderr).toBe("");
    expect(push.exitCode).toBe(0);
    const pull = await skopeoPull(`${registry.host}/alice/app:v1`, "alice:alice-secret");
    expect(pull.exitCode).toBe(0);
  });

  it("is --data-dir when given, even with $STATE_DIRECTORY set", async () => {
    const cwd = makeTempDir("cwd-");
    const chosen = join(makeTempDir("chosen-"), "nested", "data");
    const stateDirectory = join(makeTempDir("state-"), "unused");
    const result = await runIn(cwd, ["registry-config", "--data-dir", chosen], {
      STATE_DIRECTORY: stateDirectory,
    });
    expect(result.exitCode).toBe(0);
    expect(parseRegistryBlock(result.stdout).rootcertbundle).toBe(join(chosen, "token-bundle.crt"));
    expect(mode(join(chosen, "token.key"))).toBe("600");
    expect(existsSync(stateDirectory)).toBe(false);
    expect(existsSync(join(cwd, "regauth-data"))).toBe(false);
  });

  it("is the first of several $STATE_DIRECTORY paths, and ./regauth-data without one", async () => {
    const first = join(makeTempDir("state-"), "first");
    const second = join(makeTempDir("state-"), "second");
    const cwd = makeTempDir("cwd-");
    const fromState = await runIn(cwd, ["registry-config"], { STATE_DIRECTORY: `${first}:${second}` });
    expect(parseRegistryBlock(fromState.stdout).rootcertbundle).toBe(join(first, "token-bundle.crt"));
    expect(existsSync(second)).toBe(false);
    const fromCwd = await runIn(cwd, ["registry-config"], {});
    expect(parseRegistryBlock(fromCwd.stdout).rootcertbundle).toBe(
      join(cwd, "regauth-data", "token-bundle.crt"),
    );
  });

  it("must be writable: a clear error, not a stack trace", async () => {
    const file = join(makeTempDir("not-a-dir-"), "file");
    await Bun.write(file, "x");
    const result = await runIn(makeTempDir(), ["registry-config", "--data-dir", join(file, "data")], {});
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain("data_dir");
    expect(result.stderr).not.toMatch(/\bat \S+ \(/);
  });
});

/** Runs the binary in `cwd` with only PATH, HOME and `env`, so the caller's STATE_DIRECTORY does not leak in. */
async function runIn(cwd: string, args: string[], env: Record<string, string>) {
  const proc = Bun.spawn([BINARY, ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: cwd, ...env },
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
  });
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { stdout, stderr, exitCode };
}
