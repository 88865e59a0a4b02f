/**
 * Signing keys, key IDs, TLS and path_prefix against the real registry 2.8: every token format
 * regauth can emit must be one the registry verifies.
 */
import { describe, expect, it } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { hashPassword, makeTempDir } from "../helpers.ts";
import {
  decodeToken,
  fetchToken,
  issueServerCertificate,
  makeOciImage,
  makeSelfSignedKeyPair,
  makeTestCa,
  run,
  BINARY,
  type Regauth,
  type Registry,
  skopeoPull,
  skopeoPush,
  startRegauth,
  startRegistry,
  type TestKeyKind,
} from "./harness.ts";

const USERS_AND_ACL = `
users:
  alice:
    password: "${hashPassword("alice-secret")}"
  "": {}
acl:
  - match: {account: alice}
    actions: ["*"]
  - match: {account: ""}
    actions: [pull]
`;

/** Pushes and pulls as alice, pulls anonymously, and checks a push is still denied to anonymous. */
async function pushAndPull(registry: Registry, certDir?: string): Promise<void> {
  const image = makeOciImage(`content for ${registry.host}\n`);
  const options = certDir ? { certDir } : {};
  const push = await skopeoPush(image, `${registry.host}/alice/app:v1`, "alice:alice-secret", options);
  expect(push.stderr).toBe("");
  expect(push.exitCode).toBe(0);
  const pull = await skopeoPull(`${registry.host}/alice/app:v1`, "alice:alice-secret", options);
  expect(pull.exitCode).toBe(0);
  const anonymousPull = await skopeoPull(`${registry.host}/alice/app:v1`, undefined, options);
  expect(anonymousPull.exitCode).toBe(0);
  const anonymousPush = await skopeoPush(image, `${registry.host}/alice/app:v2`, undefined, options);
  expect(anonymousPush.exitCode).not.toBe(0);
}

async function registryFor(regauth: Regauth, realm = `${regauth.url}/auth`): Promise<Registry> {
  return startRegistry({
    realm,
    issuer: "e2e-issuer",
    service: "registry",
    certificatePath: regauth.certificatePath,
  });
}

describe("disable_legacy_key_id (registry 3.x kid) still works on registry 2.8 through x5c", async () => {
  const regauth = await startRegauth({
    configYaml: `
server: {addr: "127.0.0.1:{{PORT}}"}
token: {issuer: e2e-issuer, disable_legacy_key_id: true}
${USERS_AND_ACL}`,
  });
  const registry = await registryFor(regauth);

  it("signs with an RFC 7638 thumbprint kid and the certificate in x5c", async () => {
    const { token } = await fetchToken(`${regauth.url}/auth`, { service: "registry" }, "alice:alice-secret");
    const { header } = decodeToken(token as string);
    expect(header.kid).toMatch(/^[A-Za-z0-9_-]{43}$/); // base64url SHA-256, not libtrust's ABCD:EFGH:…
    expect(header.x5c).toHaveLength(1);
    expect(header.alg).toBe("ES256");
  });

  it("is accepted by registry 2.8 for push and pull", () => pushAndPull(registry));
});

describe("path_prefix puts the realm under the prefix", async () => {
  const regauth = await startRegauth({
    configYaml: `
server: {addr: "127.0.0.1:{{PORT}}", path_prefix: /prefix}
token: {issuer: e2e-issuer}
${USERS_AND_ACL}`,
  });
  const registry = await registryFor(regauth, `${regauth.url}/prefix/auth`);

  it("serves the token endpoint at /prefix/auth and nothing at /auth", async () => {
    expect((await fetchToken(`${regauth.url}/prefix/auth`, { service: "registry" })).status).toBe(200);
    expect((await fetchToken(`${regauth.url}/auth`, { service: "registry" })).status).toBe(404);
    expect((await fetch(`${regauth.url}/prefix/healthz`)).status).toBe(200);
  });

  it("works with the registry and skopeo", () => pushAndPull(registry));
});

