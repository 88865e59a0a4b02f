/**
 * issue 12 item 7: `serve --addr HOST:PORT` and REGAUTH_ADDR (flag > env > config file > default),
 * a clear error before anything is created when the address cannot be bound, and one log line on
 * every start that says how to print the registry's auth block.
 */
import { describe, expect, it } from "bun:test";
import { chmodSync, existsSync, readdirSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { makeTempDir } from "../helpers.ts";
import { BINARY, ensureBinary, freePort, openssl, run, startRegauth } from "./harness.ts";

ensureBinary();

/** Holds 127.0.0.1:PORT like another program would. */
async function occupyPort(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  return { port: typeof address === "object" && address ? address.port : 0, server };
}

/** The command from the start line `msg="print the registry's auth block with" command="..."`. */
function registryConfigCommand(stderr: string): string[] {
  const match = /msg="to print the registry's auth block, run" command=("(?:[^"\\]|\\.)*"|\S+)/.exec(stderr);
  expect(match, stderr).not.toBeNull();
  const raw = match?.[1] ?? "";
  const command = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
  return command.split(" ");
}

describe("serve --addr and REGAUTH_ADDR", () => {
  it("--addr listens there with no config file, and the start line prints a registry-config that agrees", async () => {
    const port = await freePort();
    const regauth = await startRegauth({ extraArgs: ["--addr", `127.0.0.1:${port}`] });
    expect(regauth.url).toBe(`http://127.0.0.1:${port}`);
    const [program, ...args] = registryConfigCommand(regauth.stderr.text);
    expect(program).toBe("regauth");
    expect(args).toEqual(["registry-config", "--data-dir", regauth.dataDir, "--addr", `127.0.0.1:${port}`]);
    const printed = await run([BINARY, ...args], { env: { REGAUTH_ADDR: "" } });
    expect(printed.exitCode, printed.stderr).toBe(0);
    expect(printed.stdout).toContain(`realm: http://127.0.0.1:${port}/auth`);
    expect(printed.stdout).toContain(`rootcertbundle: ${join(regauth.dataDir, "token-bundle.crt")}`);
  });

  it("logs the line on every start, not only the first, with --config when a file is used", async () => {
    const dir = makeTempDir("addr-restart-");
    const config = "server: {addr: '127.0.0.1:{{PORT}}'}\ntoken: {issuer: regauth}\n";
    const first = await startRegauth({ dir, configYaml: config });
    await first.stop();
    const second = await startRegauth({ dir, configYaml: config });
    expect(second.stdout.text).not.toContain("auth:"); // the block itself only on the first run
    expect(registryConfigCommand(second.stderr.text)).toEqual([
      "regauth",
      "registry-config",
      "--config",
      join(dir, "auth_config.yml"),
      "--data-dir",
      second.dataDir,
    ]);
  });

  it("REGAUTH_ADDR beats server.addr in the config file, and --addr beats REGAUTH_ADDR", async () => {
    const [envPort, flagPort] = [await freePort(), await freePort()];
    const config = "server: {addr: '127.0.0.1:{{PORT}}'}\ntoken: {issuer: regauth}\n";
    const fromEnv = await startRegauth({ configYaml: config, env: { REGAUTH_ADDR: `127.0.0.1:${envPort}` } });
    expect(fromEnv.url).toBe(`http://127.0.0.1:${envPort}`);
    expect(registryConfigCommand(fromEnv.stderr.text)).toContain(`127.0.0.1:${envPort}`);
    const fromFlag = await startRegauth({
      configYaml: config,
      env: { REGAUTH_ADDR: `127.0.0.1:${envPort}` },
      extraArgs: ["--addr", `127.0.0.1:${flagPort}`],
    });
    expect(fromFlag.url).toBe(`http://127.0.0.1:${flagPort}`);
  });

  it.each([
    [["--addr", "localhost"], {}, "--addr"],
    [["--addr", "127.0.0.1:99999"], {}, "--addr"],
    [[], { REGAUTH_ADDR: "not an address" }, "REGAUTH_ADDR"],
  ])("refuses a malformed address %p %p as a usage error naming %s", async (args, env, name) => {
    const dir = makeTempDir("addr-bad-");
    const result = await run([BINARY, "serve", "--data-dir", join(dir, "data"), ...args], { env });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain(`${name} must be HOST:PORT`);
    expect(existsSync(join(dir, "data"))).toBe(false);
  });
});

describe("a taken port", () => {
  it.each([
    ["--addr, no config file", false],
    ["server.addr in the config file", true],
  ])("(%s) is a clear error before anything is created in the data directory", async (_name, withConfig) => {
    const { port, server } = await occupyPort();
    try {
      const dir = makeTempDir("taken-");
      const dataDir = join(dir, "data");
      const args = [BINARY, "serve", "--data-dir", dataDir];
      if (withConfig) {
        const configPath = join(dir, "auth_config.yml");
        await Bun.write(configPath, `server: {addr: "127.0.0.1:${port}"}\ntoken: {issuer: regauth}\n`);
        args.push("--config", configPath);
      } else args.push("--addr", `127.0.0.1:${port}`);
      const result = await run(args, { env: { REGAUTH_ADDR: "" }, timeoutMs: 20_000 });
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain(`cannot listen on 127.0.0.1:${port}: the address is already in use`);
      expect(result.stderr).toContain("--addr HOST:PORT");
      expect(result.stderr).not.toMatch(/\bat \S+ \(/); // no stack trace
      expect(result.stdout).toBe(""); // no admin banner, no registry block
      expect(existsSync(dataDir) ? readdirSync(dataDir) : []).toEqual([]);
    } finally {
      server.close();
    }
  });

  it("checking first does not log the config's warnings twice", async () => {
    const dir = makeTempDir("warn-once-");
    const key = join(dir, "token.key");
    const certificate = join(dir, "token.crt");
    await openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key]);
    chmodSync(key, 0o600);
    await openssl([
      "req",
      "-x509",
      "-new",
      "-key",
      key,
      "-subj",
      "/CN=soon",
      "-days",
      "3",
      "-out",
      certificate,
    ]);
    const regauth = await startRegauth({
      dir,
      configYaml: `server: {addr: "127.0.0.1:{{PORT}}"}\ntoken: {issuer: regauth, key: ${key}, certificate: ${certificate}}\n`,
    });
    await regauth.stop();
    expect(regauth.stderr.text.match(/token certificate expires within 30 days/g)).toHaveLength(1);
  });

  it("an invalid config file is also reported before the data directory is created", async () => {
    const dir = makeTempDir("invalid-");
    const configPath = join(dir, "auth_config.yml");
    await Bun.write(
      configPath,
      "server: {addr: '127.0.0.1:0'}\ntoken: {issuer: regauth}\nacl: [{match: {account: '/(/'}, actions: [pull]}]\n",
    );
    const result = await run([BINARY, "serve", "--config", configPath, "--data-dir", join(dir, "data")]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain("acl.0");
    expect(existsSync(join(dir, "data"))).toBe(false);
  });
});
