/**
 * The compiled binary with ldap_auth over StartTLS against a real slapd, in front of the real
 * registry 2.8: an LDAP user in the `developers` group pushes to `developers/*` thanks to the ACL
 * rule `name: "${labels:group}/*"`; a user without the group is denied; an LDAP outage refuses LDAP
 * users but not config users, and logins come back when slapd does, without restarting regauth.
 */
import { afterAll, describe, expect, it } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { hashPassword, makeTempDir } from "../helpers.ts";
import {
  BASE_DN,
  group,
  person,
  SERVICE_DN,
  SERVICE_PASSWORD,
  startSlapd,
  stopAllSlapds,
} from "../ldap/slapd.ts";
import {
  BINARY,
  dockerLogin,
  makeOciImage,
  run,
  skopeoPull,
  skopeoPush,
  startRegauth,
  startRegistry,
  stopAllPeers,
} from "./harness.ts";

afterAll(stopAllPeers);
afterAll(stopAllSlapds);

/** The ldap_auth section both scenarios use: StartTLS with the test CA, groups as the `group` label. */
function ldapAuthSection(slapd: { port: number; pki: { caPath: string } }, passwordFile: string): string {
  return `ldap_auth:
  addr: 127.0.0.1:${slapd.port}
  tls: starttls
  ca_certificate: ${slapd.pki.caPath}
  bind_dn: ${SERVICE_DN}
  bind_password_file: ${passwordFile}
  base: ou=people,${BASE_DN}
  filter: (&(uid=\${account})(objectClass=inetOrgPerson))
  labels:
    group:
      attribute: memberOf
      parse_cn: true
      lower_case: true`;
}

describe("LDAP users with the real registry 2.8 and skopeo", async () => {
  const slapd = await startSlapd();
  const carol = person("carol", "carol-pw");
  await slapd.add([carol, person("dave", "dave-pw"), group("developers", [carol.dn])]);
  afterAll(() => slapd.stop());

  const secrets = makeTempDir("regauth-ldap-e2e-");
  const passwordFile = join(secrets, "ldap-password");
  writeFileSync(passwordFile, SERVICE_PASSWORD);

  const regauth = await startRegauth({
    configYaml: `
server:
  addr: 127.0.0.1:{{PORT}}
  workers: 1  # the slapd-down test reads one process's "unavailable" and "answers again" (issue 17)
token:
  issuer: ldap-e2e
  expiration: 300
users:
  local:
    password: "${hashPassword("local-pw")}"
${ldapAuthSection(slapd, passwordFile)}
  timeout_seconds: 2
acl:
  - match: {name: "\${labels:group}/*"}
    actions: ["*"]
    comment: members of an LDAP group push to its namespace
  - match: {account: local}
    actions: ["*"]
  - match: {account: "/.+/"}
    actions: [pull]
`,
  });
  const registry = await startRegistry({
    realm: `${regauth.url}/auth`,
    issuer: "ldap-e2e",
    service: "registry",
    certificatePath: regauth.certificatePath,
  });
  const image = makeOciImage("pushed by an LDAP user\n");

  it("an LDAP user pushes to their group's namespace and pulls it back", async () => {
    const push = await skopeoPush(image, `${registry.host}/developers/app:v1`, "carol:carol-pw");
    expect(push.stderr).not.toContain("denied");
    expect(push.exitCode).toBe(0);
    const pull = await skopeoPull(`${registry.host}/developers/app:v1`, "carol:carol-pw");
    expect(pull.exitCode).toBe(0);
  });

  it("an LDAP user without the group may pull but not push there", async () => {
    const push = await skopeoPush(image, `${registry.host}/developers/other:v1`, "dave:dave-pw");
    expect(push.exitCode).not.toBe(0);
    expect(push.stderr).toMatch(/denied|unauthorized/);
    const pull = await skopeoPull(`${registry.host}/developers/app:v1`, "dave:dave-pw");
    expect(pull.exitCode).toBe(0);
  });

  it("a wrong LDAP password and an empty one are refused by docker login", async () => {
    expect((await dockerLogin(registry.host, "carol", "carol-pw")).exitCode).toBe(0);
    expect((await dockerLogin(registry.host, "carol", "wrong")).exitCode).not.toBe(0);
    const empty = await fetch(`${regauth.url}/auth?service=registry`, {
      headers: { authorization: `Basic ${btoa("carol:")}` },
    });
    expect(empty.status).toBe(401);
    expect(empty.headers.get("www-authenticate")).toContain("Basic");
  });

  it("docker login of an LDAP user stores the password, not an identity token (no refresh token for LDAP)", async () => {
    const login = await dockerLogin(registry.host, "carol", "carol-pw");
    expect(login.exitCode).toBe(0);
    const config = JSON.parse(readFileSync(join(login.configDir, "config.json"), "utf8")) as {
      auths: Record<string, { auth?: string; identitytoken?: string }>;
    };
    expect(config.auths[registry.host]?.identitytoken).toBeUndefined();
    expect(config.auths[registry.host]?.auth).toBe(btoa("carol:carol-pw"));
  });

  it("slapd down: LDAP users get 401, the config user still pushes; back up: LDAP works without a restart", async () => {
    await slapd.stop();
    try {
      const refused = await fetch(`${regauth.url}/auth?service=registry`, {
        headers: { authorization: `Basic ${btoa("carol:carol-pw")}` },
      });
      expect(refused.status).toBe(401);
      await regauth.stderr.waitFor(
        /level=error msg="LDAP server unavailable; LDAP login refused" status=503/,
      );
      expect(regauth.stderr.text).not.toContain("carol-pw");
      expect(regauth.stderr.text).not.toContain(SERVICE_PASSWORD);
      const local = await skopeoPush(image, `${registry.host}/local/app:v1`, "local:local-pw");
      expect(local.exitCode).toBe(0);
    } finally {
      await slapd.start();
    }
    const again = await skopeoPush(image, `${registry.host}/developers/app:v2`, "carol:carol-pw");
    expect(again.exitCode).toBe(0);
    await regauth.stderr.waitFor(/LDAP server answers again/);
  });
});

