/**
 * Throttling of failed logins, in memory, for every authenticator (src/issue-token.ts).
 *
 * Three token buckets: one per (client IP, account), a looser one per client IP (IPv6 by /64,
 * which one host usually owns), and one per account from any address (review finding 6: a /48
 * is 65,536 /64s, each with its own pair budget). Keying by the pair is what keeps an attacker from
 * locking a user out: hammering `alice` from one address exhausts that address's budget for alice
 * (and, beyond the per-IP budget, for everyone), while alice at her own address is unaffected. The
 * per-account bucket caps a spray from many addresses at ASVS V2.2.1's 100 failures an hour and
 * spares any password that logged in for the account recently from anywhere, so it cannot lock
 * out the owner either. Account names are folded for the key as LDAP matches them (NFKC, case, default-
 * ignorable code points, surrounding and repeated spaces): `Alice`, ` alice`, fullwidth `ａｌｉｃｅ`
 * and `alİce` bind as the same entry, so they share one bucket (review L3).
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
 *
 * Memory (review L6, issue 9 item 6): entries are keyed by short keyed hashes (a 53-bit number for
 * a pair, an account or an address, a 96-bit HMAC for a credential), never by the account name
 * itself, so a long name or a forged refresh token's long subject costs what a short one does;
 * each bucket is one number (the time it is full again, as in GCRA); each kind of entry is bounded
 * by `maxEntries`, evicting in O(1). Buckets live in GenerationalNumberMaps (typed arrays,
 * nothing for the collector to visit): at the default 100,000 per kind, a flood of distinct pairs
 * holds 8 MiB at most (four kinds, two generations of 1 MiB each), reused once allocated.
 */
import { randomBytes } from "node:crypto";
import type { ClientIp } from "../acl.ts";
import { log } from "../log.ts";
import { GenerationalMap } from "./generational-map.ts";
import { GenerationalNumberMap } from "./number-map.ts";

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
   * Per account alone, from any address, for credentials that have not logged in recently
   * (review finding 6: many /64s spraying one account). Default: ACCOUNT_ANY_SOURCE_POLICY.
   */
  perAccountAnySource?: BucketPolicy;
  /**
   * A credential that succeeded within this many seconds is admitted without charge; 0: never.
   * Remembered as an HMAC of (address, account, secret) for at most `maxEntries` credentials.
   */
  successExemptionSeconds: number;
  /** Entries kept per kind; the least recently used half is dropped at once. Bounds memory. */
  maxEntries: number;
  nowMs?: () => number;
}

/**
 * ASVS 4.0 V2.2.1 (security.md §7.3 I2): "no more than 100 failed attempts per hour ... on a single
 * account". A burst of 50, then one every 72 s: at most 100 in any hour, however many addresses
 * send them. The owner is not locked out by it: a password that logged in from any address in the
 * last 24 hours skips this bucket.
 */
export const ACCOUNT_ANY_SOURCE_POLICY: BucketPolicy = { burst: 50, refillSeconds: 72 };

export const DEFAULT_THROTTLE_OPTIONS: ThrottleOptions = {
  perAccount: { burst: 10, refillSeconds: 30 },
  perIp: { burst: 100, refillSeconds: 3 },
  perAccountAnySource: ACCOUNT_ANY_SOURCE_POLICY,
  successExemptionSeconds: 24 * 60 * 60,
  maxEntries: 100_000,
};

/**
 * Token buckets, each stored as one number: the time (ms) at which it is full again (the generic
 * cell rate algorithm). A missing entry is a full bucket.
 */
class BucketMap {
  private readonly fullAtMs: GenerationalNumberMap;
  private readonly refillMs: number;
  constructor(
    private readonly policy: BucketPolicy,
    maxEntries: number,
  ) {
    this.fullAtMs = new GenerationalNumberMap(maxEntries);
    this.refillMs = policy.refillSeconds * 1000;
  }

  /** Seconds until one more failure is allowed, or 0 when it is allowed now. */
  waitSeconds(key: number, nowMs: number): number {
    // Fewer than one token left means the bucket is full again later than (burst - 1) refills.
    const fullAt = this.fullAtMs.get(key) ?? nowMs;
    const waitMs = fullAt - nowMs - (this.policy.burst - 1) * this.refillMs;
    return waitMs > 0 ? Math.ceil(waitMs / 1000) : 0;
  }

  charge(key: number, nowMs: number): void {
    this.fullAtMs.set(key, Math.max(this.fullAtMs.get(key) ?? nowMs, nowMs) + this.refillMs);
  }