describe("TLS: server.certificate and key from a test CA; clients verify the realm", async () => {
  // Two CAs, so a failure can be pinned on the realm's TLS rather than the registry's.
  const ca = await makeTestCa();
  const registryCa = await makeTestCa();
  const regauthTls = await issueServerCertificate(ca, "regauth");
  const registryTls = await issueServerCertificate(registryCa, "registry");
  const bothCas = makeTempDir("both-cas-");
  writeFileSync(join(bothCas, "regauth-ca.crt"), readFileSync(ca.certificate));
  writeFileSync(join(bothCas, "registry-ca.crt"), readFileSync(registryCa.certificate));
  // No token.key: as in docker_auth, the HTTPS key also signs tokens, with x5c = the server certificate.
  const regauth = await startRegauth({
    configYaml: `
server:
  addr: "127.0.0.1:{{PORT}}"
  certificate: ${regauthTls.certificate}
  key: ${regauthTls.key}
token: {issuer: e2e-issuer}
${USERS_AND_ACL}`,
    caFile: ca.certificate,
    // The registry trusts the CA; the token's x5c chain (the server certificate) leads to it.
    certificatePath: ca.certificate,
  });
  const registry = await startRegistry({
    realm: `${regauth.url}/auth`,
    issuer: "e2e-issuer",
    service: "registry",
    certificatePath: regauth.certificatePath,
    tls: { ...registryTls, caFile: registryCa.certificate },
  });

  it("listens on https and prints an https realm", async () => {
    expect(regauth.url).toStartWith("https://127.0.0.1:");
    const res = await fetch(`${regauth.url}/auth?service=registry`, {
      tls: { ca: Bun.file(ca.certificate) },
    });
    expect(res.status).toBe(200);
    // A client that does not trust the CA refuses the connection.
    await expect(fetch(`${regauth.url}/healthz`)).rejects.toThrow();
    const printed = await run([BINARY, "registry-config", "--config", join(regauth.dir, "auth_config.yml")]);
    expect(printed.exitCode).toBe(0);
    expect(printed.stdout).toContain(`realm: ${regauth.url}/auth\n`);
  });

  it("lets skopeo push and pull with TLS verified against the test CAs", () =>
    pushAndPull(registry, bothCas));

  it("fails the push when skopeo trusts the registry but not the realm", async () => {
    const push = await skopeoPush(makeOciImage(), `${registry.host}/alice/app:v3`, "alice:alice-secret", {
      certDir: registryCa.certDir,
    });
    expect(push.exitCode).not.toBe(0);
    expect(push.stderr).toMatch(/certificate signed by unknown authority|x509/);
    expect(push.stderr).toContain(regauth.url.replace("https://", ""));
  });
});

const KEY_CASES: [string, TestKeyKind, string][] = [
  ["RSA in PKCS#1", "rsa-pkcs1", "RS256"],
  ["EC P-384 in SEC1", "ec-p384-sec1", "ES384"],
];

for (const [what, kind, alg] of KEY_CASES) {
  describe(`token.key and token.certificate: ${what} signs ${alg}`, async () => {
    const dir = makeTempDir("token-key-");
    const pair = await makeSelfSignedKeyPair(dir, "token", kind);
    const regauth = await startRegauth({
      configYaml: `
server: {addr: "127.0.0.1:{{PORT}}"}
token:
  issuer: e2e-issuer
  key: ${pair.key}
  certificate: ${pair.certificate}
${USERS_AND_ACL}`,
      certificatePath: pair.certificate,
    });
    const registry = await registryFor(regauth);

    it(`signs with ${alg} and a libtrust kid`, async () => {
      const { token } = await fetchToken(
        `${regauth.url}/auth`,
        { service: "registry" },
        "alice:alice-secret",
      );
      const { header } = decodeToken(token as string);
      expect(header.alg).toBe(alg);
      expect(header.kid).toMatch(/^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);
    });

    it("is accepted by registry 2.8 for push and pull", () => pushAndPull(registry));
  });
}

