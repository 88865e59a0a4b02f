/**
 * issue 12 item 9, a trap seen with real clients: once `docker login` has stored regauth's
 * identity token, containers/image's login (podman, skopeo, buildah: containers/common
 * pkg/auth Login) refuses with "currently logged in, auth file contains an Identity token".
 * docs/refresh-tokens.md gives both ways out, tested here: `docker logout` first, or
 * `token.refresh_expiration: 0`, under which docker stores the password instead.
 */
import { describe, expect, it } from "bun:test";
import { join } from "node:path";
import { hashPassword } from "../helpers.ts";
import { dockerLogin, run, startRegauth, startRegistry } from "./harness.ts";

async function regauthWithRegistry(refreshExpirationSeconds?: number) {
  const regauth = await startRegauth({
    configYaml: `
server: {addr: "127.0.0.1:{{PORT}}"}
token:
  issuer: e2e-issuer
${refreshExpirationSeconds === undefined ? "" : `  refresh_expiration: ${refreshExpirationSeconds}\n`}users:
  alice:
    password: "${hashPassword("alice-secret")}"
acl:
  - match: {account: alice}
    actions: ["*"]
`,
  });
  return startRegistry({
    realm: `${regauth.url}/auth`,
    issuer: "e2e-issuer",
    service: "registry",
    certificatePath: regauth.certificatePath,
  });
}

/** `skopeo login` against the auth file docker wrote (podman and buildah share this code). */
function skopeoLogin(host: string, authFile: string) {
  return run(
    [
      "skopeo",
      "login",
      "--tls-verify=false",
      "--authfile",
      authFile,
      "-u",
      "alice",
      "--password-stdin",
      host,
    ],
    { stdin: "alice-secret" },
  );
}

describe("skopeo login after docker login stored an identity token", () => {
  it("fails with the message docs/refresh-tokens.md quotes, and works after docker logout", async () => {
    const registry = await regauthWithRegistry();
    const login = await dockerLogin(registry.host, "alice", "alice-secret");
    expect(login.exitCode, login.stderr).toBe(0);
    const authFile = join(login.configDir, "config.json");
    const refused = await skopeoLogin(registry.host, authFile);
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stderr).toContain("currently logged in, auth file contains an Identity token");

    const logout = await run(["docker", "--config", login.configDir, "logout", registry.host]);
    expect(logout.exitCode, logout.stderr).toBe(0);
    const accepted = await skopeoLogin(registry.host, authFile);
    expect(accepted.stderr).toBe("");
    expect(accepted.exitCode).toBe(0);
  });

  it("works at once with token.refresh_expiration: 0 (docker stores the password)", async () => {
    const registry = await regauthWithRegistry(0);
    const login = await dockerLogin(registry.host, "alice", "alice-secret");
    expect(login.exitCode, login.stderr).toBe(0);
    const accepted = await skopeoLogin(registry.host, join(login.configDir, "config.json"));
    expect(accepted.stderr).toBe("");
    expect(accepted.exitCode).toBe(0);
  });
});
