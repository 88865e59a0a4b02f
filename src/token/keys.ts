/**
 * Signing keys: loading PEM files, choosing the JWS algorithm, computing the `kid` the registry
 * looks up, and generating a key with a self-signed certificate for the embedded default.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
  X509Certificate,
} from "node:crypto";
import { lstatSync, readFileSync, statSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { calculateJwkThumbprint, type JWK } from "jose";
import type { ConfigProblem } from "../errors.ts";
import { dataDirFileProblem, dataDirOwnerToChownTo } from "../db/data-dir.ts";
import { readPrivateFile, writePrivateFile } from "../fs/private-file.ts";
import { log } from "../log.ts";
import { der } from "./der.ts";

export type SigningAlgorithm = "RS256" | "ES256" | "ES384" | "ES512";

export interface SigningKey {
  alg: SigningAlgorithm;
  privateKey: KeyObject;
  publicJwk: JWK;
  /** What goes in the JWS header: libtrust ID (registry 2.x) or RFC 7638 thumbprint (3.x). */
  kid: string;
  libtrustKeyId: string;
  thumbprint: string;
  /** Leaf first; sent as `x5c` so registry 2.x and 3.x both verify by chain (jwt.md). */
  certificates: X509Certificate[];
  /** base64url of the JWS header, computed once: it is the same for every token. */
  headerB64: string;
  hash: "sha256" | "sha384" | "sha512";
  isEc: boolean;
}

const CURVES: Record<string, { alg: SigningAlgorithm; hash: SigningKey["hash"] }> = {
  prime256v1: { alg: "ES256", hash: "sha256" },
  secp384r1: { alg: "ES384", hash: "sha384" },
  secp521r1: { alg: "ES512", hash: "sha512" },
};

export interface KeyFiles {
  keyPath: string;
  certificatePath?: string | undefined;
  useThumbprintKid: boolean;
  /**
   * The pair regauth generated in its data directory: read without following symlinks (review
   * finding 10). Configured paths may be links (certbot's live/ directory is made of them).
   */
  inDataDir?: boolean;
}

/**
 * Loads a PEM key (PKCS#1, PKCS#8 or SEC1) and its certificate chain. Returns the key, or the
 * problems found, each tagged with `pathPrefix` (the config keys that named the files).
 */
export async function loadSigningKey(
  files: KeyFiles,
  pathPrefix: { key: string; certificate: string },
): Promise<{ key?: SigningKey; problems: ConfigProblem[] }> {
  const problems: ConfigProblem[] = [];
  let privateKey: KeyObject;
  try {
    warnIfReadableByOthers(files.keyPath);
    privateKey = createPrivateKey(
      files.inDataDir ? readPrivateFile(files.keyPath) : readFileSync(files.keyPath),
    );
  } catch (error) {
    // BoringSSL (Bun) answers DECODE_ERROR for every key it cannot parse, including EC keys on
    // curves it does not know (secp256k1); say what is accepted instead of echoing that.
    const reason = /DECODE_ERROR|NO_START_LINE|unsupported/i.test(describeError(error))
      ? "not a private key regauth can use (RSA, or EC on P-256, P-384 or P-521; PEM as PKCS#1, PKCS#8 or SEC1)"
      : describeError(error);
    problems.push({ path: pathPrefix.key, message: `cannot load private key ${files.keyPath}: ${reason}` });
    return { problems };
  }
  const publicKey = createPublicKey(privateKey);
  let alg: SigningAlgorithm;
  let hash: SigningKey["hash"];
  if (privateKey.asymmetricKeyType === "rsa") {
    const bits = privateKey.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048)
      problems.push({
        path: pathPrefix.key,
        message: `RSA key has ${bits} bits; at least 2048 required (RFC 7518 §3.3)`,
      });
    alg = "RS256";
    hash = "sha256";
  } else if (privateKey.asymmetricKeyType === "ec") {
    const curve = CURVES[privateKey.asymmetricKeyDetails?.namedCurve ?? ""];
    if (!curve) {
      problems.push({
        path: pathPrefix.key,
        message: `unsupported EC curve ${privateKey.asymmetricKeyDetails?.namedCurve}; use P-256, P-384 or P-521`,
      });
      return { problems };
    }
    ({ alg, hash } = curve);
  } else {
    problems.push({
      path: pathPrefix.key,
      message: `unsupported key type ${privateKey.asymmetricKeyType}; use RSA or EC`,
    });
    return { problems };
  }

  const certificates: X509Certificate[] = [];
  if (files.certificatePath !== undefined) {
    try {
      certificates.push(
        ...splitPemCertificates(
          files.inDataDir
            ? readPrivateFile(files.certificatePath).toString("utf8")
            : readFileSync(files.certificatePath, "utf8"),
        ).map((pem) => new X509Certificate(pem)),
      );
      if (certificates.length === 0) throw new Error("no CERTIFICATE block found");
    } catch (error) {
      problems.push({
        path: pathPrefix.certificate,
        message: `cannot load certificate ${files.certificatePath}: ${describeError(error)}`,
      });
    }
    const leaf = certificates[0];
    if (leaf) {
      const spki = (k: KeyObject) => k.export({ type: "spki", format: "der" });
      if (!spki(leaf.publicKey).equals(spki(publicKey))) {
        problems.push({
          path: pathPrefix.certificate,
          message: `certificate ${files.certificatePath} does not belong to the key ${files.keyPath}`,
        });
      }
      const now = Date.now();
      if (Date.parse(leaf.validTo) < now) {
        problems.push({
          path: pathPrefix.certificate,
          message: `certificate expired on ${leaf.validTo}; the registry rejects tokens signed under it`,
        });
      } else if (Date.parse(leaf.validFrom) > now) {
        problems.push({
          path: pathPrefix.certificate,
          message: `certificate is not valid before ${leaf.validFrom}`,
        });
      } else if (Date.parse(leaf.validTo) - now < 30 * 86_400_000) {
        log.warn("token certificate expires within 30 days", {
          certificate: files.certificatePath,
          valid_to: leaf.validTo,
        });
      }
    }
  }
  if (problems.length > 0) return { problems };

  const publicJwk = publicKey.export({ format: "jwk" }) as JWK;
  const libtrustKeyId = libtrustKeyIdOf(publicKey);
  const thumbprint = await calculateJwkThumbprint(publicJwk, "sha256");
  if (
    alg !== "RS256" &&
    files.useThumbprintKid &&
    certificates.length === 0 &&
    hasLeadingZeroCoordinate(publicJwk)
  ) {
    // distribution's getJWKThumbprint strips leading zero bytes from x/y, so its kid differs
    // from RFC 7638 for this key. Without x5c the registry would not find the key.
    log.warn(
      "this EC key has a coordinate with a leading zero byte; registry 3.x computes a different kid for it. Configure token.certificate so tokens carry x5c, or use another key",
    );
  }
  const kid = files.useThumbprintKid ? thumbprint : libtrustKeyId;
  const header: Record<string, unknown> = { typ: "JWT", alg, kid };
  if (certificates.length > 0) header.x5c = certificates.map((c) => c.raw.toString("base64"));
  return {
    key: {
      alg,
      privateKey,
      publicJwk,
      kid,
      libtrustKeyId,
      thumbprint,
      certificates,
      headerB64: Buffer.from(JSON.stringify(header)).toString("base64url"),
      hash,
      isEc: alg !== "RS256",
    },
    problems,
  };
}

