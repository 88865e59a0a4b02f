/**
 * Password hash verification with a verified-credential cache. Docker clients send Basic
 * credentials with every token request, and bcrypt at cost 10 takes ~50 ms, so without a cache a
 * busy CI runner would pin a core.
 *
 * The cache remembers only successes, under HMAC-SHA256(per-process key, user ‖ password ‖ hash).
 * Because the stored hash is part of the key, a changed password (new hash) can never hit an old
 * entry; disabling or deleting a user is checked by the caller on every request, before this.
 * No password is ever stored, and the HMAC key never leaves the process. The cache is a
 * GenerationalMap under short (96-bit) keys: bounded, and O(1) to evict under a flood.
 *
 * Hash checks run a few at a time; the rest wait in a queue that is fair per source (review M4):
 * the throttle's source (address, IPv6 by /64), one queue each, served in turns, so a newcomer
 * waits one round, not behind a flood: a source's first waiting check always has a place (up to
 * 1,024 sources, even beyond `maxWaitingVerifications`). When the queue is full, a source
 * holding fewer places than the largest takes the largest source's newest one;
 * the one displaced, and a request from a source that already holds the largest share, is
 * refused "busy" for its own source's pressure and keeps its throttle charge (errors.ts
 * ThrottleSettlement). When 1,024 sources wait at once (review finding 7: the /64s of one /48
 * each holding one place shut every newcomer out), sources are folded into wider prefixes (IPv6
 * /56, then /48, then /32; IPv4 /24, /16, /8): the lanes of one prefix become one lane, and a
 * later request from that prefix joins it, so a first-time source from another network still gets
 * a place and waits one round of lanes. A credential
 * that already logged in from that address (the throttle's `isKnownGood`) has its own lane,
 * served first. Nothing is hashed at module load (issue 9 item 8): the dummy hash is made on
 * first use, off the main thread.
 */
import { createHmac, randomBytes } from "node:crypto";
import type { AuthnContext } from "./authenticator.ts";
import { GenerationalMap } from "./generational-map.ts";
import type { ClientIp } from "../acl.ts";
import { clientSource } from "./throttle.ts";
import { ServerBusy } from "../errors.ts";
import { log } from "../log.ts";
import { metrics } from "../metrics/recorder.ts";

export interface PasswordVerifierOptions {
  cacheTtlSeconds: number;
  maxCacheEntries: number;
  /** Hash verifications running at once; the rest queue. Bounds CPU and (argon2id) memory. */
  maxConcurrentVerifications: number;
  /**
   * Verifications allowed to wait for a slot; beyond this they fail at once with 503 (ServerBusy)
   * instead of queueing. Bounds the requests held open and the time one waits. A source's first
   * waiting check has a place even beyond it (up to 1,024 sources): a newcomer waits one round.
   */
  maxWaitingVerifications: number;
  now?: () => number;
}

export const DEFAULT_VERIFIER_OPTIONS: PasswordVerifierOptions = {
  cacheTtlSeconds: 60,
  maxCacheEntries: 10_000,
  // Hashing is CPU-bound and the target machine has two cores, so more in parallel buys no
  // throughput; it would only multiply argon2id's 12 MiB per hash in peak memory.
  maxConcurrentVerifications: 2,
  // 64 waiting on 2 cores is ~1.6 s of bcrypt-10 (argon2id: less): longer than a client should
  // wait, so an overload (a guessing flood from many addresses) is answered "busy, retry" rather
  // than every request, correct passwords included, waiting ever longer.
  maxWaitingVerifications: 64,
};

/** What a client refused for a full queue is told to wait: a queue drains in about a second. */
const BUSY_RETRY_AFTER_SECONDS = 1;
/** A full queue is logged at most once per this interval (a flood would flood the log). */
const BUSY_LOG_INTERVAL_MS = 60_000;

/** bcrypt's key schedule uses the first 72 bytes of the password. */
const BCRYPT_MAX_PASSWORD_BYTES = 72;
const BCRYPT_HASH = /^\$2[aby]\$/;

/** What unknown users are checked against without a database: bcrypt at htpasswd's default cost. */
export const DEFAULT_DUMMY_HASH_OPTIONS = { algorithm: "bcrypt", cost: 10 } as const;
/** Requests with a known-good credential that may wait in their own lane. */
const MAX_WAITING_KNOWN_GOOD = 64;
/**
 * Lanes (sources, or prefixes of them once folded) that may wait at once, one place each before any
 * extra place (bounds memory, and the makeRoomFor scan).
 */
