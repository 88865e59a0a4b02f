/**
 * The certificate's life in regauth (issue 16): at start, the cached one when it is still valid
 * (no new order: rate limits), else a new order, else refusal; afterwards, renewal at two thirds
 * of its lifetime with backoff, the new certificate handed to the listener without a restart.
 * A failed renewal keeps the current certificate serving and says why in the log.
 */
import { readFileSync } from "node:fs";
import { log } from "../log.ts";
import { metrics } from "../metrics/recorder.ts";
import {
  type CachedCertificate,
  clearOrderFailures,
  ensureAccountKey,
  ORDER_FAILURES_FILE,
  type OrderFailures,
  prepareCacheDir,
  readCachedCertificate,
  readOrderFailures,
  writeCachedCertificate,
  writeOrderFailures,
} from "./cache.ts";
import {
  type CertificateFacts,
  inspectCertificate,
  nextOrderAtMs,
  renewalAtMs,
  retryDelayMs,
} from "./certificate.ts";
import type { LetsEncryptConfig } from "./config-schema.ts";
import { AcmeError, isUsablePrivateKey, obtainCertificate, type OpenHttpChallenge } from "./obtain.ts";

export { AcmeError } from "./obtain.ts";

export interface AcmeCertificate {
  cert: string;
  key: string;
}

export interface AcmeManager {
  /** The certificate to serve now. */
  current(): AcmeCertificate;
  /** Renews in the background; `install` puts a new certificate in service (and may throw). */
  startRenewing(install: (next: AcmeCertificate) => Promise<void>): void;
  stop(): void;
}

export interface AcmeOptions {
  section: LetsEncryptConfig;
  cacheDir: string;
  openHttpChallenge: OpenHttpChallenge;
  nowMs?: () => number;
}

interface Serving {
  cached: CachedCertificate;
  facts: CertificateFacts;
}

/** setTimeout's limit is 2^31-1 ms (24.8 days); a renewal 60 days out is reached in steps. */
const MAX_TIMER_MS = 24 * 3600_000;
const MAX_RETRY_AFTER_MS = 24 * 3600_000;

/**
 * The certificate to start with: cached and valid, or obtained now. Throws AcmeError when there
 * is none, so that serve refuses to start rather than serve plain HTTP (docker_auth PR #420).
 */
