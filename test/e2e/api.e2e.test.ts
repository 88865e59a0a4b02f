/**
 * The management API end to end (issue 10 "Tests that must exist"): the compiled binary, the
 * real registry 2.8 and skopeo. Everything is done over HTTP as a remote client would: create a
 * user and a grant, create a token as that user, push with the token as the password, revoke it,
 * and the next push is refused within a second. Then a robot account pushes with only its token,
 * and the API on its own listener (api.addr).
 */
import { describe, expect, it } from "bun:test";
import { freePort, makeOciImage, type Regauth, skopeoPush, startRegauth, startRegistry } from "./harness.ts";

function config(extra = ""): string {
  return `server: {addr: "127.0.0.1:{{PORT}}"}\ntoken: {issuer: regauth, expiration: 300, services: [registry]}\n${extra}`;
}

async function api(
  base: string,
  method: string,
  path: string,
  auth: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: {
      authorization: auth,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

const basicAuth = (user: string, password: string) => `Basic ${btoa(`${user}:${password}`)}`;

async function adminPassword(regauth: Regauth): Promise<string> {
  return (await regauth.stdout.waitFor(/^password: (\S+)$/m))[1] as string;
}

describe("management API with the real registry", async () => {
  const regauth = await startRegauth({ configYaml: config() });
  const registry = await startRegistry({
    realm: `${regauth.url}/auth`,
    issuer: "regauth",
    service: "registry",
    certificatePath: regauth.certificatePath,
  });
  const admin = basicAuth("admin", await adminPassword(regauth));
  const image = makeOciImage("pushed with an access token\n");

  it("user, grant and token through the API; push with the token; revoke; the next push is refused at once", async () => {
    const user = await api(regauth.url, "POST", "/users", admin, {
      name: "carol",
      password: "carol-password-1",
    });
    expect(user.status).toBe(201);
    const grant = await api(regauth.url, "POST", "/permissions", admin, {
      grantee: "carol",
      pattern: "team/*",
      level: "write",
    });
    expect(grant.status).toBe(201);
    const created = await api(regauth.url, "POST", "/tokens", basicAuth("carol", "carol-password-1"), {
      name: "ci",
      scopes: ["push"],
      repository_patterns: ["team/*"],
    });
    expect(created.status).toBe(201);
    const secret = created.json.secret as string;
    expect(secret).toMatch(/^regauth_pat_[0-9A-Za-z]{38}$/);

    // Any user name: the token alone decides who it is.
    const push = await skopeoPush(image, `${registry.host}/team/app:v1`, `ci:${secret}`);
    expect(push.stderr).toBe("");
    expect(push.exitCode).toBe(0);

    const revoked = await api(
      regauth.url,
      "DELETE",
      `/tokens/${created.json.id}`,
      basicAuth("carol", "carol-password-1"),
    );
    expect(revoked.status).toBe(200);
    const startedMs = performance.now();
    const again = await skopeoPush(image, `${registry.host}/team/app:v2`, `ci:${secret}`);
    expect(again.exitCode).not.toBe(0);
    expect(again.stderr).toMatch(/401|unauthorized|authentication/i);
    expect(performance.now() - startedMs).toBeLessThan(10_000); // the refusal itself, not a retry loop

    const audit = await api(regauth.url, "GET", "/audit?kind=access-token.revoked", admin);
    expect((audit.json.items as { actor: string }[]).map((e) => e.actor)).toContain("carol");
  });

  it("a robot account of a namespace pushes with only its token, made by the namespace's admin", async () => {
    expect(
      (await api(regauth.url, "POST", "/users", admin, { name: "tessa", password: "tessa-password-1" }))
        .status,
    ).toBe(201);
    expect(
      (
        await api(regauth.url, "POST", "/permissions", admin, {
          grantee: "tessa",
          pattern: "ci/*",
          level: "admin",
        })
      ).status,
    ).toBe(201);
    const tessa = basicAuth("tessa", "tessa-password-1");
    expect(
      (await api(regauth.url, "POST", "/robots", tessa, { name: "builder", namespace: "ci" })).status,
    ).toBe(201);
    expect(
      (
        await api(regauth.url, "POST", "/permissions", tessa, {
          grantee: "ci+builder",
          pattern: "ci/*",
          level: "write",
        })
      ).status,
    ).toBe(201);
    const token = await api(regauth.url, "POST", "/robots/ci+builder/tokens", tessa, {
      name: "pipeline",
      scopes: ["push"],
      repository_patterns: ["ci/*"],
    });
    expect(token.status).toBe(201);
    const secret = token.json.secret as string;
    const push = await skopeoPush(image, `${registry.host}/ci/app:1`, `ci+builder:${secret}`);
    expect(push.stderr).toBe("");
    expect(push.exitCode).toBe(0);
    // Outside its grant, the robot's token pushes nothing.
    const outside = await skopeoPush(image, `${registry.host}/team/app:robot`, `ci+builder:${secret}`);
    expect(outside.exitCode).not.toBe(0);
    // The robot cannot use the management API with its token, nor log in with a password.
    expect((await api(regauth.url, "GET", "/me", `Bearer ${secret}`)).status).toBe(401);
  });
});

describe("the API on its own listener (api.addr)", () => {
  it("answers there, and not on the token listener", async () => {
    const apiPort = await freePort();
    const regauth = await startRegauth({ configYaml: config(`api: {addr: "127.0.0.1:${apiPort}"}\n`) });
    const admin = basicAuth("admin", await adminPassword(regauth));
    const there = await api(`http://127.0.0.1:${apiPort}`, "GET", "/me", admin);
    expect(there.status).toBe(200);
    expect(regauth.stderr.text).toContain(`api_url=http://127.0.0.1:${apiPort}`);
    const res = await fetch(`${regauth.url}/api/v1/me`, { headers: { authorization: admin } });
    expect(res.status).toBe(404);
    await regauth.stop();
  });
});
