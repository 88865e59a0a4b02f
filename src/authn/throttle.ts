/**
 * Throttling of failed logins, in memory, for every authenticator (src/issue-token.ts).
 *
 * Two token buckets: one per (client IP, account) and a looser one per client IP (IPv6 by /64,
 * which one host usually owns). Keying by the pair, never by the account alone, is what keeps an
 * attacker from locking a user out: hammering `alice` from one address exhausts that address's
 * budget for alice (and, beyond the per-IP budget, for everyone), while alice at her own address
 * is unaffected. Account names are folded (case, surrounding and repeated spaces) for the key,
 * because LDAP matches `Alice` and ` alice` to the same entry.
 *
 * Every attempt is charged when it is admitted, synchronously, before anything is awaited:
 * checking first and charging after the password check would let N parallel requests all pass
 * the check (N guesses for a burst of 10). The outcome then settles the charge:
 * - success: this attempt's charges are refunded (the bucket is not cleared: a victim's own
 *   logins must not hand an attacker at the same address fresh guesses), and the credential is
 *   remembered for 24 hours;
 * - failure: the charge stands;
 * - neither (a back-end error, a busy server: the request was not answered): refunded, unless
 *   the error says the charge stands (errors.ts ThrottleSettlement: a hook that judged the
 *   password, a source refused for its own share of the password-check queue).
 * A credential (address, account and secret, kept as an HMAC) that succeeded in the last 24 hours
 * is admitted without any charge or check: one address is often shared (NAT, CI runners, a proxy
 * without real_ip_header), and others' failures there must not lock out the users who log in
 * there. An attempt identical to one in flight is the same guess (issueToken answers both with
 * one authentication): admitted without charge, so a CI fan-out of N parallel logins with one
 * credential is not refused after the burst. A refused request is answered 429 with Retry-After,
 * before any password check.
 */
import { createHmac, randomBytes } from "node:crypto";
import type { ClientIp } from "../acl.ts";

export interface BucketPolicy {
  /** Failures allowed in a burst. */
  burst: number;
  /** One more failure is allowed every this many seconds. */
  refillSeconds: number;
}

export interface ThrottleOptions {
  perAccount: BucketPolicy;
  perIp: BucketPolicy;
  /**
   * A credential that succeeded within this many seconds is admitted without charge; 0: never.
   * Remembered as an HMAC of (address, account, secret) for at most `maxEntries` credentials.
   */
  successExemptionSeconds: number;
  /** Entries kept per kind; the least recently used are dropped first. Bounds memory. */
  maxEntries: number;
  nowMs?: () => number;
}

export const DEFAULT_THROTTLE_OPTIONS: ThrottleOptions = {
  perAccount: { burst: 10, refillSeconds: 30 },
  perIp: { burst: 100, refillSeconds: 3 },
  successExemptionSeconds: 24 * 60 * 60,
  maxEntries: 100_000,
};

interface Bucket {
  tokens: number;
  atMs: number;
}

class BucketMap {
  private readonly buckets = new Map<string, Bucket>();
  constructor(
    private readonly policy: BucketPolicy,
    private readonly maxEntries: number,
  ) {}

  private level(key: string, nowMs: number): number {
    const bucket = this.buckets.get(key);
    if (!bucket) return this.policy.burst;
    const refilled = bucket.tokens + (nowMs - bucket.atMs) / (this.policy.refillSeconds * 1000);
    return Math.min(this.policy.burst, refilled);
  }

  /** Seconds until one more failure is allowed, or 0 when it is allowed now. */
  waitSeconds(key: string, nowMs: number): number {
    const tokens = this.level(key, nowMs);
    return tokens >= 1 ? 0 : Math.ceil((1 - tokens) * this.policy.refillSeconds);
  }

  charge(key: string, nowMs: number): void {
    const tokens = this.level(key, nowMs) - 1;
    this.buckets.delete(key); // re-insert: Map order is then least recently charged first
    this.buckets.set(key, { tokens, atMs: nowMs });
    if (this.buckets.size > this.maxEntries) {
      const oldest = this.buckets.keys().next().value;
      if (oldest !== undefined) this.buckets.delete(oldest);
    }
  }

