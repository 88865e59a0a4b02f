/**
 * Throttling of failed logins, in memory, for every authenticator (src/issue-token.ts).
 *
 * Two token buckets, both charged by a failure: one per (client IP, account) and a looser one per
 * client IP (IPv6 by /64, which one host usually owns). Keying by the pair, never by the account
 * alone, is what keeps an attacker from locking a user out: hammering `alice` from one address
 * exhausts that address's budget for alice (and, beyond the per-IP budget, for everyone), while
 * alice at her own address is unaffected. A success clears the pair's bucket and is never slowed.
 * A throttled request is refused before any password check with 429 and Retry-After.
 */
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
  /** Buckets kept per kind; the least recently charged are dropped first. Bounds memory. */
  maxEntries: number;
  nowMs?: () => number;
}

export const DEFAULT_THROTTLE_OPTIONS: ThrottleOptions = {
  perAccount: { burst: 10, refillSeconds: 30 },
  perIp: { burst: 100, refillSeconds: 3 },
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

  clear(key: string): void {
    this.buckets.delete(key);
  }

  get size(): number {
    return this.buckets.size;
  }
}

/** A refused client is logged at most once per this interval, so a flood cannot flood the log. */
const REFUSAL_LOG_INTERVAL_MS = 60_000;

export class LoginThrottle {
  private readonly perAccount: BucketMap;
  private readonly perIp: BucketMap;
  private readonly nowMs: () => number;
  private readonly lastReportedMs = new Map<string, number>();
  private readonly maxEntries: number;

  constructor(options: ThrottleOptions = DEFAULT_THROTTLE_OPTIONS) {
    this.perAccount = new BucketMap(options.perAccount, options.maxEntries);
    this.perIp = new BucketMap(options.perIp, options.maxEntries);
    this.nowMs = options.nowMs ?? Date.now;
    this.maxEntries = options.maxEntries;
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

  /** Seconds the client must wait before trying this account again; 0 when it may try now. */
  retryAfterSeconds(ip: ClientIp | null, account: string): number {
    const now = this.nowMs();
    const source = ipKey(ip);
    return Math.max(
      this.perAccount.waitSeconds(pairKey(source, account), now),
      this.perIp.waitSeconds(source, now),
    );
  }

  recordFailure(ip: ClientIp | null, account: string): void {
    const now = this.nowMs();
    const source = ipKey(ip);
    this.perAccount.charge(pairKey(source, account), now);
    this.perIp.charge(source, now);
  }

  /**
   * Charges only the address's budget: for actions that are not guesses but must not be free in
   * bulk (creating an account by `docker login`).
   */
  chargeAddress(ip: ClientIp | null): void {
    this.perIp.charge(ipKey(ip), this.nowMs());
  }

  recordSuccess(ip: ClientIp | null, account: string): void {
    this.perAccount.clear(pairKey(ipKey(ip), account));
  }

  get trackedPairs(): number {
    return this.perAccount.size;
  }
}

function pairKey(source: string, account: string): string {
  return `${source}\0${account}`;
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