const MAX_WAITING_SOURCES = 1024;
/** Prefix lengths a source is folded to when the lanes are all taken, narrowest first (finding 7). */
const IPV6_FOLD_PREFIX_BITS = [56, 48, 32];
const IPV4_FOLD_PREFIX_BITS = [24, 16, 8];
/** Who asks, when the caller does not say (new-password hashing for a registration). */
const UNATTRIBUTED: AuthnContext = { ip: null };

interface Waiter {
  /** The lane keys of its source: [the throttle's source, then each wider prefix]. */
  keys: string[];
  admit: () => void;
  refuse: (error: ServerBusy) => void;
}

/** The waiting checks of one source, or of one prefix (`level` > 0: keys[level] of its waiters). */
interface Lane {
  level: number;
  waiters: Waiter[];
}

export class PasswordVerifier {
  private readonly hmacKey = randomBytes(32);
  private readonly verified: GenerationalMap<number>; // cache key → expiry (ms)
  private readonly inFlight = new Map<string, Promise<boolean>>();
  private running = 0;
  /** Waiting checks per lane (source or folded prefix), oldest first; `turns` is the order lanes are served in. */
  private readonly waitingBySource = new Map<string, Lane>();
  private readonly turns: string[] = [];
  private waitingCount = 0;
  /**
   * How far new sources are folded (0: not; 1: /56 or /24, ...): raised when the lanes ran out, so
   * the rest of a flood from fresh /64s joins its prefix's lane instead of filling the table again;
   * back to 0 once nothing waits.
   */
  private foldLevel = 0;
  private readonly knownGoodLane: Waiter[] = [];
  private readonly now: () => number;
  /** A hash of a random password, or how to make one: unknown users are checked against it. */
  private dummyHash: Promise<string> | (() => Promise<string>) = () =>
    Bun.password.hash(randomBytes(18).toString("base64"), DEFAULT_DUMMY_HASH_OPTIONS);
  private lastBusyLogMs = Number.NEGATIVE_INFINITY;

  constructor(private readonly options: PasswordVerifierOptions = DEFAULT_VERIFIER_OPTIONS) {
    this.now = options.now ?? Date.now;
    this.verified = new GenerationalMap(options.maxCacheEntries);
  }

  /**
   * True when `password` matches `storedHash` (bcrypt $2a$/$2b$/$2y$ or argon2). Never throws for a
   * bad hash; throws ServerBusy (503) when the wait queue is full. A cached success and a request
   * joining an identical one in flight never wait in that queue.
   */
  async verify(
    username: string,
    password: string,
    storedHash: string,
    context: AuthnContext = UNATTRIBUTED,
  ): Promise<boolean> {
    if (password === "") return false;
    // Length-prefixed fields: with a bare separator, ("alice", "\0pw") and ("alice\0", "pw")
    // would give the same key, since usernames and passwords may contain NUL.
    const key = createHmac("sha256", this.hmacKey)
      .update(`${Buffer.byteLength(username)}:${username}`)
      .update(`${Buffer.byteLength(password)}:${password}`)
      .update(storedHash)
      .digest()
      .toString("base64", 0, 12);
    const expiry = this.verified.get(key);
    if (expiry !== undefined) {
      if (expiry > this.now()) {
        metrics.credentialCache(true);
        return true;
      }
      this.verified.delete(key);
    }
    metrics.credentialCache(false);
    // Identical concurrent requests (a client retrying, a CI fan-out) share one hash computation.
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = this.verifyUncached(password, storedHash, context).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    const ok = await pending;
    if (ok) this.remember(key);
    return ok;
  }

  /** Spends the same work as a real check, for users that do not exist. Always false (or ServerBusy). */
  async verifyDummy(password: string, context: AuthnContext = UNATTRIBUTED): Promise<false> {
    if (password !== "") await this.verifyUncached(password, await this.dummy(), context);
    return false;
  }

  /**
   * Checks unknown users against this hash instead of the bcrypt default: with the accounts
   * database, most real users have argon2id hashes, and an unknown name must cost the same.
   * A function is called on first use (nothing is hashed before it is needed).
   */
  useDummyHash(hash: string | (() => Promise<string>)): void {
    this.dummyHash = typeof hash === "string" ? Promise.resolve(hash) : hash;
  }

  /** The dummy hash, made now if not yet (the failure-latency calibration asks at start). */
  dummy(): Promise<string> {
    if (typeof this.dummyHash === "function") this.dummyHash = this.dummyHash();
    return this.dummyHash;
  }

  /**
   * One hash computation at the dummy's cost, for the failure-latency calibration: the first call
   * makes the dummy and that is what is timed, since bcrypt and argon2 do the same work to hash as
   * to verify; later calls (a reload's calibration) verify `probe` against it. Start-up so runs one
   * argon2id computation, not two: each holds memoryCost KiB (12 MiB) while it runs, and two in a
   * row on Bun's hashing threads raised the start-up peak RSS by 12 MiB (issue 12 item 6).
   */
  async dummyCheck(probe: string): Promise<void> {
    if (typeof this.dummyHash === "function") {
      await this.dummy();
      return;
    }
    await Bun.password.verify(probe, await this.dummyHash);
  }