describe("LDAP groups select database groups (accounts.group_labels) with the real registry 2.8", async () => {
  const slapd = await startSlapd();
  const erin = person("erin", "erin-pw");
  await slapd.add([erin, person("frank", "frank-pw"), group("builders", [erin.dn])]);
  afterAll(() => slapd.stop());

  const dir = makeTempDir("regauth-ldap-groups-");
  const dataDir = join(dir, "data");
  const passwordFile = join(dir, "ldap-password");
  writeFileSync(passwordFile, SERVICE_PASSWORD);
  // The database group and its grant, made with the CLI as an administrator would.
  for (const argv of [
    ["group", "create", "builders"],
    ["perm", "grant", "@builders", "ci/*", "write"],
  ]) {
    const done = await run([BINARY, ...argv, "--data-dir", dataDir]);
    if (done.exitCode !== 0) throw new Error(`regauth ${argv.join(" ")}: ${done.stderr}`);
  }

  const regauth = await startRegauth({
    dir,
    configYaml: `
server:
  addr: 127.0.0.1:{{PORT}}
token:
  issuer: ldap-groups-e2e
${ldapAuthSection(slapd, passwordFile)}
accounts:
  group_labels: [group]
`,
  });
  const registry = await startRegistry({
    realm: `${regauth.url}/auth`,
    issuer: "ldap-groups-e2e",
    service: "registry",
    certificatePath: regauth.certificatePath,
  });
  const image = makeOciImage("pushed through a database group\n");

  it("a member of the LDAP group pushes where the database group may write", async () => {
    const push = await skopeoPush(image, `${registry.host}/ci/app:v1`, "erin:erin-pw");
    expect(push.stderr).not.toContain("denied");
    expect(push.exitCode).toBe(0);
  });

  it("but nowhere else, and a user outside the group not even there", async () => {
    const elsewhere = await skopeoPush(image, `${registry.host}/other/app:v1`, "erin:erin-pw");
    expect(elsewhere.exitCode).not.toBe(0);
    const outsider = await skopeoPush(image, `${registry.host}/ci/app:v2`, "frank:frank-pw");
    expect(outsider.exitCode).not.toBe(0);
    expect(outsider.stderr).toMatch(/denied|unauthorized/);
  });
});
