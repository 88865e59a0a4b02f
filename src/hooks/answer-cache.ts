/**
 * A short-lived memory of hook answers. Docker clients ask for a token before nearly every
 * registry call, so one `docker push` would otherwise start the same program dozens of times.
 * Only answers are remembered, never failures (a timeout or a crash must be retried), and
 * identical calls in flight share one run. Keys are chosen by the caller and never contain a
 * password (ext_auth uses an HMAC under a per-process random key).
 */
export class AnswerCache<T> {
  private readonly entries = new Map<string, { value: T; expiresAtMs: number }>();
  private readonly inFlight = new Map<string, Promise<T>>();

  constructor(
    readonly ttlSeconds: number,
    readonly maxEntries = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  get enabled(): boolean {
    return this.ttlSeconds > 0;
  }

  /** The remembered answer for `key`, else `compute()`'s (shared by concurrent callers). */
  async get(key: string, compute: () => Promise<T>): Promise<T> {
    if (!this.enabled) return compute();
    const entry = this.entries.get(key);
    if (entry !== undefined) {
      if (entry.expiresAtMs > this.now()) return entry.value;
      this.entries.delete(key);
    }
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = compute().then((value) => {
        this.remember(key, value);
        return value;
      });
      const forget = () => this.inFlight.delete(key);
      pending.then(forget, forget);
      this.inFlight.set(key, pending);
    }
    return pending;
  }

  /** True when `get(key)` would answer without computing: a fresh entry, or a call in flight. */
  has(key: string): boolean {
    if (!this.enabled) return false;
    const entry = this.entries.get(key);
    return (entry !== undefined && entry.expiresAtMs > this.now()) || this.inFlight.has(key);
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }

  private remember(key: string, value: T): void {
    if (this.entries.size >= this.maxEntries) {
      // Map iteration is insertion order: drop the oldest entry.
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(key, { value, expiresAtMs: this.now() + this.ttlSeconds * 1000 });
  }
}