  /** Gives back one charge (capped at the burst); nothing when the bucket is gone. */
  refund(key: string, nowMs: number): void {
    if (!this.buckets.has(key)) return;
    this.buckets.set(key, { tokens: Math.min(this.policy.burst, this.level(key, nowMs) + 1), atMs: nowMs });
  }

  get size(): number {
    return this.buckets.size;
  }
}

/** A refused client is logged at most once per this interval, so a flood cannot flood the log. */
const REFUSAL_LOG_INTERVAL_MS = 60_000;

export type Admission =
  | { kind: "admitted"; attempt: LoginAttempt }
  | { kind: "refused"; retryAfterSeconds: number };

export class LoginThrottle {
  private readonly perAccount: BucketMap;
  private readonly perIp: BucketMap;
  private readonly nowMs: () => number;
  private readonly lastReportedMs = new Map<string, number>();
  private readonly maxEntries: number;
  /** Attempts being answered, by HMAC(address, account, secret) → how many. Lives as long as they do. */
  private readonly inFlight = new Map<string, number>();
  private readonly hmacKey = randomBytes(32);
  /** HMAC(address, account, secret) → when it last logged in successfully; least recently first. */
  private readonly lastSuccessMs = new Map<string, number>();
  private readonly successExemptionMs: number;

  constructor(options: ThrottleOptions = DEFAULT_THROTTLE_OPTIONS) {
    this.perAccount = new BucketMap(options.perAccount, options.maxEntries);
    this.perIp = new BucketMap(options.perIp, options.maxEntries);
    this.nowMs = options.nowMs ?? Date.now;
    this.maxEntries = options.maxEntries;
    this.successExemptionMs = options.successExemptionSeconds * 1000;
  }

  /**
   * Admits a login attempt and charges it, or refuses it. Synchronous on purpose: nothing can
   * slip in between the check and the charge. `secret` is the password or refresh token; only
   * an HMAC of it is kept, and only while the attempt is in flight.
   */
  admit(ip: ClientIp | null, account: string, secret: string): Admission {
    const now = this.nowMs();
    const source = ipKey(ip);
    const pair = pairKey(source, account);
    const fingerprint = createHmac("sha256", this.hmacKey)
      .update(`${Buffer.byteLength(source)}:${source}\0${Buffer.byteLength(account)}:${account}\0`)
      .update(secret)
      .digest("base64");
    // A credential that logged in here recently, or a copy of an attempt still being answered
    // (answered once for all copies): not a new guess, so neither refused nor charged.
    const isFree = this.inFlight.has(fingerprint) || this.succeededRecently(fingerprint, now);
    if (!isFree) {
      const retryAfterSeconds = Math.max(
        this.perAccount.waitSeconds(pair, now),
        this.perIp.waitSeconds(source, now),
      );
      if (retryAfterSeconds > 0) return { kind: "refused", retryAfterSeconds };
      this.perAccount.charge(pair, now);
      this.perIp.charge(source, now);
    }
    this.inFlight.set(fingerprint, (this.inFlight.get(fingerprint) ?? 0) + 1);
    const refund = () => {
      if (isFree) return;
      this.perAccount.refund(pair, this.nowMs());
      this.perIp.refund(source, this.nowMs());
    };
    return {
      kind: "admitted",
      attempt: new LoginAttempt({
        succeeded: () => {
          refund();
          this.rememberSuccess(fingerprint, this.nowMs());
        },
        unanswered: refund,
        ended: () => {
          const left = (this.inFlight.get(fingerprint) ?? 1) - 1;
          if (left > 0) this.inFlight.set(fingerprint, left);
          else this.inFlight.delete(fingerprint);
        },
      }),
    };
  }

