/**
 * Access tokens and robot accounts end to end (issue 10): the compiled binary, the real registry
 * 2.8 and skopeo. Tokens are created offline, with the domain modules on the data directory of
 * the running server (as `regauth token create --data-dir` does): a push with the token as the
 * password and any user name, then the token deleted and the next push refused within a second;
 * a robot pushing from a CI-like shell script with only its token; the audit log showing the
 * denied push without debug logging.
 */
import { describe, expect, it } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createAccessToken, deleteAccessToken, ensureAccessTokenKey } from "../../src/access-tokens/index.ts";
import { grant } from "../../src/accounts/permissions.ts";
import { createUser } from "../../src/accounts/users.ts";
import { databasePath, openDatabase } from "../../src/db/database.ts";
import { createRobot } from "../../src/robots/index.ts";
import { dockerLogin, makeOciImage, run, skopeoPush, startRegauth, startRegistry } from "./harness.ts";

const NOW = Math.floor(Date.now() / 1000);

async function pair() {
  const regauth = await startRegauth({
    configYaml: `server: {addr: "127.0.0.1:{{PORT}}"}\ntoken: {issuer: regauth, expiration: 300, services: [registry]}\n`,
  });
  const registry = await startRegistry({
    realm: `${regauth.url}/auth`,
    issuer: "regauth",
    service: "registry",
    certificatePath: regauth.certificatePath,
  });
  // The offline side: the same database file and access-token key the server uses.
  const db = openDatabase(databasePath(regauth.dataDir));
  const key = ensureAccessTokenKey(regauth.dataDir);
  return { regauth, registry, db, key };
}

describe("access tokens with skopeo and the real registry", async () => {
  const { regauth, registry, db, key } = await pair();
  const image = makeOciImage("pushed with an access token\n");
  createUser(db, {
    name: "alice",
    passwordHash: await Bun.password.hash("alice-password", { algorithm: "bcrypt", cost: 4 }),
    nowUnix: NOW,
  });
  grant(db, { kind: "user", name: "alice" }, "team/*", "write", NOW);
  const { token, secret } = createAccessToken(db, key, {
    owner: "alice",
    name: "ci",
    scopes: ["push"],
    repositoryPatterns: ["team/*"],
    expiresAtUnix: null,
    nowUnix: NOW,
  });

  it("pushes with the token as the password and an arbitrary user name", async () => {
    const push = await skopeoPush(image, `${registry.host}/team/app:latest`, `whoever:${secret}`);
    expect(push.stderr).toBe("");
    expect(push.exitCode).toBe(0);
  });

  // docker login asks for an offline token (offline_token=true): an access token is never given a
  // refresh token, so the CLI keeps the token itself, as GitHub's and GitLab's PATs are kept.
  it("works as the password of docker login, which stores it rather than an identity token", async () => {
    const login = await dockerLogin(registry.host, "whoever", secret);
    expect({ exitCode: login.exitCode, stderr: login.exitCode === 0 ? "" : login.stderr }).toEqual({
      exitCode: 0,
      stderr: "",
    });
    expect(login.stdout).toContain("Login Succeeded");
    const stored = JSON.parse(readFileSync(join(login.configDir, "config.json"), "utf8")) as {
      auths: Record<string, { auth?: string; identitytoken?: string }>;
    };
    const entry = Object.values(stored.auths).find((e) => e.auth || e.identitytoken) ?? {};
    expect(entry.identitytoken).toBeUndefined();
    expect(Buffer.from(entry.auth ?? "", "base64").toString()).toBe(`whoever:${secret}`);
    const wrong = await dockerLogin(registry.host, "whoever", `${secret.slice(0, -1)}x`);
    expect(wrong.exitCode).not.toBe(0);
  });

  it("is limited to its patterns: a push outside them is refused", async () => {
    grant(db, { kind: "user", name: "alice" }, "other/*", "write", NOW);
    const push = await skopeoPush(image, `${registry.host}/other/app:latest`, `whoever:${secret}`);
    expect(push.exitCode).not.toBe(0);
  });

  it("deleted, the next push is refused within a second", async () => {
    deleteAccessToken(db, token.id);
    const deletedAt = performance.now();
    const res = await fetch(`${regauth.url}/auth?service=registry&scope=repository:team/app:pull,push`, {
      headers: { authorization: `Basic ${btoa(`whoever:${secret}`)}` },
    });
    expect(res.status).toBe(401);
    expect(performance.now() - deletedAt).toBeLessThan(1000);
    const push = await skopeoPush(image, `${registry.host}/team/app:again`, `whoever:${secret}`);
    expect(push.exitCode).not.toBe(0);
    expect(push.stderr).toMatch(/401|unauthorized|authentication/i);
  });

  it("the refused push is in the audit log (no debug logging), and no secret is", async () => {
    expect(regauth.stderr.text).not.toContain("level=debug");
    const deadline = Date.now() + 10_000;
    let denied: { kind: string; outcome: string; details: string }[] = [];
    while (Date.now() < deadline) {
      denied = db
        .query<{ kind: string; outcome: string; details: string }, []>(
          "SELECT kind, outcome, details FROM audit_events WHERE outcome = 'denied'",
        )
        .all();
      if (denied.some((e) => e.kind === "login") && denied.some((e) => e.kind === "token")) break;
      await Bun.sleep(200);
    }
    // The push to other/ (token outside its patterns) and the login with the deleted token.
    expect(
      denied.some((e) => e.kind === "token" && e.details.includes("repository:other/app:pull,push")),
    ).toBe(true);
    expect(
      denied.some((e) => e.kind === "login" && e.details.includes('"authenticator":"access-token"')),
    ).toBe(true);
    const everything = JSON.stringify(db.query("SELECT * FROM audit_events").all());
    expect(everything).not.toContain(secret);
    expect(regauth.stderr.text).not.toContain(secret);
  }, 30_000);
});