/**
 * libtrust's KeyID (docker/libtrust util.go keyIDFromCryptoKey), which registry 2.x uses to find
 * a rootcertbundle key: SHA-256 of the DER SubjectPublicKeyInfo, first 240 bits, base32 without
 * padding, in twelve groups of four joined by ':'.
 */
export function libtrustKeyIdOf(publicKey: KeyObject): string {
  const digest = createHash("sha256")
    .update(publicKey.export({ type: "spki", format: "der" }))
    .digest()
    .subarray(0, 30);
  const encoded = base32(digest);
  return encoded.match(/.{4}/g)?.join(":") ?? encoded;
}

function base32(bytes: Uint8Array): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

function hasLeadingZeroCoordinate(jwk: JWK): boolean {
  return [jwk.x, jwk.y].some((c) => c !== undefined && Buffer.from(c, "base64url")[0] === 0);
}

function splitPemCertificates(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

function warnIfReadableByOthers(path: string): void {
  const mode = statSync(path).mode;
  if (mode & 0o077)
    log.warn("private key file is readable by group or others; chmod 600 it", {
      path,
      mode: (mode & 0o777).toString(8),
    });
}

function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return "no such file";
    if (code === "EACCES") return "permission denied";
    if (code === "EISDIR") return "is a directory";
    // OpenSSL's reasons ("error:0900006e:PEM routines:OPENSSL_internal:NO_START_LINE") in words.
    if (error.message.includes("NO_START_LINE"))
      return "no PEM private key in the file (expected PKCS#1, PKCS#8 or SEC1: -----BEGIN PRIVATE KEY----- or the RSA/EC variant)";
    if (error.message.includes("BAD_BASE64_DECODE")) return "the PEM block is corrupt (bad base64)";
    if (/passphrase required/i.test(error.message))
      return "the key is encrypted; give regauth an unencrypted copy (openssl pkey -in KEY -out PLAIN)";
    return error.message.split("\n")[0] ?? "unreadable";
  }
  return String(error);
}

export const GENERATED_KEY_FILE = "token.key";
export const GENERATED_CERT_FILE = "token.crt";

/**
 * Makes sure the data directory holds a signing key and a self-signed certificate, creating an
 * EC P-256 pair on first run (files mode 0600). Returns their paths and whether they are new.
 */