  /** Gives back one charge (capped at the burst); nothing when the bucket is gone. */
  refund(key: number, nowMs: number): void {
    const fullAt = this.fullAtMs.get(key);
    if (fullAt === undefined) return;
    if (fullAt - this.refillMs <= nowMs) this.fullAtMs.delete(key);
    else this.fullAtMs.set(key, fullAt - this.refillMs);
  }

  get size(): number {
    return this.fullAtMs.size;
  }
}

export type Admission =
  | { kind: "admitted"; attempt: LoginAttempt }
  | { kind: "refused"; retryAfterSeconds: number };

/**
 * What the request paths charge failed logins to: a LoginThrottle in this process, or with
 * `server.workers` above 1 the server's one, asked over IPC (src/serve/shared-throttle.ts), so N
 * workers do not give N budgets. `admit` and `reserveRegistration` charge before they return or
 * resolve; callers await them before any password check.
 */
export interface Throttle {
  admit(ip: ClientIp | null, account: string, secret: string): Admission | Promise<Admission>;
  reportRefusal(ip: ClientIp | null, account: string): void;
  chargeAddress(ip: ClientIp | null): void;
  reserveRegistration(ip: ClientIp | null): number | Promise<number>;
  releaseRegistration(ip: ClientIp | null): void;
  /** A success a worker admitted by its own memory: renews the server's (src/serve/shared-throttle.ts). */
  rememberSucceeded?(ip: ClientIp | null, account: string, secret: string): void;
}

export class LoginThrottle implements Throttle {
  private readonly perAccount: BucketMap;
  private readonly perIp: BucketMap;
  /** By folded account alone (finding 6), for credentials not known-good for the account. */
  private readonly perAccountAnySource: BucketMap;
  /** Account creations per IPv6 /48, on top of the per-source (/64) charge ("Also" of the review). */
  private readonly registrationsPerNetwork: BucketMap;
  private readonly nowMs: () => number;
  /** Attempts being answered, by HMAC(address, account, secret) → how many. Lives as long as they do. */
  private readonly inFlight = new Map<string, number>();
  private readonly hmacKey = randomBytes(32);
  readonly #pairSeed = randomBytes(8).readBigUInt64LE(); // a true private field: never enumerated
  /** HMAC(address, account, secret) → when it last logged in successfully. */
  private readonly lastSuccessMs: GenerationalMap<number>;
  /** HMAC(folded account, secret) → when it last logged in successfully, from any address. */
  private readonly lastAccountSuccessMs: GenerationalMap<number>;
  private readonly successExemptionMs: number;
  private readonly refusals: RefusalLog;

  constructor(options: ThrottleOptions = DEFAULT_THROTTLE_OPTIONS) {
    this.perAccount = new BucketMap(options.perAccount, options.maxEntries);
    this.perIp = new BucketMap(options.perIp, options.maxEntries);
    this.perAccountAnySource = new BucketMap(
      options.perAccountAnySource ?? ACCOUNT_ANY_SOURCE_POLICY,
      options.maxEntries,
    );
    this.registrationsPerNetwork = new BucketMap(options.perIp, options.maxEntries);
    this.nowMs = options.nowMs ?? Date.now;
    this.lastSuccessMs = new GenerationalMap(options.maxEntries);
    this.lastAccountSuccessMs = new GenerationalMap(options.maxEntries);
    this.successExemptionMs = options.successExemptionSeconds * 1000;
    this.refusals = new RefusalLog(this.nowMs);
  }

