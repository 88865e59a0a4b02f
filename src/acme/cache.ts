/**
 * The ACME state in cache_dir (issue 16 item 2): the account key and the certificate with its
 * key, each one file, written atomically with mode 0600 (src/fs/private-file.ts) and never read
 * or written through a planted symlink or another user's file (src/db/data-dir.ts). A restart
 * reads them back, so no new order is placed while the certificate is valid.
 */
import { generateKeyPairSync } from "node:crypto";
import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import {
  dataDirFileProblem,
  dataDirOwnerToChownTo,
  dataDirTrustProblem,
  ensureDataDirSecret,
} from "../db/data-dir.ts";
import { readPrivateFile, writePrivateFile } from "../fs/private-file.ts";

export const ACCOUNT_KEY_FILE = "acme-account.key";
/** The certificate chain and its key in one file, so that a crash can never pair one with another's. */
export const CERTIFICATE_FILE = "acme-certificate.json";

export interface CachedCertificate {
  host: string;
  /** The CA it came from: a switch from staging to production must order anew. */
  directoryUrl: string;
  keyPem: string;
  chainPem: string;
}

/** Creates cache_dir (0700) when missing; throws when others could plant files in it. */
export function prepareCacheDir(cacheDir: string): void {
  if (!existsSync(cacheDir)) mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
  if (!statSync(cacheDir).isDirectory()) throw new Error(`cache_dir ${cacheDir} is not a directory`);
  const problem = dataDirTrustProblem(cacheDir);
  if (problem) throw new Error(problem.replace(/^data directory/, "cache_dir"));
}

/** The account key (PEM, ECDSA P-256), created on first use. */
export function ensureAccountKey(cacheDir: string): Buffer {
  return ensureDataDirSecret(cacheDir, ACCOUNT_KEY_FILE, "the ACME account key", () =>
    generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }),
  );
}

/**
 * The cached certificate, or null when there is none. Throws on a symlink or a foreign file
 * (refused, never followed); a file that is not ours in shape is reported as such.
 */
export function readCachedCertificate(cacheDir: string): CachedCertificate | null {
  const path = join(cacheDir, CERTIFICATE_FILE);
  const problem = dataDirFileProblem(path);
  if (problem) throw new Error(problem);
  if (!existsSync(path)) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readPrivateFile(path).toString("utf8"));
  } catch (error) {
    throw new Error(`${path} cannot be read as regauth's certificate cache: ${(error as Error).message}`);
  }
  if (!isCachedCertificate(parsed)) throw new Error(`${path} is not regauth's certificate cache`);
  return parsed;
}

/** Replaces the cached certificate atomically (0600; a planted link at the name is refused). */
export function writeCachedCertificate(cacheDir: string, certificate: CachedCertificate): void {
  const path = join(cacheDir, CERTIFICATE_FILE);
  const problem = dataDirFileProblem(path);
  if (problem) throw new Error(problem);
  const { host, directoryUrl, keyPem, chainPem } = certificate;
  writePrivateFile(path, `${JSON.stringify({ host, directoryUrl, keyPem, chainPem }, null, 2)}\n`, {
    exclusive: false,
    owner: dataDirOwnerToChownTo(cacheDir),
  });
}

function isCachedCertificate(value: unknown): value is CachedCertificate {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return ["host", "directoryUrl", "keyPem", "chainPem"].every((k) => typeof v[k] === "string");
}

/**
 * Failed orders in a row, kept across starts: serve exits when its first order fails, and systemd
 * (Restart=on-failure, RestartSec=2s) starts it again, so without a record each restart ordered
 * anew, hundreds an hour against the CA's limits (Let's Encrypt: 5 failed validations an hour).
 */
export const ORDER_FAILURES_FILE = "acme-order-failures.json";

export interface OrderFailures {
  failures: number;
  lastAtMs: number;
  /** The CA's Retry-After with the last failure, if any. */
  retryAfterMs: number | null;
  error: string;
}

/** The record, or null when there is none or it is not ours in shape (then it is started anew). */
export function readOrderFailures(cacheDir: string): OrderFailures | null {
  const path = join(cacheDir, ORDER_FAILURES_FILE);
  const problem = dataDirFileProblem(path);
  if (problem) throw new Error(problem);
  if (!existsSync(path)) return null;
  try {
    const v = JSON.parse(readPrivateFile(path).toString("utf8")) as Record<string, unknown>;
    const ok =
      Number.isSafeInteger(v.failures) &&
      (v.failures as number) > 0 &&
      Number.isSafeInteger(v.lastAtMs) &&
      (v.retryAfterMs === null || Number.isSafeInteger(v.retryAfterMs)) &&
      typeof v.error === "string";
    return ok ? (v as unknown as OrderFailures) : null;
  } catch {
    return null;
  }
}

export function writeOrderFailures(cacheDir: string, record: OrderFailures): void {
  const path = join(cacheDir, ORDER_FAILURES_FILE);
  const problem = dataDirFileProblem(path);
  if (problem) throw new Error(problem);
  writePrivateFile(path, `${JSON.stringify(record)}\n`, {
    exclusive: false,
    owner: dataDirOwnerToChownTo(cacheDir),
  });
}

export function clearOrderFailures(cacheDir: string): void {
  rmSync(join(cacheDir, ORDER_FAILURES_FILE), { force: true });
}
