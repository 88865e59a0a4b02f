/**
 * Signing keys and tokens (distribution docs/spec/auth/jwt.md): PEM encodings, the algorithm that
 * follows the key, both `kid` formats checked against independent computations, `x5c`, claims,
 * and the generated self-signed certificate checked by openssl.
 */
import { beforeAll, describe, expect, it } from "bun:test";
import { createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  calculateJwkThumbprint,
  decodeProtectedHeader,
  errors,
  exportJWK,
  importX509,
  jwtVerify,
} from "jose";
import {
  ensureGeneratedKey,
  loadSigningKey,
  type SigningAlgorithm,
  type SigningKey,
} from "../../src/token/keys.ts";
import { signRegistryToken } from "../../src/token/sign.ts";
import { makeTempDir } from "../helpers.ts";
import { type KeyFixture, type KeySpec, makeKey, runChecked } from "../key-fixtures.ts";

const PATHS = { key: "token.key", certificate: "token.certificate" };

async function load(fixture: KeyFixture, useThumbprintKid = false): Promise<SigningKey> {
  const { key, problems } = await loadSigningKey({ ...fixture, useThumbprintKid }, PATHS);
  expect(problems).toEqual([]);
  if (!key) throw new Error("no key");
  return key;
}

/** libtrust's key ID computed by openssl and coreutils, independently of src/token/keys.ts. */
function libtrustKeyIdByOpenssl(keyPath: string): string {
  const base32 = runChecked([
    "bash",
    "-c",
    'openssl pkey -in "$0" -pubout -outform DER | openssl dgst -sha256 -binary | head -c 30 | base32 -w0',
    keyPath,
  ]).replace(/=+$/, "");
  return base32.match(/.{4}/g)?.join(":") ?? "";
}

function sign(key: SigningKey, overrides: Partial<Parameters<typeof signRegistryToken>[1]> = {}): string {
  return signRegistryToken(key, {
    issuer: "test-issuer",
    subject: "alice",
    audience: "registry.example.com",
    access: [{ type: "repository", name: "alice/app", actions: ["pull", "push"] }],
    issuedAtSeconds: Math.floor(Date.now() / 1000),
    ttlSeconds: 300,
    ...overrides,
  });
}

const formats: { name: string; spec: KeySpec; alg: SigningAlgorithm; signatureBytes?: number }[] = [
  {
    name: "PKCS#1 RSA",
    spec: { kind: "rsa", bits: 2048, encoding: "pkcs1" },
    alg: "RS256",
    signatureBytes: 256,
  },
  {
    name: "PKCS#8 RSA",
    spec: { kind: "rsa", bits: 3072, encoding: "pkcs8" },
    alg: "RS256",
    signatureBytes: 384,
  },
  {
    name: "PKCS#8 EC P-256",
    spec: { kind: "ec", curve: "P-256", encoding: "pkcs8" },
    alg: "ES256",
    signatureBytes: 64,
  },
  {
    name: "SEC1 EC P-256",
    spec: { kind: "ec", curve: "P-256", encoding: "sec1" },
    alg: "ES256",
    signatureBytes: 64,
  },
  {
    name: "SEC1 EC P-384",
    spec: { kind: "ec", curve: "P-384", encoding: "sec1" },
    alg: "ES384",
    signatureBytes: 96,
  },
  {
    name: "PKCS#8 EC P-521",
    spec: { kind: "ec", curve: "P-521", encoding: "pkcs8" },
    alg: "ES512",
    signatureBytes: 132,
  },
];

