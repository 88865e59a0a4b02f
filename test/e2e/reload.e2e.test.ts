/**
 * Live reload with the compiled binary (issue 12 item 1): SIGHUP with a broken config and with a
 * good one while 8 clients request tokens without pause; no request may fail or change its
 * answer except as the configs say. Then a signing key replaced in place takes effect on SIGHUP.
 */
import { describe, expect, it } from "bun:test";
import { copyFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { hashPassword, makeTempDir } from "../helpers.ts";
import { decodeToken, fetchToken, makeSelfSignedKeyPair, startRegauth } from "./harness.ts";

const ALICE = hashPassword("alice-pw");
const BOB = hashPassword("bob-pw");
const LOOPS = 8;
const LOAD_MS = 5_000;

function configYaml(port: string, keys: { key: string; certificate: string }, body: string): string {
  return `
server:
  addr: 127.0.0.1:${port}
token:
  issuer: reload-e2e
  expiration: 300
  key: ${keys.key}
  certificate: ${keys.certificate}
${body}`;
}

const BEFORE = `
users:
  alice:
    password: "${ALICE}"
acl:
  - match: {account: alice}
    actions: [pull]
`;
const AFTER = `
users:
  alice:
    password: "${ALICE}"
  bob:
    password: "${BOB}"
acl:
  - match: {account: alice}
    actions: [pull, push]
  - match: {account: bob}
    actions: [pull]
`;
/** Three problems in three places; each must be logged with its key path. */
const BROKEN = `
users:
  alice:
    password: "${ALICE}"
    colour: blue
acl:
  - match: {account: "/[/"}
    actions: [pull]
registration:
  mode: sometimes
`;

function grantedActions(token: string | undefined): string {
  if (!token) return "";
  const access = decodeToken(token).claims.access as { actions: string[] }[];
  return access
    .flatMap((a) => a.actions)
    .sort()
    .join(",");
}

describe("live reload of the compiled binary under load", async () => {
  const keyDir = makeTempDir("reload-keys-");
  const keys = await makeSelfSignedKeyPair(keyDir, "token", "ec-p256-sec1");
  const nextKeys = await makeSelfSignedKeyPair(keyDir, "next", "ec-p256-sec1");
  const regauth = await startRegauth({ configYaml: configYaml("{{PORT}}", keys, BEFORE) });
  const configPath = join(regauth.dir, "auth_config.yml");
  const writeConfig = (body: string) =>
    writeFileSync(configPath, configYaml(String(regauth.port), keys, body));
  const realm = `${regauth.url}/auth`;
  const ask = (creds: string) =>
    fetchToken(realm, { service: "registry", scopes: ["repository:app:pull,push"] }, creds);
  const sighupAndWaitFor = async (pattern: RegExp) => {
    const seen = regauth.stderr.text.length;
    regauth.proc.kill("SIGHUP");
    const deadline = Date.now() + 10_000;
    while (!pattern.test(regauth.stderr.text.slice(seen))) {
      if (Date.now() > deadline) throw new Error(`never logged ${pattern}:\n${regauth.stderr.text}`);
      await Bun.sleep(25);
    }
    return regauth.stderr.text.slice(seen);
  };

  it("refuses a broken config and applies a good one, failing no request in flight", async () => {
    const outcomes: string[] = [];
    const failures: string[] = [];
    const stopAt = Date.now() + LOAD_MS;
    const loop = async () => {
      while (Date.now() < stopAt) {
        try {
          const response = await ask("alice:alice-pw");
          outcomes.push(`${response.status} ${grantedActions(response.token)}`);
        } catch (error) {
          failures.push(String(error));
        }
      }
    };
    const load = Promise.all(Array.from({ length: LOOPS }, loop));

    await Bun.sleep(1_000);
    writeConfig(BROKEN);
    const refused = await sighupAndWaitFor(/msg="config reload refused".*\n/);
    for (const path of ["users.alice.colour", "acl.0.match.account", "registration.mode"])
      expect(refused).toContain(path);
    expect(refused).not.toContain("config reloaded");
    // The old config keeps serving: alice pulls only, bob does not exist.
    expect(grantedActions((await ask("alice:alice-pw")).token)).toBe("pull");
    expect((await ask("bob:bob-pw")).status).toBe(401);

    await Bun.sleep(1_000);
    writeConfig(AFTER);
    const reloaded = await sighupAndWaitFor(/msg="config reloaded".*\n/);
    expect(reloaded).toMatch(/users=2 acl_rules=2/);
    expect(grantedActions((await ask("alice:alice-pw")).token)).toBe("pull,push");
    const bob = await ask("bob:bob-pw");
    expect(bob.status).toBe(200);
    expect(grantedActions(bob.token)).toBe("pull");

    await load;
    expect(failures).toEqual([]);
    // Enough requests to have straddled both reloads, each answered by one config or the other.
    expect(outcomes.length).toBeGreaterThan(LOOPS * 10);
    const counts = new Map<string, number>();
    for (const outcome of outcomes) counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
    expect([...counts.keys()].sort()).toEqual(["200 pull", "200 pull,push"]);
    expect(regauth.proc.exitCode).toBeNull();
  }, 30_000);

  it("refuses an unreadable signing key, then signs with a key replaced in place after SIGHUP", async () => {
    const before = decodeToken((await ask("alice:alice-pw")).token ?? "").header.kid;
    writeFileSync(keys.key, "-----BEGIN EC PRIVATE KEY-----\ngarbage\n-----END EC PRIVATE KEY-----\n");
    const refused = await sighupAndWaitFor(/msg="config reload refused".*\n/);
    expect(refused).toContain("token.key");
    expect(decodeToken((await ask("alice:alice-pw")).token ?? "").header.kid).toBe(before);

    copyFileSync(nextKeys.key, keys.key);
    copyFileSync(nextKeys.certificate, keys.certificate);
    const reloaded = await sighupAndWaitFor(/msg="config reloaded".*\n/);
    const after = decodeToken((await ask("alice:alice-pw")).token ?? "").header.kid;
    expect(after).not.toBe(before);
    expect(reloaded).toContain(`kid=${after}`);
    await regauth.stop();
  }, 30_000);
});
