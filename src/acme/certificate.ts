/**
 * What regauth needs to know about an ACME certificate: whether it may be served for the host,
 * and when to renew it. Pure functions over PEM text and times (issue 16).
 */
import { createPrivateKey, X509Certificate } from "node:crypto";

export interface CertificateFacts {
  notBeforeMs: number;
  notAfterMs: number;
  /** Hex, as the CA numbered it; logged so that a swap can be followed. */
  serial: string;
}

/**
 * Reads the leaf of `chainPem` and checks it against `keyPem` and `host`. Throws an Error saying
 * what is wrong (not a certificate, another key, another name); the caller then orders a new one.
 */
export function inspectCertificate(chainPem: string, keyPem: string, host: string): CertificateFacts {
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(chainPem);
  } catch {
    throw new Error("the certificate is not a PEM certificate");
  }
  if (!leaf.checkPrivateKey(createPrivateKey(keyPem)))
    throw new Error("the certificate does not belong to its key");
  if (leaf.checkHost(host, { wildcards: false }) === undefined)
    throw new Error(`the certificate is not for ${host}`);
  return {
    notBeforeMs: Date.parse(leaf.validFrom),
    notAfterMs: Date.parse(leaf.validTo),
    serial: leaf.serialNumber.toLowerCase(),
  };
}

/**
 * When to renew: at two thirds of the lifetime, as Let's Encrypt advises for its 90-day
 * certificates (day 60, leaving 30 days to retry; certbot and autocert renew at 30 days left).
 */
export function renewalAtMs(facts: CertificateFacts): number {
  return facts.notBeforeMs + Math.round(((facts.notAfterMs - facts.notBeforeMs) * 2) / 3);
}

const MIN_RETRY_MS = 1_000;
const MAX_RETRY_MS = 6 * 3600_000;

/**
 * How long to wait after the `failures`-th failed renewal in a row: doubling from 1/100 of the
 * lifetime (21.6 hours for 90 days, so from 1 s up to at most 5 minutes) up to 6 hours, and
 * never more than a third of the time left, so the last days before expiry get several tries.
 * Let's Encrypt's rate limits (5 failed validations an hour per name) stay out of reach.
 */
export function retryDelayMs(facts: CertificateFacts, failures: number, nowMs: number): number {
  const lifetimeMs = facts.notAfterMs - facts.notBeforeMs;
  const baseMs = Math.min(Math.max(lifetimeMs / 100, MIN_RETRY_MS), 5 * 60_000);
  const doubled = baseMs * 2 ** Math.min(Math.max(failures - 1, 0), 20);
  const leftMs = facts.notAfterMs - nowMs;
  return Math.round(Math.max(MIN_RETRY_MS, Math.min(doubled, MAX_RETRY_MS, Math.max(baseMs, leftMs / 3))));
}

/**
 * When the next order may be placed after `record.failures` failed ones in a row (the record kept
 * across starts, src/acme/cache.ts): the second try at once (an operator fixing DNS restarts), then
 * 1, 2, 4 … minutes up to an hour, and never before the CA's Retry-After (capped at a day).
 */
export function nextOrderAtMs(record: {
  failures: number;
  lastAtMs: number;
  retryAfterMs: number | null;
}): number {
  const backoffMs =
    record.failures < 2 ? 0 : Math.min(60_000 * 2 ** Math.min(record.failures - 2, 10), 3600_000);
  return record.lastAtMs + Math.max(backoffMs, Math.min(record.retryAfterMs ?? 0, 24 * 3600_000));
}