  /**
   * Whether a refusal for this (address, account) should be logged now: true for the first one
   * and then once per minute. An attacker hammering at thousands of requests a second would
   * otherwise write thousands of log lines a second (and the buffered lines cost memory).
   */
  shouldReportRefusal(ip: ClientIp | null, account: string): boolean {
    const key = pairKey(ipKey(ip), account);
    const now = this.nowMs();
    const last = this.lastReportedMs.get(key);
    if (last !== undefined && now - last < REFUSAL_LOG_INTERVAL_MS) return false;
    if (this.lastReportedMs.size >= this.maxEntries) this.lastReportedMs.clear();
    this.lastReportedMs.set(key, now);
    return true;
  }

  /** Seconds a new attempt (a credential not seen before) would be told to wait; 0: admitted. */
  retryAfterSeconds(ip: ClientIp | null, account: string): number {
    const now = this.nowMs();
    const source = ipKey(ip);
    return Math.max(
      this.perAccount.waitSeconds(pairKey(source, account), now),
      this.perIp.waitSeconds(source, now),
    );
  }

  /**
   * Charges only the address's budget: for actions that are not guesses but must not be free in
   * bulk (creating an account by `docker login`). The attempt that created it was charged when
   * admitted and refunded as a success; this charge stays.
   */
  chargeAddress(ip: ClientIp | null): void {
    this.perIp.charge(ipKey(ip), this.nowMs());
  }

  get trackedPairs(): number {
    return this.perAccount.size;
  }

  get rememberedSuccesses(): number {
    return this.lastSuccessMs.size;
  }

  private succeededRecently(credential: string, nowMs: number): boolean {
    const at = this.lastSuccessMs.get(credential);
    if (at === undefined) return false;
    if (nowMs - at < this.successExemptionMs) return true;
    this.lastSuccessMs.delete(credential);
    return false;
  }

  private rememberSuccess(credential: string, nowMs: number): void {
    if (this.successExemptionMs <= 0) return;
    this.lastSuccessMs.delete(credential); // re-insert: Map order is then least recently successful first
    this.lastSuccessMs.set(credential, nowMs);
    if (this.lastSuccessMs.size > this.maxEntries) {
      const oldest = this.lastSuccessMs.keys().next().value;
      if (oldest !== undefined) this.lastSuccessMs.delete(oldest);
    }
  }

  get attemptsInFlight(): number {
    return this.inFlight.size;
  }
}

interface AttemptSettlement {
  succeeded: () => void;
  unanswered: () => void;
  ended: () => void;
}

/**
 * One admitted attempt. Call `succeeded()` or `failed()` once the answer is known; disposing it
 * (`using`) without either means the request was not answered (an error), and refunds its charge.
 */
export class LoginAttempt implements Disposable {
  private settled = false;

  constructor(private readonly settlement: AttemptSettlement) {}

  succeeded(): void {
    if (this.settle()) this.settlement.succeeded();
  }

  /** A wrong password (or refused refresh token): the charge stands. */
  failed(): void {
    this.settle();
  }

  [Symbol.dispose](): void {
    if (this.settle()) this.settlement.unanswered();
  }

  /** True the first time: the outcome is counted once, and the in-flight entry released once. */
  private settle(): boolean {
    if (this.settled) return false;
    this.settled = true;
    this.settlement.ended();
    return true;
  }
}

/** The bucket key: account names folded as LDAP compares them (caseIgnoreMatch, spaces collapsed). */
function pairKey(source: string, account: string): string {
  return `${source}\0${account.trim().replace(/\s+/g, " ").toLowerCase()}`;
}

/** IPv4 as is; IPv6 by its /64; no address (a unix socket without real_ip_header) is one source. */
function ipKey(ip: ClientIp | null): string {
  if (!ip) return "-";
  if (ip.bytes.length !== 16) return ip.text;
  const isV4Mapped =
    ip.bytes.subarray(0, 10).every((b) => b === 0) && ip.bytes[10] === 0xff && ip.bytes[11] === 0xff;
  if (isV4Mapped) return ip.bytes.subarray(12).join(".");
  return `${Buffer.from(ip.bytes.subarray(0, 8)).toString("hex")}/64`;
}
