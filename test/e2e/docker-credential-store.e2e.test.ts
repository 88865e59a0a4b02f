/**
 * issue 12 item 10: the e2e tests that run `docker login` pass on a machine with an OS credential
 * store. On Linux docker/cli picks `pass` as the default store when both `pass` and
 * `docker-credential-pass` are on PATH and config.json holds no auth (default_store_linux.go,
 * config.go LoadDefaultConfigFile); with Debian's golang-docker-credential-helpers and an
 * uninitialised `pass`, every login then failed with "pass not initialized". Here fake `pass` and
 * `docker-credential-pass` programs stand in for them, so the test means the same on any machine.
 */
import { describe, expect, it } from "bun:test";
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { hashPassword, makeTempDir } from "../helpers.ts";
import { dockerLogin, run, startRegauth, startRegistry } from "./harness.ts";

describe("docker login in the tests keeps credentials in config.json", async () => {
  const regauth = await startRegauth({
    configYaml: `
server:
  addr: 127.0.0.1:{{PORT}}
token:
  issuer: e2e-issuer
  expiration: 300
  refresh_expiration: 0
users:
  alice:
    password: "${hashPassword("alice-secret")}"
acl:
  - match: {account: alice}
    actions: ["*"]
`,
  });
  const registry = await startRegistry({
    realm: `${regauth.url}/auth`,
    issuer: "e2e-issuer",
    service: "registry",
    certificatePath: regauth.certificatePath,
  });

  // A credential helper that fails like docker-credential-pass on an empty password store, and
  // leaves a mark when it is called.
  const fakeBin = makeTempDir("fake-pass-");
  const helperCalled = join(fakeBin, "helper-called");
  for (const name of ["pass", "docker-credential-pass"]) {
    const program = join(fakeBin, name);
    writeFileSync(
      program,
      `#!/bin/sh\ntouch '${helperCalled}'\necho 'pass not initialized: Error: password store is empty. Try "pass init".'\nexit 1\n`,
    );
    chmodSync(program, 0o755);
  }
  const env = { PATH: `${fakeBin}:${process.env.PATH ?? "/usr/bin:/bin"}` };

  it("without a prepared config.json the CLI would use the helper (the fake is detected)", async () => {
    const configDir = makeTempDir("docker-config-");
    const result = await run(
      ["docker", "--config", configDir, "login", "-u", "alice", "--password-stdin", registry.host],
      { stdin: "alice-secret", env: { ...env, DOCKER_HOST: `unix://${join(configDir, "none.sock")}` } },
    );
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toContain("pass not initialized");
  });

  it("dockerLogin stores the password in config.json and never calls the helper", async () => {
    rmSync(helperCalled, { force: true });
    const login = await dockerLogin(registry.host, "alice", "alice-secret", { env });
    expect(login.exitCode, login.stderr).toBe(0);
    const config = JSON.parse(readFileSync(join(login.configDir, "config.json"), "utf8")) as {
      auths: Record<string, { auth?: string }>;
      credsStore?: string;
    };
    expect(config.credsStore).toBeUndefined();
    expect(config.auths[registry.host]?.auth).toBe(btoa("alice:alice-secret"));
    expect(existsSync(helperCalled)).toBe(false);
  });
});
