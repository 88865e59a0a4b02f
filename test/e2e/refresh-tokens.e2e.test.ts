/**
 * Refresh tokens with the compiled binary, the real registry 2.8, the docker CLI and skopeo:
 * `docker login` stores an identity token instead of the password; a refresh grant with it (as
 * dockerd and containerd send it) and skopeo with it in auth.json (containers/image: POST with
 * repeated scope) get tokens the registry accepts; a password change revokes it; skopeo's own
 * login, which never asks for one, is unchanged.
 */
import { describe, expect, it } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { hashPassword, makeTempDir } from "../helpers.ts";
import {
  BINARY,
  dockerLogin,
  makeOciImage,
  run,
  skopeoPush,
  startRegauth,
  startRegistry,
} from "./harness.ts";

interface DockerConfig {
  auths: Record<string, { auth?: string; identitytoken?: string }>;
}

describe("refresh tokens with registry 2.8, docker login and skopeo", async () => {
  const regauth = await startRegauth({
    configYaml: `
server:
  addr: 127.0.0.1:{{PORT}}
token:
  issuer: e2e-issuer
  expiration: 300
  services: [registry]
users:
  alice:
    password: "${hashPassword("alice-secret")}"
acl:
  - match: {account: alice}
    actions: ["*"]
`,
  });
  const realm = `${regauth.url}/auth`;
  const registry = await startRegistry({
    realm,
    issuer: "e2e-issuer",
    service: "registry",
    certificatePath: regauth.certificatePath,
  });
  const image = makeOciImage("refresh tokens\n");
  const cli = (args: string[], stdin?: string) =>
    run([BINARY, ...args, "--data-dir", regauth.dataDir], stdin === undefined ? {} : { stdin });
  expect((await cli(["user", "add", "dave", "--password-stdin"], "dave-password-1")).exitCode).toBe(0);
  expect((await cli(["perm", "grant", "dave", "dave/*", "write"])).exitCode).toBe(0);

  /** `docker login`; returns the identity token it stored and the config.json it wrote. */
  async function dockerLoginIdentity(user: string, password: string) {
    const login = await dockerLogin(registry.host, user, password);
    expect(login.exitCode, login.stderr).toBe(0);
    const configPath = join(login.configDir, "config.json");
    const text = readFileSync(configPath, "utf8");
    const entry = (JSON.parse(text) as DockerConfig).auths[registry.host];
    // docker/cli login.go: with an identity token the password is dropped; the file store keeps
    // the user name alone ("user:" in `auth`).
    expect(entry?.identitytoken).toMatch(/^rt1\./);
    expect(Buffer.from(entry?.auth ?? "", "base64").toString()).toBe(`${user}:`);
    expect(text).not.toContain(password);
    return { identityToken: entry?.identitytoken ?? "", configPath };
  }

  async function identityTokenOf(user: string, password: string): Promise<string> {
    return (await dockerLoginIdentity(user, password)).identityToken;
  }

  /** The refresh grant as the docker daemon sends it (moby fetchTokenWithOAuth). */
  async function refreshGrant(identityToken: string, scope: string) {
    const form = new URLSearchParams({
      grant_type: "refresh_token",
      refresh_token: identityToken,
      service: "registry",
      client_id: "docker",
      scope,
    });
    const res = await fetch(realm, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: form,
    });
    const text = await res.text();
    return {
      status: res.status,
      text,
      body: res.ok ? (JSON.parse(text) as { access_token: string; refresh_token?: string }) : null,
    };
  }

  const skopeoWithAuthFile = (authFile: string, from: string, to: string) =>
    run([
      "skopeo",
      "copy",
      "--authfile",
      authFile,
      "--src-tls-verify=false",
      "--dest-tls-verify=false",
      from,
      to,
    ]);

  it("docker login stores an identity token; a refresh grant with it pushes and pulls at the registry", async () => {
    const identityToken = await identityTokenOf("alice", "alice-secret");
    // Something to pull: pushed with the password.
    expect((await skopeoPush(image, `${registry.host}/alice/app:v1`, "alice:alice-secret")).exitCode).toBe(0);

    const grant = await refreshGrant(identityToken, "repository:alice/app:pull,push");
    expect(grant.status, grant.text).toBe(200);
    expect(grant.body?.refresh_token).toBe(identityToken); // the same one: dockerd never saves a new one
    const bearer = { authorization: `Bearer ${grant.body?.access_token}` };
    const pull = await fetch(`${registry.url}/v2/alice/app/manifests/v1`, {
      headers: { ...bearer, accept: "application/vnd.oci.image.manifest.v1+json" },
    });
    expect(pull.status).toBe(200);
    const push = await fetch(`${registry.url}/v2/alice/app/blobs/uploads/`, {
      method: "POST",
      headers: bearer,
    });
    expect(push.status).toBe(202);
  });

  it("the identity token itself is not a registry token", async () => {
    const identityToken = await identityTokenOf("alice", "alice-secret");
    const res = await fetch(`${registry.url}/v2/alice/app/manifests/v1`, {
      headers: { authorization: `Bearer ${identityToken}` },
    });
    expect(res.status).toBe(401);
  });

  it("skopeo (containers/image, POST refresh grant with repeated scope) pushes and pulls with only the identity token", async () => {
    // containers/image reads docker's config.json; it keeps the identity token only next to a
    // decodable `auth` ("alice:"), which is what docker writes. The password in it is empty, so
    // only the refresh grant can succeed.
    const { configPath: authFile } = await dockerLoginIdentity("alice", "alice-secret");
    const push = await skopeoWithAuthFile(
      authFile,
      `oci:${image}:latest`,
      `docker://${registry.host}/alice/idt:v1`,
    );
    expect(push.exitCode, `${push.stderr}\n${regauth.stderr.text}`).toBe(0);
    const target = makeTempDir("pull-");
    const pull = await skopeoWithAuthFile(
      authFile,
      `docker://${registry.host}/alice/idt:v1`,
      `oci:${target}:latest`,
    );
    expect(pull.exitCode, pull.stderr).toBe(0);
    expect(regauth.stderr.text).not.toContain("rt1.");
  });

  it("a database user's password change revokes the stored identity token", async () => {
    const { identityToken, configPath } = await dockerLoginIdentity("dave", "dave-password-1");
    expect((await refreshGrant(identityToken, "repository:dave/app:pull,push")).status).toBe(200);
    expect((await cli(["user", "passwd", "dave", "--password-stdin"], "dave-password-2")).exitCode).toBe(0);
    const refused = await refreshGrant(identityToken, "repository:dave/app:pull,push");
    expect(refused.status).toBe(401);
    expect(refused.text).not.toContain(identityToken);
    const push = await skopeoWithAuthFile(
      configPath,
      `oci:${image}:latest`,
      `docker://${registry.host}/dave/app:v1`,
    );
    expect(push.exitCode).not.toBe(0);
    await regauth.stderr.waitFor(/msg="authentication failed".*reason="credentials changed"/, 5_000);
    expect(regauth.stderr.text).not.toContain(identityToken.split(".")[2] ?? "never");
    // Logging in again with the new password gives a working one.
    const renewed = await identityTokenOf("dave", "dave-password-2");
    expect((await refreshGrant(renewed, "repository:dave/app:pull,push")).status).toBe(200);
  });

  it("skopeo login never asks for a refresh token: it still stores the password, as before", async () => {
    const authFile = join(makeTempDir("authfile-"), "auth.json");
    const login = await run(
      [
        "skopeo",
        "login",
        "--authfile",
        authFile,
        "--tls-verify=false",
        "-u",
        "alice",
        "--password-stdin",
        registry.host,
      ],
      { stdin: "alice-secret" },
    );
    expect(login.exitCode, login.stderr).toBe(0);
    const entry = (JSON.parse(readFileSync(authFile, "utf8")) as DockerConfig).auths[registry.host];
    expect(entry?.auth).toBe(Buffer.from("alice:alice-secret").toString("base64"));
    expect(entry?.identitytoken).toBeUndefined();
  });
});