  /**
   * Runs `work` (e.g. hashing a new password) under the same concurrency limit and wait queue as
   * verifications, so a burst of registrations cannot run more argon2 hashes at once than logins can.
   */
  async limited<T>(work: () => Promise<T>, context: AuthnContext = UNATTRIBUTED): Promise<T> {
    await this.acquire(context);
    try {
      return await work();
    } finally {
      this.release();
    }
  }

  /** Forgets every cached success (e.g. after a config reload). */
  clear(): void {
    this.verified.clear();
  }

  get cacheSize(): number {
    return this.verified.size;
  }

  private remember(key: string): void {
    this.verified.set(key, this.now() + this.options.cacheTtlSeconds * 1000);
  }

  private async verifyUncached(
    password: string,
    storedHash: string,
    context: AuthnContext,
  ): Promise<boolean> {
    await this.acquire(context);
    try {
      if (await Bun.password.verify(password, storedHash)) return true;
      // bcrypt reads at most 72 bytes. htpasswd and Go's bcrypt (docker_auth) ignore the rest;
      // Bun pre-hashes longer passwords with SHA-512 instead (Bun PR #9010), so an imported
      // hash of a long password never matched. Accept hashes made either way.
      const bytes = Buffer.from(password);
      if (bytes.length > BCRYPT_MAX_PASSWORD_BYTES && BCRYPT_HASH.test(storedHash))
        return await Bun.password.verify(bytes.subarray(0, BCRYPT_MAX_PASSWORD_BYTES), storedHash);
      return false;
    } catch {
      return false; // malformed hash: treated as a wrong password, reported at config load
    } finally {
      this.release();
    }
  }

  private acquire(context: AuthnContext): Promise<void> {
    if (this.running < this.options.maxConcurrentVerifications) {
      this.running++;
      return Promise.resolve();
    }
    const keys = laneKeys(context.ip);
    return new Promise<void>((admit, refuse) => {
      const waiter: Waiter = { keys, admit, refuse };
      if (context.isKnownGood) {
        if (this.knownGoodLane.length < MAX_WAITING_KNOWN_GOOD) this.knownGoodLane.push(waiter);
        else refuse(this.busy(false));
        return;
      }
      let key = this.laneOf(keys);
      let lane = this.waitingBySource.get(key);
      if (!lane) {
        // A source's first waiting check always has a place: however many sources flood, a
        // newcomer waits one round, one check per lane ahead. Past MAX_WAITING_SOURCES lanes,
        // sources are folded into wider prefixes to make one (finding 7).
        if (this.turns.length >= MAX_WAITING_SOURCES && !this.foldLanes()) {
          refuse(this.busy(false));
          return;
        }
        key = this.laneOf(keys); // its prefix may have become a lane
        lane = this.waitingBySource.get(key);
      }
      const hardCap = MAX_WAITING_SOURCES + this.options.maxWaitingVerifications;
      if (lane) {
        if (
          this.waitingCount >= this.options.maxWaitingVerifications &&
          !this.makeRoomFor(lane.waiters.length)
        ) {
          refuse(this.busy(true)); // this lane already holds the largest share: its own pressure
          return;
        }
      } else {
        // Folded lanes hold several first places: the total stays bounded all the same.
        if (this.waitingCount >= hardCap && !this.makeRoomFor(1)) {
          refuse(this.busy(false));
          return;
        }
        lane = { level: Math.min(this.foldLevel, keys.length - 1), waiters: [] };
        this.waitingBySource.set(key, lane);
        this.turns.push(key);
      }
      lane.waiters.push(waiter);
      this.waitingCount++;
    });
  }

  /** The lane a source waits in: the widest folded prefix of it that has a lane, else its own. */
  private laneOf(keys: string[]): string {
    const own = Math.min(this.foldLevel, keys.length - 1);
    for (let level = keys.length - 1; level > own; level--) {
      const key = keys[level] as string;
      if (this.waitingBySource.has(key)) return key;
    }
    return keys[own] as string;
  }

