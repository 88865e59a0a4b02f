/**
 * Password hash verification with a verified-credential cache. Docker clients send Basic
 * credentials with every token request, and bcrypt at cost 10 takes ~50 ms, so without a cache a
 * busy CI runner would pin a core.
 *
 * The cache remembers only successes, under HMAC-SHA256(per-process key, user ‖ password ‖ hash).
 * Because the stored hash is part of the key, a changed password (new hash) can never hit an old
 * entry; disabling or deleting a user is checked by the caller on every request, before this.
 * No password is ever stored, and the HMAC key never leaves the process.
 */
import { createHmac, randomBytes } from "node:crypto";
import { ServerBusy } from "../errors.ts";
import { log } from "../log.ts";

export interface PasswordVerifierOptions {
  cacheTtlSeconds: number;
  maxCacheEntries: number;
  /** Hash verifications running at once; the rest queue. Bounds CPU and (argon2id) memory. */
  maxConcurrentVerifications: number;
  /**
   * Verifications allowed to wait for a slot; beyond this they fail at once with 503 (ServerBusy)
   * instead of queueing. Bounds the requests held open and the time one waits.
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

/** A bcrypt hash of a random password: unknown users are checked against it (timing parity). */
const DUMMY_HASH = await Bun.password.hash(randomBytes(18).toString("base64"), {
  algorithm: "bcrypt",
  cost: 10,
});

export class PasswordVerifier {
  private readonly hmacKey = randomBytes(32);
  private readonly verified = new Map<string, number>(); // cache key → expiry (ms)
  private readonly inFlight = new Map<string, Promise<boolean>>();
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly now: () => number;
  private dummyHash = DUMMY_HASH;
  private lastBusyLogMs = Number.NEGATIVE_INFINITY;

  constructor(private readonly options: PasswordVerifierOptions = DEFAULT_VERIFIER_OPTIONS) {
    this.now = options.now ?? Date.now;
  }

  /**
   * True when `password` matches `storedHash` (bcrypt $2a$/$2b$/$2y$ or argon2). Never throws for a
   * bad hash; throws ServerBusy (503) when the wait queue is full. A cached success and a request
   * joining an identical one in flight never wait in that queue.
   */
  async verify(username: string, password: string, storedHash: string): Promise<boolean> {
    if (password === "") return false;
    // Length-prefixed fields: with a bare separator, ("alice", "\0pw") and ("alice\0", "pw")
    // would give the same key, since usernames and passwords may contain NUL.
    const key = createHmac("sha256", this.hmacKey)
      .update(`${Buffer.byteLength(username)}:${username}`)
      .update(`${Buffer.byteLength(password)}:${password}`)
      .update(storedHash)
      .digest("base64");
    const expiry = this.verified.get(key);
    if (expiry !== undefined) {
      if (expiry > this.now()) return true;
      this.verified.delete(key);
    }
    // Identical concurrent requests (a client retrying, a CI fan-out) share one hash computation.
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = this.verifyUncached(password, storedHash).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    const ok = await pending;
    if (ok) this.remember(key);
    return ok;
  }

  /** Spends the same work as a real check, for users that do not exist. Always false (or ServerBusy). */
  async verifyDummy(password: string): Promise<false> {
    if (password !== "") await this.verifyUncached(password, this.dummyHash);
    return false;
  }

  /**
   * Checks unknown users against `hash` instead of the bcrypt default: with the accounts
   * database, most real users have argon2id hashes, and an unknown name must cost the same.
   */
  useDummyHash(hash: string): void {
    this.dummyHash = hash;
  }

  /**
   * Runs `work` (e.g. hashing a new password) under the same concurrency limit and wait queue as
   * verifications, so a burst of registrations cannot run more argon2 hashes at once than logins can.
   */
  async limited<T>(work: () => Promise<T>): Promise<T> {
    await this.acquire();
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
    if (this.verified.size >= this.options.maxCacheEntries) {
      // Map iteration is insertion order: drop the oldest entry.
      const oldest = this.verified.keys().next().value;
      if (oldest !== undefined) this.verified.delete(oldest);
    }
    this.verified.set(key, this.now() + this.options.cacheTtlSeconds * 1000);
  }

  private async verifyUncached(password: string, storedHash: string): Promise<boolean> {
    await this.acquire();
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

  private acquire(): Promise<void> {
    if (this.running < this.options.maxConcurrentVerifications) {
      this.running++;
      return Promise.resolve();
    }
    if (this.waiting.length >= this.options.maxWaitingVerifications) {
      const nowMs = this.now();
      if (nowMs - this.lastBusyLogMs >= BUSY_LOG_INTERVAL_MS) {
        this.lastBusyLogMs = nowMs;
        log.warn("password checks refused: queue full (logged once a minute)", {
          running: this.running,
          waiting: this.waiting.length,
        });
      }
      return Promise.reject(
        new ServerBusy("the server is busy checking passwords; retry in a moment", BUSY_RETRY_AFTER_SECONDS),
      );
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.running--;
  }
}

/** Whether a string is a password hash we can verify: bcrypt $2a$/$2b$/$2y$ or argon2. */
export function isSupportedHash(hash: string): boolean {
  return (
    /^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/.test(hash) ||
    /^\$argon2(id|i|d)\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/.test(hash)
  );
}