export function ensureGeneratedKey(dataDir: string): {
  keyPath: string;
  certificatePath: string;
  created: boolean;
} {
  const keyPath = join(dataDir, GENERATED_KEY_FILE);
  const certificatePath = join(dataDir, GENERATED_CERT_FILE);
  // lstat: a dangling symlink is a name that exists, not a missing file to generate.
  const hasKey = pathExists(keyPath);
  const hasCertificate = pathExists(certificatePath);
  // Never a planted symlink or another user's file (review finding 10).
  for (const path of [keyPath, certificatePath]) {
    const problem = dataDirFileProblem(path);
    if (problem) throw new Error(problem);
  }
  if (hasKey && hasCertificate) return { keyPath, certificatePath, created: false };
  if (hasKey || hasCertificate) {
    // Half a pair: generating a new one would silently rotate the key, and every registry
    // trusting the old certificate would reject our tokens. Make the operator choose.
    const [present, missing] = hasKey ? [keyPath, certificatePath] : [certificatePath, keyPath];
    throw new Error(
      `${present} exists but ${missing} is missing: restore it from a backup, or delete ${present} to generate a new pair (then give every registry the new token-bundle.crt as rootcertbundle and restart it)`,
    );
  }
  const pair = generateSigningKeyPair();
  // Exclusive and atomic (src/fs/private-file.ts): a full disk leaves no 0-byte token.key, a
  // second server starting at the same moment fails here instead of overwriting the first's
  // key, and a planted token.key symlink is never followed (issue 8 L4).
  const owner = dataDirOwnerToChownTo(dataDir);
  writePrivateFile(keyPath, pair.keyPem, { exclusive: true, owner });
  try {
    writePrivateFile(certificatePath, pair.certificatePem, { exclusive: true, owner });
  } catch (error) {
    unlinkSync(keyPath); // ours, written just now and used by nothing: never leave half a pair
    throw error;
  }
  return { keyPath, certificatePath, created: true };
}

/** An EC P-256 key (PKCS#8 PEM) and its self-signed certificate: the generated key and each rotation's. */
export function generateSigningKeyPair(): { keyPem: string; certificatePem: string } {
  let pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
  // Regenerate until neither coordinate starts with a zero byte, so that every registry version
  // computes the same kid for this key (see hasLeadingZeroCoordinate).
  while (hasLeadingZeroCoordinate(pair.publicKey.export({ format: "jwk" }) as JWK)) {
    pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
  }
  const certificateDer = selfSignedCertificate(pair.privateKey, pair.publicKey, "regauth token signer");
  return {
    keyPem: pair.privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    certificatePem: toPem("CERTIFICATE", certificateDer),
  };
}

function pathExists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
}

const VALIDITY_YEARS = 10;

/** A self-signed X.509 v3 certificate (RFC 5280) for an EC P-256 key, signed ecdsa-with-SHA256. */
export function selfSignedCertificate(
  privateKey: KeyObject,
  publicKey: KeyObject,
  commonName: string,
): Buffer {
  const spki = publicKey.export({ type: "spki", format: "der" });
  const name = der.sequence(der.set(der.sequence(der.oid("2.5.4.3"), der.utf8String(commonName))));
  const ecdsaWithSha256 = der.sequence(der.oid("1.2.840.10045.4.3.2"));
  const serial = randomBytes(16);
  serial[0] = (serial[0] as number) & 0x7f; // positive, RFC 5280 §4.1.2.2
  const notBefore = new Date(Date.now() - 3_600_000); // an hour of slack for clock skew
  const notAfter = new Date(notBefore.getTime() + VALIDITY_YEARS * 365 * 86_400_000);
  // SubjectPublicKeyInfo is SEQUENCE { algorithm, BIT STRING }; the key bits follow a 0x00 unused-bits byte.
  const publicKeyBits = spki.subarray(spki.length - 65);
  const keyIdentifier = createHash("sha1").update(publicKeyBits).digest();
  const extensions = der.sequence(
    der.sequence(der.oid("2.5.29.19"), der.boolean(true), der.octetString(der.sequence(der.boolean(true)))),
    der.sequence(
      der.oid("2.5.29.15"),
      der.boolean(true),
      der.octetString(der.bitString(Uint8Array.of(0x84), 2)),
    ),
    der.sequence(der.oid("2.5.29.14"), der.octetString(der.octetString(keyIdentifier))),
  );
  const tbs = der.sequence(
    der.explicit(0, der.integer(Uint8Array.of(2))),
    der.integer(serial),
    ecdsaWithSha256,
    name,
    der.sequence(der.time(notBefore), der.time(notAfter)),
    name,
    spki,
    der.explicit(3, extensions),
  );
  const signature = sign("sha256", tbs, privateKey);
  return Buffer.from(der.sequence(tbs, ecdsaWithSha256, der.bitString(signature)));
}

export function toPem(label: string, bytes: Uint8Array): string {
  const base64 = Buffer.from(bytes).toString("base64");
  return `-----BEGIN ${label}-----\n${base64.match(/.{1,64}/g)?.join("\n")}\n-----END ${label}-----\n`;
}