  /**
   * All MAX_WAITING_SOURCES lanes are taken: merges the lanes that share the narrowest prefix
   * (/56, /24) at which any two do, into one lane in the first one's turn. True when a lane was
   * freed. One pass over at most MAX_WAITING_SOURCES lanes per level.
   */
  private foldLanes(): boolean {
    for (let level = 1; level <= IPV6_FOLD_PREFIX_BITS.length; level++) {
      const groups = new Map<string, string[]>();
      for (const key of this.turns) {
        const lane = this.waitingBySource.get(key) as Lane;
        const wider =
          lane.level < level ? lane.waiters[0]?.keys[level] : lane.level === level ? key : undefined;
        if (wider === undefined) continue;
        const group = groups.get(wider);
        if (group) group.push(key);
        else groups.set(wider, [key]);
      }
      let freed = false;
      for (const [wider, members] of groups) {
        if (members.length < 2) continue;
        const waiters: Waiter[] = [];
        for (const member of members) {
          waiters.push(...(this.waitingBySource.get(member) as Lane).waiters);
          this.waitingBySource.delete(member);
        }
        this.waitingBySource.set(wider, { level, waiters });
        const first = this.turns.indexOf(members[0] as string);
        const others = new Set(members.slice(1));
        this.turns[first] = wider;
        for (let i = this.turns.length - 1; i > first; i--)
          if (others.has(this.turns[i] as string)) this.turns.splice(i, 1);
        freed = true;
      }
      if (freed) {
        this.foldLevel = Math.max(this.foldLevel, level);
        return true;
      }
    }
    return false;
  }

  /**
   * The queue is full: refuses the newest waiter of the source holding the most
   * places, if it holds more than the asking source (`own` places, at least one) does. That
   * source keeps at least one place. At most MAX_WAITING_SOURCES sources: the scan is short.
   */
  private makeRoomFor(own: number): boolean {
    let largest: string | undefined;
    let largestLength = 0;
    for (const candidate of this.turns) {
      // `>=`: among equals, the source that queued last gives up its place.
      const length = this.waitingBySource.get(candidate)?.waiters.length ?? 0;
      if (length > own && length >= largestLength) {
        largest = candidate;
        largestLength = length;
      }
    }
    if (largest === undefined) return false;
    const queue = (this.waitingBySource.get(largest) as Lane).waiters;
    const displaced = queue.pop() as Waiter;
    this.waitingCount--;
    if (queue.length === 0) this.dropSource(largest);
    displaced.refuse(this.busy(true));
    return true;
  }

  private dropSource(source: string): void {
    this.waitingBySource.delete(source);
    const index = this.turns.indexOf(source);
    if (index !== -1) this.turns.splice(index, 1);
    if (this.turns.length === 0) this.foldLevel = 0;
  }

  /** A "busy" refusal, logged at most once a minute (a flood would flood the log). */
  private busy(ownPressure: boolean): ServerBusy {
    const nowMs = this.now();
    if (nowMs - this.lastBusyLogMs >= BUSY_LOG_INTERVAL_MS) {
      this.lastBusyLogMs = nowMs;
      log.warn("password checks refused: queue full (logged once a minute)", {
        running: this.running,
        waiting: this.waitingCount + this.knownGoodLane.length,
        sources: this.turns.length,
      });
    }
    return new ServerBusy(
      "the server is busy checking passwords; retry in a moment",
      BUSY_RETRY_AFTER_SECONDS,
      { keepsThrottleCharge: ownPressure },
    );
  }

  /** A slot is free: the known-good lane first, then the next source in turn (round robin). */
  private release(): void {
    const knownGood = this.knownGoodLane.shift();
    if (knownGood) {
      knownGood.admit();
      return;
    }
    const source = this.turns.shift();
    if (source === undefined) {
      this.running--;
      return;
    }
    const queue = (this.waitingBySource.get(source) as Lane).waiters;
    const next = queue.shift() as Waiter;
    this.waitingCount--;
    if (queue.length > 0) this.turns.push(source);
    else this.dropSource(source);
    next.admit();
  }
}

/** Whether a string is a password hash we can verify: bcrypt $2a$/$2b$/$2y$ or argon2. */
export function isSupportedHash(hash: string): boolean {
  return (
    /^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/.test(hash) ||
    /^\$argon2(id|i|d)\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/.test(hash)
  );
}

/**
 * The lane keys of a request's source: the throttle's source (IPv4 address, IPv6 /64, "-" for no
 * address), then the prefixes it is folded to when the lanes run out (finding 7).
 */
function laneKeys(ip: ClientIp | null): string[] {
  const source = clientSource(ip);
  if (!ip) return [source];
  const isV4 = !source.endsWith("/64");
  const bytes = isV4 ? ip.bytes.subarray(ip.bytes.length - 4) : ip.bytes;
  const prefixes = (isV4 ? IPV4_FOLD_PREFIX_BITS : IPV6_FOLD_PREFIX_BITS).map((bits) =>
    isV4
      ? `${Array.from(bytes.subarray(0, bits / 8)).join(".")}.*/${bits}`
      : `${Buffer.from(bytes.subarray(0, bits / 8)).toString("hex")}/${bits}`,
  );
  return [source, ...prefixes];
}