  /**
   * Admits a login attempt and charges it, or refuses it. Synchronous on purpose: nothing can
   * slip in between the check and the charge. `secret` is the password or refresh token; only
   * an HMAC of it is kept. The attempt says whether this very credential logged in from this
   * address recently (`isKnownGood`): the password checks keep a way through for those (M4).
   */
  admit(ip: ClientIp | null, account: string, secret: string): Admission {
    const now = this.nowMs();
    const source = clientSource(ip);
    // Bun.CryptoHasher with a key is HMAC, at a third of node:crypto's cost per call (a flood
    // pays one per request).
    const fingerprint = this.fingerprint(source, account, secret);
    // A credential that logged in here recently, or a copy of an attempt still being answered
    // (answered once for all copies): not a new guess, so neither refused nor charged.
    const isKnownGood = this.succeededRecently(this.lastSuccessMs, fingerprint, now);
    const isFree = isKnownGood || this.inFlight.has(fingerprint);
    const folded = foldAccountName(account);
    const pair = isFree ? 0 : this.pairKey(source, folded);
    const sourceKey = isFree ? 0 : this.sourceKey(source);
    // The account's own budget, whatever the address (finding 6), spares a password that logged
    // in recently from anywhere: spraying alice from many networks cannot lock alice out.
    const accountCredential = this.accountCredential(folded, secret);
    const chargesAccount =
      !isFree && !this.succeededRecently(this.lastAccountSuccessMs, accountCredential, now);
    const accountKey = chargesAccount ? this.accountKey(folded) : 0;
    if (!isFree) {
      const retryAfterSeconds = Math.max(
        this.perAccount.waitSeconds(pair, now),
        this.perIp.waitSeconds(sourceKey, now),
        chargesAccount ? this.perAccountAnySource.waitSeconds(accountKey, now) : 0,
      );
      if (retryAfterSeconds > 0) return { kind: "refused", retryAfterSeconds };
      this.perAccount.charge(pair, now);
      this.perIp.charge(sourceKey, now);
      if (chargesAccount) this.perAccountAnySource.charge(accountKey, now);
    }
    this.inFlight.set(fingerprint, (this.inFlight.get(fingerprint) ?? 0) + 1);
    const refund = () => {
      if (isFree) return;
      this.perAccount.refund(pair, this.nowMs());
      this.perIp.refund(sourceKey, this.nowMs());
      if (chargesAccount) this.perAccountAnySource.refund(accountKey, this.nowMs());
    };
    return {
      kind: "admitted",
      attempt: new LoginAttempt(isKnownGood, {
        succeeded: () => {
          refund();
          this.rememberSuccess(fingerprint, accountCredential, this.nowMs());
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
   * The free admission of a credential that logged in from this address recently, or null (then
   * `admit` decides). For a worker, which asks the server's throttle only for the rest.
   */
  admitKnownGood(ip: ClientIp | null, account: string, secret: string): Admission | null {
    const fingerprint = this.fingerprint(clientSource(ip), account, secret);
    if (!this.succeededRecently(this.lastSuccessMs, fingerprint, this.nowMs())) return null;
    return {
      kind: "admitted",
      attempt: new LoginAttempt(true, { succeeded: () => {}, unanswered: () => {}, ended: () => {} }),
    };
  }

  /** Remembers a success the server's throttle settled, so the next one is admitted here for free. */
  rememberSucceeded(ip: ClientIp | null, account: string, secret: string): void {
    this.rememberSuccess(
      this.fingerprint(clientSource(ip), account, secret),
      this.accountCredential(foldAccountName(account), secret),
      this.nowMs(),
    );
  }

  /**
   * Logs a refused attempt, rate-limited (review L2): once a minute per address (whatever the
   * account: varying the name must not multiply the lines) and at most ~one line a second
   * overall, with a line saying how many were left out.
   */
  reportRefusal(ip: ClientIp | null, account: string): void {
    this.refusals.report(ip, account);
  }

  /** Seconds a new attempt (a credential not seen before) would be told to wait; 0: admitted. */
  retryAfterSeconds(ip: ClientIp | null, account: string): number {
    const now = this.nowMs();
    const source = clientSource(ip);
    const folded = foldAccountName(account);
    return Math.max(
      this.perAccount.waitSeconds(this.pairKey(source, folded), now),
      this.perIp.waitSeconds(this.sourceKey(source), now),
      this.perAccountAnySource.waitSeconds(this.accountKey(folded), now),
    );
  }

  /**
   * Charges only the address's budget: for actions that are not guesses but must not be free in
   * bulk (creating an account by `docker login`). The attempt that created it was charged when
   * admitted and refunded as a success; this charge stays.
   */
  chargeAddress(ip: ClientIp | null): void {
    this.perIp.charge(this.sourceKey(clientSource(ip)), this.nowMs());
  }

  /**
   * Before an account is created by `docker login`: charges the network's registration budget
   * (IPv6 by /48, which one customer often holds: 65,536 /64s, each with its own address budget),
   * or says how many seconds to wait. IPv4 and no address: the address's budget (chargeAddress)
   * is the limit, so 0. Charged before the password is hashed, so parallel registrations cannot
   * all pass; `releaseRegistration` gives it back when no account was created.
   */
  reserveRegistration(ip: ClientIp | null): number {
    const network = registrationNetwork(ip);
    if (network === undefined) return 0;
    const now = this.nowMs();
    const networkKey = this.sourceKey(network);
    const waitSeconds = this.registrationsPerNetwork.waitSeconds(networkKey, now);
    if (waitSeconds > 0) return waitSeconds;
    this.registrationsPerNetwork.charge(networkKey, now);
    return 0;
  }

  releaseRegistration(ip: ClientIp | null): void {
    const network = registrationNetwork(ip);
    if (network !== undefined) this.registrationsPerNetwork.refund(this.sourceKey(network), this.nowMs());
  }

  get trackedPairs(): number {
    return this.perAccount.size;
  }

  get rememberedSuccesses(): number {
    return this.lastSuccessMs.size;
  }

  get attemptsInFlight(): number {
    return this.inFlight.size;
  }

  /**
   * The bucket key of (address, folded account name): a 53-bit keyed hash (L3, L6), a number, so
   * a key costs no allocation however long the name. wyhash under a per-process random seed, not
   * an HMAC: no secret goes in, and a collision (one in ~10^10 at 100,000 pairs, and not
   * searchable without seeing the seed or any hash) would only share a bucket. The credential
   * fingerprint, which covers the password, stays an HMAC.
   */
  private pairKey(source: string, folded: string): number {
    const hash = Bun.hash.wyhash(`${source}\0${folded}`, this.#pairSeed);
    return Number(BigInt.asUintN(53, BigInt(hash)));
  }

  /** HMAC(address, account, secret): the credential at this address. */
  private fingerprint(source: string, account: string, secret: string): string {
    return new Bun.CryptoHasher("sha256", this.hmacKey)
      .update(`c${Buffer.byteLength(source)}:${source}\0${Buffer.byteLength(account)}:${account}\0`)
      .update(secret)
      .digest()
      .toString("base64", 0, 12);
  }

  /** The key of the account's any-address bucket: like pairKey, with no source. */
  private accountKey(folded: string): number {
    const hash = Bun.hash.wyhash(`\0account\0${folded}`, this.#pairSeed);
    return Number(BigInt.asUintN(53, BigInt(hash)));
  }

  /** The key of an address's (or an IPv6 network's) bucket: like pairKey, with no account. */
  private sourceKey(source: string): number {
    const hash = Bun.hash.wyhash(`\0source\0${source}`, this.#pairSeed);
    return Number(BigInt.asUintN(53, BigInt(hash)));
  }

  /** HMAC(folded account, secret): the credential whatever the address (finding 6). */
  private accountCredential(folded: string, secret: string): string {
    return new Bun.CryptoHasher("sha256", this.hmacKey)
      .update(`a${Buffer.byteLength(folded)}:${folded}\0`)
      .update(secret)
      .digest()
      .toString("base64", 0, 12);
  }

  private succeededRecently(successes: GenerationalMap<number>, credential: string, nowMs: number): boolean {
    const at = successes.get(credential);
    if (at === undefined) return false;
    if (nowMs - at < this.successExemptionMs) return true;
    successes.delete(credential);
    return false;
  }

  private rememberSuccess(credential: string, accountCredential: string, nowMs: number): void {
    if (this.successExemptionMs <= 0) return;
    this.lastSuccessMs.set(credential, nowMs);
    this.lastAccountSuccessMs.set(accountCredential, nowMs);
  }
}

/** A refused source is logged at most once per this interval. */
const REFUSAL_LOG_INTERVAL_MS = 60_000;
/** Refusal lines overall: a burst of this many, then one a second. */
const REFUSAL_LOG_BURST = 20;
const REFUSAL_LOG_REFILL_MS = 1_000;
/** Sources remembered for the per-address limit; beyond it the oldest half is forgotten. */
const REFUSAL_LOG_SOURCES = 10_000;

/** The rate-limited "login throttled" log (review L2: 100,011 lines in 19 s from one address). */
class RefusalLog {
  private readonly lastLoggedMs = new GenerationalMap<number>(REFUSAL_LOG_SOURCES);
  private globalFullAtMs = Number.NEGATIVE_INFINITY;
  private suppressed = 0;
  private suppressedSinceMs = 0;
  private flushTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly nowMs: () => number) {}

  report(ip: ClientIp | null, account: string): void {
    const now = this.nowMs();
    if (this.suppressed > 0 && now - this.suppressedSinceMs >= REFUSAL_LOG_INTERVAL_MS) this.flush();
    const source = clientSource(ip);
    const last = this.lastLoggedMs.get(source);
    const sourceAllows = last === undefined || now - last >= REFUSAL_LOG_INTERVAL_MS;
    const globalAllows = this.globalFullAtMs - now <= (REFUSAL_LOG_BURST - 1) * REFUSAL_LOG_REFILL_MS;
    if (!sourceAllows || !globalAllows) {
      if (this.suppressed++ === 0) {
        this.suppressedSinceMs = now;
        // The tail of a flood is reported too, not only when the next refusal comes.
        this.flushTimer = setTimeout(() => this.flush(), REFUSAL_LOG_INTERVAL_MS);
        this.flushTimer.unref?.();
      }
      return;
    }
    this.lastLoggedMs.set(source, now);
    this.globalFullAtMs = Math.max(this.globalFullAtMs, now) + REFUSAL_LOG_REFILL_MS;
    log.info("login throttled (logged once a minute per address)", {
      account: account.slice(0, MAX_LOGGED_ACCOUNT_LENGTH),
      ip: ip?.text,
    });
  }

  private flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.suppressed === 0) return;
    log.info("login throttled: further refusals not logged", {
      suppressed: this.suppressed,
      seconds: Math.round((this.nowMs() - this.suppressedSinceMs) / 1000),
    });
    this.suppressed = 0;
  }
}

/** Account names in log lines are cut here: a refresh token's claimed subject can be long. */
const MAX_LOGGED_ACCOUNT_LENGTH = 100;

export interface AttemptSettlement {
  succeeded: () => void;
  unanswered: () => void;
  ended: () => void;
  /** Only where the charge is kept elsewhere (a worker's, src/serve/shared-throttle.ts). */
  failed?: () => void;
}

/**
 * One admitted attempt. Call `succeeded()` or `failed()` once the answer is known; disposing it
 * (`using`) without either means the request was not answered (an error), and refunds its charge.
 */
export class LoginAttempt implements Disposable {
  private settled = false;

  constructor(
    /** This credential logged in successfully from this address recently (not a guess). */
    readonly isKnownGood: boolean,
    private readonly settlement: AttemptSettlement,
  ) {}

  succeeded(): void {
    if (this.settle()) this.settlement.succeeded();
  }

  /** A wrong password (or refused refresh token): the charge stands. */
  failed(): void {
    if (this.settle()) this.settlement.failed?.();
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

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
/** Code points that render as nothing (soft hyphen, zero-width joiners, variation selectors...). */
const DEFAULT_IGNORABLE = /\p{Default_Ignorable_Code_Point}/gu;

/**
 * An account name folded as LDAP's caseIgnoreMatch compares it (RFC 4518: compatibility
 * normalisation, case folding, code points mapped to nothing, insignificant spaces), as far as
 * JavaScript allows: NFKC; upper then lower case, which also folds ß to ss and final sigma (full
 * case folding, unlike toLowerCase alone); the Turkish dotted İ and dotless ı taken as i, since
 * directories bind `alİce` as alice; default-ignorable code points removed; spaces trimmed and
 * collapsed. Over-folding only merges buckets of names that look alike, which is the safe side.
 */
export function foldAccountName(account: string): string {
  // Printable ASCII (nearly every name): NFKC and the rest change nothing but case and spaces.
  if (PRINTABLE_ASCII.test(account)) return account.toLowerCase().trim().replace(/\s+/g, " ");
  return account
    .normalize("NFKC")
    .replace(/[\u0130\u0131]/g, "i")
    .toUpperCase()
    .toLowerCase()
    .normalize("NFKC")
    .replace(/i\u0307/g, "i")
    .replace(DEFAULT_IGNORABLE, "")
    .trim()
    .replace(/\s+/g, " ");
}

/**
 * The throttle's source of a request, which the password-check queue shares: IPv4 as is; IPv6 by
 * its /64 (what one host usually owns); no address (a unix socket without real_ip_header) is one
 * source.
 */
export function clientSource(ip: ClientIp | null): string {
  if (!ip) return "-";
  if (ip.bytes.length !== 16) return ip.text;
  const isV4Mapped =
    ip.bytes.subarray(0, 10).every((b) => b === 0) && ip.bytes[10] === 0xff && ip.bytes[11] === 0xff;
  if (isV4Mapped) return ip.bytes.subarray(12).join(".");
  return `${Buffer.from(ip.bytes.subarray(0, 8)).toString("hex")}/64`;
}

/** The IPv6 /48 an account creation is charged to; undefined for IPv4 (and IPv4-mapped) and none. */
function registrationNetwork(ip: ClientIp | null): string | undefined {
  const source = clientSource(ip);
  if (!ip || !source.endsWith("/64")) return undefined;
  return `${Buffer.from(ip.bytes.subarray(0, 6)).toString("hex")}/48`;
}
