/**
 * Accounts end to end: the compiled binary, the real registry 2.8, skopeo and docker login.
 * First-run admin password from stdout; registration open and approval; the permission matrix
 * read/write/admin × namespace/repository × public, including a manifest DELETE.
 */
import { describe, expect, it } from "bun:test";
import {
  BINARY,
  dockerLogin,
  makeOciImage,
  type Regauth,
  run,
  skopeoPull,
  skopeoPush,
  startRegauth,
  startRegistry,
} from "./harness.ts";

/** The embedded default, on a free port instead of 5001 (tests never use fixed ports). */
function defaultLikeConfig(extra = ""): string {
  return `server: {addr: "127.0.0.1:{{PORT}}"}\ntoken: {issuer: regauth, expiration: 300, services: [registry]}\n${extra}`;
}

async function pair(extraConfig = "") {
  const regauth = await startRegauth({ configYaml: defaultLikeConfig(extraConfig) });
  const registry = await startRegistry({
    realm: `${regauth.url}/auth`,
    issuer: "regauth",
    service: "registry",
    certificatePath: regauth.certificatePath,
  });
  return { regauth, registry };
}

/** The offline CLI on the running server's database. */
function regauthCli(regauth: Regauth, args: string[], stdin?: string) {
  return run([BINARY, ...args, "--data-dir", regauth.dataDir], stdin === undefined ? {} : { stdin });
}

