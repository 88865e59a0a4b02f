/**
 * The ACME state in cache_dir (issue 16 item 2) and what regauth reads from a certificate: files
 * 0600, replaced atomically, never through a planted link or from another shape; the renewal
 * time and the backoff.
 */
import { describe, expect, it } from "bun:test";
import {
  chmodSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import {
  ACCOUNT_KEY_FILE,
  CERTIFICATE_FILE,
  ensureAccountKey,
  prepareCacheDir,
  readCachedCertificate,
  writeCachedCertificate,
} from "../../src/acme/cache.ts";
import { inspectCertificate, renewalAtMs, retryDelayMs } from "../../src/acme/certificate.ts";
import { makeTempDir } from "../helpers.ts";

/** A self-signed certificate for `names` (openssl: SANs), and its key. */
function certificateFor(names: string[], days = 90): { keyPem: string; chainPem: string } {
  const dir = makeTempDir("acme-cert-");
  const result = Bun.spawnSync([
    "openssl",
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    join(dir, "k.pem"),
    "-out",
    join(dir, "c.pem"),
    "-days",
    String(days),
    "-subj",
    "/CN=test",
    "-addext",
    `subjectAltName=${names.map((n) => `DNS:${n}`).join(",")}`,
  ]);
  if (result.exitCode !== 0) throw new Error(result.stderr.toString());
  return {
    keyPem: readFileSync(join(dir, "k.pem"), "utf8"),
    chainPem: readFileSync(join(dir, "c.pem"), "utf8"),
  };
}

function cacheDir(): string {
  const dir = join(makeTempDir("acme-cache-"), "cache");
  prepareCacheDir(dir);
  return dir;
}

describe("the ACME cache directory", () => {
  it("is created 0700 when missing", () => {
    const dir = cacheDir();
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  it("is refused when others may write into it", () => {
    const dir = makeTempDir("acme-open-");
    chmodSync(dir, 0o777);
    expect(() => prepareCacheDir(dir)).toThrow(/cache_dir .* writable by everyone/);
  });

  it("is refused when it is a file", () => {
    const file = join(makeTempDir(), "file");
    writeFileSync(file, "");
    expect(() => prepareCacheDir(file)).toThrow(/not a directory/);
  });
});

describe("the account key", () => {
  it("is created once, 0600, and read back the same", () => {
    const dir = cacheDir();
    const first = ensureAccountKey(dir);
    expect(first.toString()).toStartWith("-----BEGIN PRIVATE KEY-----");
    expect(statSync(join(dir, ACCOUNT_KEY_FILE)).mode & 0o777).toBe(0o600);
    expect(ensureAccountKey(dir).equals(first)).toBe(true);
  });

  it("is never read through a planted link", () => {
    const dir = cacheDir();
    const elsewhere = join(makeTempDir(), "their.key");
    writeFileSync(elsewhere, "not ours");
    symlinkSync(elsewhere, join(dir, ACCOUNT_KEY_FILE));
    expect(() => ensureAccountKey(dir)).toThrow(/symbolic link/);
  });
});

describe("the cached certificate", () => {
  const pair = certificateFor(["auth.example.org"]);
  const cached = { host: "auth.example.org", directoryUrl: "https://ca.example/dir", ...pair };

  it("is null when there is none", () => {
    expect(readCachedCertificate(cacheDir())).toBeNull();
  });

  it("is written 0600 and read back", () => {
    const dir = cacheDir();
    writeCachedCertificate(dir, cached);
    expect(statSync(join(dir, CERTIFICATE_FILE)).mode & 0o777).toBe(0o600);
    expect(readCachedCertificate(dir)).toEqual(cached);
  });

  it("is replaced atomically: the new one whole, no temporary file left", () => {
    const dir = cacheDir();
    writeCachedCertificate(dir, cached);
    const next = { ...cached, ...certificateFor(["auth.example.org"]) };
    writeCachedCertificate(dir, next);
    expect(readCachedCertificate(dir)).toEqual(next);
    expect(readdirSync(dir)).toEqual([CERTIFICATE_FILE]);
  });

  it("is neither read nor written through a planted link, whose target stays as it was", () => {
    const dir = cacheDir();
    const target = join(makeTempDir(), "target");
    writeFileSync(target, "theirs");
    symlinkSync(target, join(dir, CERTIFICATE_FILE));
    expect(() => readCachedCertificate(dir)).toThrow(/symbolic link/);
    expect(() => writeCachedCertificate(dir, cached)).toThrow(/symbolic link/);
    expect(readFileSync(target, "utf8")).toBe("theirs");
  });

  it("is refused when it is a directory", () => {
    const dir = cacheDir();
    mkdirSync(join(dir, CERTIFICATE_FILE));
    expect(() => readCachedCertificate(dir)).toThrow(/not a regular file/);
  });

  const malformed: [string, string][] = [
    ["not JSON", "-----BEGIN CERTIFICATE-----"],
    ["a JSON array", "[]"],
    ["a field missing", JSON.stringify({ host: "a", directoryUrl: "b", keyPem: "c" })],
    ["a field of another type", JSON.stringify({ host: 1, directoryUrl: "b", keyPem: "c", chainPem: "d" })],
  ];
  for (const [name, text] of malformed)
    it(`says so when the file holds ${name}`, () => {
      const dir = cacheDir();
      writeFileSync(join(dir, CERTIFICATE_FILE), text, { mode: 0o600 });
      expect(() => readCachedCertificate(dir)).toThrow(/certificate cache/);
    });
});

describe("inspectCertificate", () => {
  const pair = certificateFor(["auth.example.org"]);

  it("reads the validity and the serial", () => {
    const facts = inspectCertificate(pair.chainPem, pair.keyPem, "auth.example.org");
    expect(facts.notAfterMs - facts.notBeforeMs).toBe(90 * 86_400_000);
    expect(facts.serial).toMatch(/^[0-9a-f]+$/);
  });

  it("refuses a certificate for another name", () => {
    expect(() => inspectCertificate(pair.chainPem, pair.keyPem, "other.example.org")).toThrow(
      /not for other/,
    );
  });

  it("refuses a key that does not belong to the certificate", () => {
    const other = certificateFor(["auth.example.org"]);
    expect(() => inspectCertificate(pair.chainPem, other.keyPem, "auth.example.org")).toThrow(
      /does not belong/,
    );
  });

  it("refuses what is not a certificate", () => {
    expect(() => inspectCertificate("garbage", pair.keyPem, "auth.example.org")).toThrow(
      /not a PEM certificate/,
    );
  });

  it("does not let a wildcard certificate stand for the host", () => {
    const wildcard = certificateFor(["*.example.org"]);
    expect(() => inspectCertificate(wildcard.chainPem, wildcard.keyPem, "auth.example.org")).toThrow(
      /not for/,
    );
  });
});

describe("renewal time and backoff", () => {
  const day = 86_400_000;
  const ninetyDays = { notBeforeMs: 0, notAfterMs: 90 * day, serial: "1" };
  const twelveSeconds = { notBeforeMs: 0, notAfterMs: 12_000, serial: "1" };

  it("renews at two thirds of the lifetime", () => {
    expect(renewalAtMs(ninetyDays)).toBe(60 * day);
    expect(renewalAtMs(twelveSeconds)).toBe(8_000);
  });

  const cases: [string, typeof ninetyDays, number, number, number][] = [
    ["90 days, first failure: 5 minutes", ninetyDays, 1, 60 * day, 300_000],
    ["90 days, second failure: doubled", ninetyDays, 2, 60 * day, 600_000],
    ["90 days, many failures: at most 6 hours", ninetyDays, 30, 60 * day, 6 * 3_600_000],
    ["90 days, 3 hours left: a third of it", ninetyDays, 30, 90 * day - 3 * 3_600_000, 3_600_000],
    ["90 days, expired: the base", ninetyDays, 30, 91 * day, 300_000],
    ["12 seconds, first failure: 1 second", twelveSeconds, 1, 8_000, 1_000],
    ["12 seconds, tenth failure: a third of what is left, at least 1 s", twelveSeconds, 10, 9_000, 1_000],
  ];
  for (const [name, facts, failures, nowMs, expected] of cases)
    it(name, () => expect(retryDelayMs(facts, failures, nowMs)).toBe(expected));
});