describe("a robot account pushing from a CI-like script with only its token", async () => {
  const { regauth, registry, db, key } = await pair();
  createRobot(db, { ownerNamespace: "team", name: "ci", description: "the CI pipeline", nowUnix: NOW });
  grant(db, { kind: "user", name: "team+ci" }, "team/*", "write", NOW);
  const { secret } = createAccessToken(db, key, {
    owner: "team+ci",
    name: "pipeline",
    scopes: ["push"],
    repositoryPatterns: ["team/*"],
    expiresAtUnix: NOW + 3600,
    nowUnix: NOW,
  });
  const image = makeOciImage("pushed by a robot\n");
  const script = [
    "set -eu",
    // What a CI job has: the registry, and the token in a secret variable; no person's password.
    'skopeo copy --dest-tls-verify=false --dest-creds "ci:${REGISTRY_TOKEN}" "oci:${IMAGE}:latest" "docker://${REGISTRY}/team/app:${CI_COMMIT}"',
    'echo "pushed ${REGISTRY}/team/app:${CI_COMMIT}"',
  ].join("\n");

  it("pushes with the token", async () => {
    const result = await run(["bash", "-c", script], {
      env: { REGISTRY_TOKEN: secret, IMAGE: image, REGISTRY: registry.host, CI_COMMIT: "abc123" },
    });
    expect(result.stderr).toBe("");
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain("pushed");
  });

  it("cannot log in with a password, and records its token's use", async () => {
    for (const password of ["!", "a-long-password"]) {
      const res = await fetch(`${regauth.url}/auth?service=registry&scope=repository:team/app:pull`, {
        headers: { authorization: `Basic ${btoa(`team+ci:${password}`)}` },
      });
      expect(res.status).toBe(401);
    }
    const deadline = Date.now() + 10_000;
    let row: { last_used_at_unix: number; last_used_ip: string } | null = null;
    while (Date.now() < deadline) {
      row = db
        .query<{ last_used_at_unix: number; last_used_ip: string }, []>(
          "SELECT last_used_at_unix, last_used_ip FROM access_tokens",
        )
        .get();
      if (row && row.last_used_at_unix > 0) break;
      await Bun.sleep(200);
    }
    expect(row?.last_used_at_unix).toBeGreaterThanOrEqual(NOW);
    expect(row?.last_used_ip).toBe("127.0.0.1");
    expect(join(regauth.dataDir, "access-token.key")).toBeTruthy();
  }, 30_000);
});