/** Whether `openssl s_client` completes a handshake with these options (stdin closed at once). */
async function handshakes(url: string, args: string[]): Promise<boolean> {
  const { host } = new URL(url);
  const result = await run(["openssl", "s_client", "-connect", host, ...args], {
    stdin: "",
    timeoutMs: 10_000,
  });
  return result.exitCode === 0 && !result.stdout.includes("Cipher is (NONE)");
}

describe("TLS versions, suites and curves (issue 8: no CBC-SHA1 by default; docker_auth's settings)", async () => {
  const ca = await makeTestCa();
  const tls = await issueServerCertificate(ca, "regauth");
  const start = (extra: string) =>
    startRegauth({
      configYaml: `
server:
  addr: "127.0.0.1:{{PORT}}"
  certificate: ${tls.certificate}
  key: ${tls.key}
${extra}
token: {issuer: e2e-issuer}
${USERS_AND_ACL}`,
      caFile: ca.certificate,
      certificatePath: ca.certificate,
    });
  const CBC_SHA1 = ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"];
  const AEAD = ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"];
  const CHACHA = ["-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"];

  it("by default: TLS 1.2 with AEAD suites and TLS 1.3 work; CBC-SHA1 and TLS 1.1 do not", async () => {
    const regauth = await start("");
    expect(await handshakes(regauth.url, AEAD)).toBe(true);
    expect(await handshakes(regauth.url, CHACHA)).toBe(true);
    expect(await handshakes(regauth.url, ["-tls1_3"])).toBe(true);
    expect(await handshakes(regauth.url, CBC_SHA1)).toBe(false);
    expect(await handshakes(regauth.url, ["-tls1_2", "-cipher", "AES128-SHA"])).toBe(false);
    expect(await handshakes(regauth.url, ["-tls1_1"])).toBe(false);
    await regauth.stop();
  });

  it("tls_min_version: TLS13 refuses TLS 1.2", async () => {
    const regauth = await start("  tls_min_version: TLS13");
    expect(await handshakes(regauth.url, AEAD)).toBe(false);
    expect(await handshakes(regauth.url, ["-tls1_3"])).toBe(true);
    await regauth.stop();
  });

  it("tls_cipher_suites limits TLS 1.2 to the listed suites (Go names, as docker_auth takes them)", async () => {
    const regauth = await start("  tls_cipher_suites: [TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256]");
    expect(await handshakes(regauth.url, CHACHA)).toBe(true);
    expect(await handshakes(regauth.url, AEAD)).toBe(false);
    await regauth.stop();
  });

  it("tls_curve_preferences limits the key exchange groups", async () => {
    const regauth = await start("  tls_curve_preferences: [P384]");
    expect(await handshakes(regauth.url, ["-tls1_3", "-groups", "P-384"])).toBe(true);
    expect(await handshakes(regauth.url, ["-tls1_3", "-groups", "X25519"])).toBe(false);
    await regauth.stop();
  });

  it("check-config names what cannot be honoured", async () => {
    const dir = makeTempDir("tls-config-");
    const path = join(dir, "auth_config.yml");
    writeFileSync(
      path,
      `server:\n  certificate: ${tls.certificate}\n  key: ${tls.key}\n  tls_min_version: TLS10\n  tls_cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\ntoken: {issuer: x}\n`,
    );
    const checked = await run([BINARY, "check-config", path]);
    expect(checked.exitCode).toBe(1);
    const output = checked.stdout + checked.stderr;
    expect(output).toContain("server.tls_min_version");
    expect(output).toContain("RFC 8996");
    expect(output).toContain("server.tls_cipher_suites.0");
    expect(output).toContain("RC4");
  });
});