describe.each(formats)("$name", ({ spec, alg, signatureBytes }) => {
  let fixture: KeyFixture;
  let key: SigningKey;
  beforeAll(async () => {
    fixture = makeKey(spec);
    key = await load(fixture);
  });

  it(`signs with ${alg}`, () => {
    expect(key.alg).toBe(alg);
    expect(decodeProtectedHeader(sign(key)).alg).toBe(alg);
  });

  it("verifies with jose against the certificate, with explicit algorithms", async () => {
    const token = sign(key);
    const certificatePem = await Bun.file(fixture.certificatePath).text();
    const publicKey = await importX509(certificatePem, alg);
    const { payload } = await jwtVerify(token, publicKey, {
      algorithms: [alg],
      issuer: "test-issuer",
      audience: "registry.example.com",
    });
    expect(payload.sub).toBe("alice");
    // JWS wants raw r||s for ECDSA (RFC 7518 §3.4), not DER.
    expect(Buffer.from(token.split(".")[2] ?? "", "base64url")).toHaveLength(signatureBytes ?? 0);
  });

  it("is refused when the verifier allows another algorithm only", async () => {
    const publicKey = await importX509(await Bun.file(fixture.certificatePath).text(), alg);
    const other = alg === "RS256" ? "ES256" : "RS256";
    await expect(jwtVerify(sign(key), publicKey, { algorithms: [other] })).rejects.toBeInstanceOf(
      errors.JOSEAlgNotAllowed,
    );
  });

  it("kid is libtrust's key ID by default, equal to openssl's computation", () => {
    const { kid } = decodeProtectedHeader(sign(key));
    expect(kid).toMatch(/^(?:[A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);
    expect(kid).toBe(libtrustKeyIdByOpenssl(fixture.keyPath));
  });

  it("kid is the RFC 7638 thumbprint with disable_legacy_key_id", async () => {
    const thumbprintKey = await load(fixture, true);
    const { kid } = decodeProtectedHeader(sign(thumbprintKey));
    const publicKey = createPublicKey(await Bun.file(fixture.keyPath).text());
    const expected = await calculateJwkThumbprint(await exportJWK(publicKey), "sha256");
    expect(kid).toBe(expected);
    expect(kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it("x5c carries the certificate as standard base64 DER", async () => {
    const { x5c } = decodeProtectedHeader(sign(key));
    const der = new X509Certificate(await Bun.file(fixture.certificatePath).text()).raw.toString("base64");
    expect(x5c).toEqual([der]);
    expect(x5c?.[0]).toMatch(/^[A-Za-z0-9+/]+=*$/);
  });
});

describe("claims", () => {
  let key: SigningKey;
  let certificatePem: string;
  beforeAll(async () => {
    const fixture = makeKey({ kind: "ec", curve: "P-256", encoding: "pkcs8" });
    key = await load(fixture);
    certificatePem = await Bun.file(fixture.certificatePath).text();
  });

  it("has iss, sub, a string aud, exp, nbf, iat, jti and access", async () => {
    const issuedAtSeconds = Math.floor(Date.now() / 1000);
    const token = sign(key, { issuedAtSeconds, ttlSeconds: 600 });
    const { payload, protectedHeader } = await jwtVerify(token, await importX509(certificatePem, "ES256"), {
      algorithms: ["ES256"],
    });
    expect(protectedHeader.typ).toBe("JWT");
    expect(payload.iss).toBe("test-issuer");
    expect(payload.sub).toBe("alice");
    expect(payload.aud).toBe("registry.example.com"); // registry 2.8 cannot decode an array aud
    expect(payload.iat).toBe(issuedAtSeconds);
    expect(payload.exp).toBe(issuedAtSeconds + 600);
    expect(payload.nbf).toBeLessThanOrEqual(issuedAtSeconds);
    expect(issuedAtSeconds - (payload.nbf ?? 0)).toBeLessThanOrEqual(60);
    expect(typeof payload.jti).toBe("string");
    expect(payload.access).toEqual([{ type: "repository", name: "alice/app", actions: ["pull", "push"] }]);
  });

  it('anonymous tokens have sub "" and an empty access list stays []', async () => {
    const token = sign(key, { subject: "", access: [] });
    const claims = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString());
    expect(claims.sub).toBe("");
    expect(claims.access).toEqual([]);
  });

  it("keeps a resource class in access", () => {
    const token = sign(key, {
      access: [{ type: "repository", class: "plugin", name: "vieux/sshfs", actions: ["pull"] }],
    });
    const claims = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString());
    expect(claims.access).toEqual([
      { type: "repository", class: "plugin", name: "vieux/sshfs", actions: ["pull"] },
    ]);
  });

  it("jti is unique and random", () => {
    const jtis = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const claims = JSON.parse(Buffer.from(sign(key).split(".")[1] ?? "", "base64url").toString());
      jtis.add(claims.jti);
    }
    expect(jtis.size).toBe(500);
    for (const jti of jtis) expect(jti).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("two tokens with the same claims differ (random jti, ECDSA nonce)", () => {
    const issuedAtSeconds = 1_700_000_000;
    expect(sign(key, { issuedAtSeconds })).not.toBe(sign(key, { issuedAtSeconds }));
  });
});

describe("the generated key and self-signed certificate", () => {
  let dir: string;
  let generated: ReturnType<typeof ensureGeneratedKey>;
  beforeAll(() => {
    dir = makeTempDir();
    generated = ensureGeneratedKey(dir);
  });

  it("is created once, mode 0600, and reused", () => {
    expect(generated.created).toBe(true);
    expect(statSync(generated.keyPath).mode & 0o777).toBe(0o600);
    expect(statSync(generated.certificatePath).mode & 0o777).toBe(0o600);
    const again = ensureGeneratedKey(dir);
    expect(again.created).toBe(false);
    expect(again.keyPath).toBe(generated.keyPath);
  });

  it("refuses half a pair, telling the operator to give the registries token-bundle.crt", () => {
    const half = makeTempDir();
    writeFileSync(join(half, "token.key"), "k", { mode: 0o600 });
    // The registry's rootcertbundle is token-bundle.crt (it holds every published key).
    expect(() => ensureGeneratedKey(half)).toThrow(
      /token\.crt is missing: .* give every registry the new token-bundle\.crt as rootcertbundle/,
    );
  });

  it("parses with node's X509Certificate and belongs to the key", async () => {
    const certificate = new X509Certificate(await Bun.file(generated.certificatePath).text());
    const privateKeyPem = await Bun.file(generated.keyPath).text();
    expect(certificate.checkPrivateKey(createPrivateKey(privateKeyPem))).toBe(true);
    expect(certificate.verify(certificate.publicKey)).toBe(true);
    expect(certificate.subject).toContain("regauth");
    expect(Date.parse(certificate.validFrom)).toBeLessThanOrEqual(Date.now());
    expect(Date.parse(certificate.validTo)).toBeGreaterThan(Date.now() + 5 * 365 * 86_400_000);
  });

  it("verifies with openssl verify -CAfile", () => {
    const output = runChecked([
      "openssl",
      "verify",
      "-CAfile",
      generated.certificatePath,
      generated.certificatePath,
    ]);
    expect(output).toContain(": OK");
  });

  it("openssl agrees it is an EC P-256 key with a CA certificate", () => {
    const text = runChecked(["openssl", "x509", "-in", generated.certificatePath, "-noout", "-text"]);
    expect(text).toContain("prime256v1");
    expect(text).toContain("CA:TRUE");
    expect(text).toContain("ecdsa-with-SHA256");
  });

  it("loads as an ES256 signing key whose x/y have no leading zero byte", async () => {
    const key = await load({ ...generated, privateKey: null, publicKey: null });
    expect(key.alg).toBe("ES256");
    for (const coordinate of [key.publicJwk.x, key.publicJwk.y])
      expect(Buffer.from(coordinate ?? "", "base64url")[0]).not.toBe(0);
  });
});

describe("certificate chains", () => {
  it("x5c lists every certificate of the file, leaf first", async () => {
    const leaf = makeKey({ kind: "ec", curve: "P-256", encoding: "pkcs8" });
    const other = makeKey({ kind: "ec", curve: "P-256", encoding: "pkcs8" });
    const chainPath = `${makeTempDir()}/chain.crt`;
    const leafPem = await Bun.file(leaf.certificatePath).text();
    const otherPem = await Bun.file(other.certificatePath).text();
    await Bun.write(chainPath, `${leafPem}\n${otherPem}`);
    const key = await load({ ...leaf, certificatePath: chainPath });
    const { x5c } = decodeProtectedHeader(sign(key));
    expect(x5c).toEqual([leafPem, otherPem].map((pem) => new X509Certificate(pem).raw.toString("base64")));
  });

  it("a chain whose first certificate is not the key's is refused", async () => {
    const leaf = makeKey({ kind: "ec", curve: "P-256", encoding: "pkcs8" });
    const other = makeKey({ kind: "ec", curve: "P-256", encoding: "pkcs8" });
    const chainPath = `${makeTempDir()}/chain.crt`;
    await Bun.write(
      chainPath,
      `${await Bun.file(other.certificatePath).text()}${await Bun.file(leaf.certificatePath).text()}`,
    );
    const { problems } = await loadSigningKey(
      { keyPath: leaf.keyPath, certificatePath: chainPath, useThumbprintKid: false },
      PATHS,
    );
    expect(problems.map((p) => p.path)).toEqual(["token.certificate"]);
  });
});