export async function startAcme(options: AcmeOptions): Promise<AcmeManager> {
  const { section, cacheDir } = options;
  const now = options.nowMs ?? Date.now;
  let accountKey: Buffer;
  try {
    prepareCacheDir(cacheDir);
    accountKey = ensureAccountKey(cacheDir);
  } catch (error) {
    throw new AcmeError(`cannot use the ACME cache in ${cacheDir}: ${(error as Error).message}`);
  }
  if (!isUsablePrivateKey(accountKey))
    throw new AcmeError(
      `${cacheDir}/acme-account.key is not a private key regauth can read: restore it, or move it away to register a new ACME account`,
    );
  let caPem: string | null = null;
  try {
    if (section.ca_file !== undefined) caPem = readFileSync(section.ca_file, "utf8");
  } catch (error) {
    throw new AcmeError(`cannot read server.letsencrypt.ca_file: ${(error as Error).message}`);
  }
  const order = async (): Promise<Serving> => {
    log.info("ordering a certificate", { host: section.host, ca: section.directory_url });
    const obtained = await obtainCertificate({
      section,
      accountKeyPem: accountKey,
      caPem,
      openHttpChallenge: options.openHttpChallenge,
    });
    const cached = { host: section.host, directoryUrl: section.directory_url, ...obtained };
    let facts: CertificateFacts;
    try {
      facts = inspectCertificate(cached.chainPem, cached.keyPem, section.host);
    } catch (error) {
      throw new AcmeError(`the CA sent a certificate regauth cannot serve: ${(error as Error).message}`);
    }
    if (now() >= facts.notAfterMs)
      throw new AcmeError(
        `the CA sent a certificate that has already expired by this server's clock (valid until ${new Date(facts.notAfterMs).toISOString()}, now ${new Date(now()).toISOString()}): is the clock right?`,
      );
    try {
      writeCachedCertificate(cacheDir, cached);
    } catch (error) {
      // Served anyway: the certificate is good, only the next start will order again.
      log.error("cannot save the new certificate; it is served, but the next start orders another", {
        cache_dir: cacheDir,
        error: (error as Error).message,
      });
    }
    log.info("obtained a certificate", describe(section.host, facts));
    return { cached, facts };
  };

  // Failed orders in a row, across restarts too (ORDER_FAILURES_FILE): each order waits its turn.
  let failureRecord: OrderFailures | null;
  try {
    failureRecord = readOrderFailures(cacheDir);
  } catch (error) {
    throw new AcmeError(`cannot use the ACME cache in ${cacheDir}: ${(error as Error).message}`);
  }
  // A failure recorded by a clock far ahead (since set right) must not hold orders for years.
  const nextOrderAfterFailures = () =>
    failureRecord === null
      ? 0
      : nextOrderAtMs({ ...failureRecord, lastAtMs: Math.min(failureRecord.lastAtMs, now()) });
  const recordedOrder = async (): Promise<Serving> => {
    try {
      const result = await order();
      failureRecord = null;
      clearOrderFailures(cacheDir);
      return result;
    } catch (error) {
      failureRecord = {
        failures: (failureRecord?.failures ?? 0) + 1,
        lastAtMs: now(),
        retryAfterMs: error instanceof AcmeError ? error.retryAfterMs : null,
        error: (error as Error).message,
      };
      try {
        writeOrderFailures(cacheDir, failureRecord);
      } catch (writeError) {
        log.warn("cannot record the failed order; the next start may order again at once", {
          error: (writeError as Error).message,
        });
      }
      throw error;
    }
  };

  const cachedNow = usableCachedCertificate(options, now());
  let serving: Serving;
  if (cachedNow) {
    serving = cachedNow;
    log.info("using the cached certificate", describe(section.host, serving.facts));
  } else {
    const orderAtMs = nextOrderAfterFailures();
    if (failureRecord !== null && now() < orderAtMs) {
      // Waiting, not exiting: an exit would be restarted by systemd and refused again until its
      // start limit gives up on the unit.
      log.warn("the last certificate orders failed; waiting before the next, for the CA's rate limits", {
        host: section.host,
        failures: failureRecord.failures,
        last_error: failureRecord.error,
        order_at: new Date(orderAtMs).toISOString(),
        fix: `remove ${cacheDir}/${ORDER_FAILURES_FILE} to order at once`,
      });
      while (now() < orderAtMs) await Bun.sleep(Math.min(orderAtMs - now(), 1000));
    }
    try {
      serving = await recordedOrder();
    } catch (error) {
      throw new AcmeError(
        `no certificate for ${section.host}, and none could be obtained: ${(error as Error).message}. regauth does not fall back to plain HTTP; fix this and start again`,
      );
    }
  }

  let timer: ReturnType<typeof setTimeout> | null = null;
  let stopped = false;
  let failures = 0;
  // Obtained but not yet in service (the listener swap failed): installed on the next try
  // without a new order, so a local fault does not spend the CA's rate limit.
  let pending: Serving | null = null;
  const schedule = (install: (next: AcmeCertificate) => Promise<void>, atMs: number) => {
    if (stopped) return;
    const delayMs = Math.min(Math.max(atMs - now(), 0), MAX_TIMER_MS);
    timer = setTimeout(() => void tick(install, atMs), delayMs);
    timer.unref?.();
  };
  const tick = async (install: (next: AcmeCertificate) => Promise<void>, atMs: number) => {
    if (stopped) return;
    if (now() < atMs) return schedule(install, atMs); // a step of a long wait
    try {
      const next = pending !== null && now() < pending.facts.notAfterMs ? pending : await recordedOrder();
      pending = next;
      if (stopped) return; // an order may take minutes: one that ends after stop installs nothing
      await install({ cert: next.cached.chainPem, key: next.cached.keyPem });
      pending = null;
      serving = next;
      metrics.tlsCertificateServed(section.host, Math.floor(next.facts.notAfterMs / 1000));
      failures = 0;
      log.info("serving the renewed certificate", describe(section.host, next.facts));
      // A certificate due for renewal on arrival (a clock far ahead, a CA issuing them so) put the
      // next renewal in the past: an order loop at the CA's speed. No sooner than the backoff's
      // first step (1/100 of the lifetime, 1 s to 5 minutes).
      schedule(install, Math.max(renewalAtMs(next.facts), now() + retryDelayMs(next.facts, 1, now())));
    } catch (error) {
      failures += 1;
      metrics.backendError("acme");
      // The CA's Retry-After is a floor (RFC 8555 §6.6; Let's Encrypt sends it with its 429s),
      // capped at a day so that a wrong one cannot stop renewals for the certificate's life.
      const askedMs = error instanceof AcmeError ? (error.retryAfterMs ?? 0) : 0;
      const retryMs = Math.max(
        retryDelayMs(serving.facts, failures, now()),
        Math.min(askedMs, MAX_RETRY_AFTER_MS),
      );
      const expired = now() >= serving.facts.notAfterMs;
      log[expired ? "error" : "warn"](
        expired
          ? "certificate renewal failed and the certificate has expired; clients will refuse it"
          : "certificate renewal failed; still serving the current certificate",
        {
          host: section.host,
          error: (error as Error).message,
          expires_at: new Date(serving.facts.notAfterMs).toISOString(),
          failures,
          retry_in_seconds: Math.round(retryMs / 1000),
        },
      );
      schedule(install, now() + retryMs);
    }
  };
  return {
    current: () => ({ cert: serving.cached.chainPem, key: serving.cached.keyPem }),
    startRenewing(install) {
      metrics.tlsCertificateServed(section.host, Math.floor(serving.facts.notAfterMs / 1000));
      // After a restart amid failed renewals, the next try still waits its turn.
      const orderAtMs = nextOrderAfterFailures();
      schedule(install, Math.max(renewalAtMs(serving.facts), orderAtMs));
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}

/** The cached certificate when it is for this host and CA and not expired; else null (logged). */
function usableCachedCertificate(options: AcmeOptions, nowMs: number): Serving | null {
  const { section, cacheDir } = options;
  let cached: CachedCertificate | null;
  try {
    cached = readCachedCertificate(cacheDir);
  } catch (error) {
    // A symlink or a foreign file: refused, never followed; nor silently replaced.
    throw new AcmeError(`cannot use the cached certificate: ${(error as Error).message}`);
  }
  if (cached === null) return null;
  if (cached.host !== section.host || cached.directoryUrl !== section.directory_url) {
    log.info("the cached certificate is for another host or CA; ordering a new one", {
      cached_host: cached.host,
      cached_ca: cached.directoryUrl,
    });
    return null;
  }
  try {
    const facts = inspectCertificate(cached.chainPem, cached.keyPem, section.host);
    if (nowMs >= facts.notAfterMs) {
      log.info("the cached certificate has expired; ordering a new one", describe(section.host, facts));
      return null;
    }
    return { cached, facts };
  } catch (error) {
    log.warn("the cached certificate cannot be used; ordering a new one", {
      error: (error as Error).message,
    });
    return null;
  }
}

function describe(host: string, facts: CertificateFacts): Record<string, string> {
  return {
    host,
    serial: facts.serial,
    not_after: new Date(facts.notAfterMs).toISOString(),
    renew_at: new Date(renewalAtMs(facts)).toISOString(),
  };
}