async function tokenFor(regauth: Regauth, scope: string, user: string, password: string): Promise<string> {
  const res = await fetch(`${regauth.url}/auth?service=registry&scope=${encodeURIComponent(scope)}`, {
    headers: { authorization: `Basic ${btoa(`${user}:${password}`)}` },
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { token: string }).token;
}

/** DELETE /v2/NAME/manifests/DIGEST with a token from regauth for `delete` (and pull, to find the digest). */
async function deleteManifest(
  regauth: Regauth,
  registryUrl: string,
  name: string,
  user: string,
  password: string,
) {
  const token = await tokenFor(regauth, `repository:${name}:pull,delete`, user, password);
  const head = await fetch(`${registryUrl}/v2/${name}/manifests/latest`, {
    method: "HEAD",
    headers: {
      authorization: `Bearer ${token}`,
      accept:
        "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
    },
  });
  const digest = head.headers.get("docker-content-digest");
  if (!digest) return head.status;
  const res = await fetch(`${registryUrl}/v2/${name}/manifests/${digest}`, {
    method: "DELETE",
    headers: { authorization: `Bearer ${token}` },
  });
  return res.status;
}

describe("first run: the admin password printed once on stdout", async () => {
  const { regauth, registry } = await pair();
  const image = makeOciImage("admin image\n");

  it("prints a banner with `password: <value>` and the recovery command, and never logs it", async () => {
    const match = await regauth.stdout.waitFor(/^password: (\S+)$/m);
    const password = match[1] as string;
    expect(password.length).toBeGreaterThanOrEqual(20);
    expect(regauth.stdout.text).toContain("regauth admin reset-password");
    expect(regauth.stderr.text).not.toContain(password);
  });

  it("docker login and skopeo push work with it", async () => {
    const password = (await regauth.stdout.waitFor(/^password: (\S+)$/m))[1] as string;
    const login = await dockerLogin(registry.host, "admin", password);
    expect(login.stdout + login.stderr).toContain("Login Succeeded");
    const push = await skopeoPush(image, `${registry.host}/anything/app:latest`, `admin:${password}`);
    expect(push.stderr).toBe("");
    expect(push.exitCode).toBe(0);
  });

  it("does not print a password again on restart; reset-password gives a working new one", async () => {
    await regauth.stop();
    const again = await startRegauth({ configYaml: defaultLikeConfig(), dir: regauth.dir });
    expect(again.stdout.text).not.toContain("password:");
    const reset = await regauthCli(again, ["admin", "reset-password"]);
    expect(reset.exitCode).toBe(0);
    const password = reset.stdout.match(/^password: (\S+)$/m)?.[1] as string;
    const res = await fetch(`${again.url}/auth?service=registry`, {
      headers: { authorization: `Basic ${btoa(`admin:${password}`)}` },
    });
    expect(res.status).toBe(200);
    await again.stop();
  });
});

describe("first run with a docker_auth config that has its own admin user", () => {
  it("creates no database admin, prints no password, and says how to create an administrator", async () => {
    const hash = Bun.password.hashSync("config-admin-pw", { algorithm: "bcrypt", cost: 4 });
    const regauth = await startRegauth({
      configYaml: defaultLikeConfig(
        `users: {admin: {password: "${hash}"}}\nacl: [{match: {account: admin, name: "mine/*"}, actions: ["*"]}]\n`,
      ),
    });
    expect(regauth.stdout.text).not.toContain("password:");
    expect(regauth.stderr.text).toContain("regauth user promote NAME");
    const list = await regauthCli(regauth, ["user", "list"]);
    expect(list.exitCode).toBe(0);
    expect(list.stdout).not.toMatch(/\badmin\b/);
    const res = await fetch(`${regauth.url}/auth?service=registry&scope=repository:other/app:pull,push`, {
      headers: { authorization: `Basic ${btoa("admin:config-admin-pw")}` },
    });
    expect(res.status).toBe(200);
    const claims = JSON.parse(
      Buffer.from(
        ((await res.json()) as { token: string }).token.split(".")[1] as string,
        "base64url",
      ).toString(),
    ) as { access: { actions: string[] }[] };
    expect(claims.access[0]?.actions).toEqual([]);
    await regauth.stop();
  });
});

describe("registration by docker login", () => {
  it("open: an unknown name logs in, creating the account, and can push to its namespace", async () => {
    const { registry } = await pair("registration: {mode: open}\n");
    const login = await dockerLogin(registry.host, "newbie", "newbie-pass");
    expect(login.stdout + login.stderr).toContain("Login Succeeded");
    const push = await skopeoPush(makeOciImage(), `${registry.host}/newbie/app:latest`, "newbie:newbie-pass");
    expect(push.exitCode).toBe(0);
    const wrong = await dockerLogin(registry.host, "newbie", "not-the-password");
    expect(wrong.exitCode).not.toBe(0);
  });

  it("approval: the login fails saying it awaits approval; after `regauth user enable` it works", async () => {
    const { regauth, registry } = await pair("registration: {mode: approval}\n");
    const first = await dockerLogin(registry.host, "pending", "pending-pass");
    expect(first.exitCode).not.toBe(0);
    expect(first.stderr).toContain("awaits approval");
    const listed = await regauthCli(regauth, ["user", "list"]);
    expect(listed.stdout).toMatch(/^pending\s+pending approval/m);
    expect((await regauthCli(regauth, ["user", "enable", "pending"])).exitCode).toBe(0);
    const second = await dockerLogin(registry.host, "pending", "pending-pass");
    expect(second.stdout + second.stderr).toContain("Login Succeeded");
  });
});

describe("a deleted user's name stays retired until an admin releases it (issue 8 M1)", () => {
  it("a stranger cannot register dave and take over dave/*; after `user release dave` the name is free", async () => {
    const { regauth, registry } = await pair("registration: {mode: open}\n");
    expect(
      (await regauthCli(regauth, ["user", "add", "dave", "--password-stdin"], "dave-password")).exitCode,
    ).toBe(0);
    const push = await skopeoPush(
      makeOciImage("dave's\n"),
      `${registry.host}/dave/app:latest`,
      "dave:dave-password",
    );
    expect(push.exitCode).toBe(0);
    const removed = await regauthCli(regauth, ["user", "rm", "dave"]);
    expect(removed.exitCode).toBe(0);
    expect(removed.stdout).toContain("regauth user release dave");

    // What `docker login` asks (skopeo and the registry below ask the same with scopes).
    const login = () =>
      fetch(`${regauth.url}/auth?service=registry&account=dave&offline_token=true`, {
        headers: { authorization: `Basic ${btoa("dave:stranger-password")}` },
      });
    const refused = await login();
    expect(refused.status).toBe(401);
    expect(await refused.text()).toContain("this name is not available");
    const pull = await skopeoPull(`${registry.host}/dave/app:latest`, "dave:stranger-password");
    expect(pull.exitCode).not.toBe(0);
    const overwrite = await skopeoPush(
      makeOciImage("evil\n"),
      `${registry.host}/dave/app:latest`,
      "dave:stranger-password",
    );
    expect(overwrite.exitCode).not.toBe(0);
    expect((await regauthCli(regauth, ["user", "list", "--retired"])).stdout).toMatch(/^dave\s/m);
    expect((await regauthCli(regauth, ["user", "list"])).stdout).not.toMatch(/^dave\s/m);

    expect((await regauthCli(regauth, ["user", "release", "dave"])).exitCode).toBe(0);
    expect((await login()).status).toBe(200);
    const pulled = await skopeoPull(`${registry.host}/dave/app:latest`, "dave:stranger-password");
    expect(pulled.exitCode).toBe(0); // released knowingly: the new dave gets dave/*
  });
});

describe("the permission matrix through the real registry", async () => {
  const { regauth, registry } = await pair();
  const adminPassword = (await regauth.stdout.waitFor(/^password: (\S+)$/m))[1] as string;
  const image = makeOciImage("matrix\n");
  const admin = `admin:${adminPassword}`;
  const users: [string, string, string][] = [
    ["ns-reader", "team/*", "read"],
    ["ns-writer", "team/*", "write"],
    ["ns-admin", "team/*", "admin"],
    ["repo-reader", "solo/app", "read"],
    ["repo-writer", "solo/app", "write"],
    ["repo-admin", "solo/app", "admin"],
  ];
  for (const [name, pattern, level] of users) {
    expect(
      (await regauthCli(regauth, ["user", "add", name, "--password-stdin"], `${name}-pass`)).exitCode,
    ).toBe(0);
    expect((await regauthCli(regauth, ["perm", "grant", name, pattern, level])).exitCode).toBe(0);
  }
  expect((await regauthCli(regauth, ["perm", "grant", "*", "pub/*", "read"])).exitCode).toBe(0);
  for (const repo of ["team/app", "team/sub/app", "solo/app", "solo/other", "pub/app"]) {
    const push = await skopeoPush(image, `${registry.host}/${repo}:latest`, admin);
    expect(push.exitCode).toBe(0);
  }
  const ref = (repo: string) => `${registry.host}/${repo}:latest`;
  const creds = (name: string) => `${name}:${name}-pass`;

  const pulls: [string, string | undefined, string, boolean][] = [
    ["namespace read pulls", "ns-reader", "team/app", true],
    ["namespace read pulls nested", "ns-reader", "team/sub/app", true],
    ["namespace read does not reach another namespace", "ns-reader", "solo/app", false],
    ["repository read pulls that repository", "repo-reader", "solo/app", true],
    ["repository read does not pull its neighbour", "repo-reader", "solo/other", false],
    ["anonymous pulls a public namespace", undefined, "pub/app", true],
    ["anonymous does not pull a private one", undefined, "team/app", false],
  ];
  for (const [title, user, repo, allowed] of pulls) {
    it(`pull: ${title}`, async () => {
      const result = await skopeoPull(ref(repo), user ? creds(user) : undefined);
      expect(result.exitCode === 0).toBe(allowed);
    });
  }

  const pushes: [string, string | undefined, string, boolean][] = [
    ["namespace read cannot push", "ns-reader", "team/new1", false],
    ["namespace write pushes", "ns-writer", "team/new2", true],
    ["namespace admin pushes", "ns-admin", "team/new3", true],
    ["repository read cannot push", "repo-reader", "solo/app", false],
    ["repository write pushes that repository", "repo-writer", "solo/app", true],
    ["repository write cannot push its neighbour", "repo-writer", "solo/other", false],
    ["anonymous cannot push to a public namespace", undefined, "pub/app", false],
    ["every user pushes to their personal namespace", "repo-reader", "repo-reader/mine", true],
  ];
  for (const [title, user, repo, allowed] of pushes) {
    it(`push: ${title}`, async () => {
      const result = await skopeoPush(image, ref(repo), user ? creds(user) : undefined);
      expect(result.exitCode === 0).toBe(allowed);
      if (!allowed) expect(result.stderr).toMatch(/denied|unauthorized|authentication required/i);
    });
  }

  const deletes: [string, string, string, number][] = [
    ["namespace write cannot delete", "ns-writer", "team/app", 401],
    ["repository write cannot delete", "repo-writer", "solo/app", 401],
    ["namespace admin deletes", "ns-admin", "team/app", 202],
    ["repository admin deletes", "repo-admin", "solo/app", 202],
  ];
  for (const [title, user, repo, status] of deletes) {
    it(`delete: ${title}`, async () => {
      expect(await deleteManifest(regauth, registry.url, repo, user, `${user}-pass`)).toBe(status);
    });
  }
});
