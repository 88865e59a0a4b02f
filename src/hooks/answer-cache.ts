/**
 * A short-lived memory of hook answers. Docker clients ask for a token before nearly every
 * registry call, so one `docker push` would otherwise start the same program dozens of times.
 * Only answers are remembered, never failures (a timeout or a crash must be retried), and
 * identical calls in flight share one run. Keys are chosen by the caller and never contain a
 * password (ext_auth uses an HMAC under a per-process random key).
 *
 * Bounded by entries and, when the caller says what an answer weighs (`weight`), by bytes too
 * (issue 12 item 6): an ext_auth program may print 64 KiB of labels per user, so 10,000 answers
 * could otherwise hold hundreds of MiB. The oldest answers go first; one heavier than the whole
 * budget is answered but not remembered.
 */
export interface AnswerWeight<T> {
  maxBytes: number;
  /** About what an answer holds in memory, in bytes. */
  sizeOf: (value: T) => number;
}

export class AnswerCache<T> {
  private readonly entries = new Map<string, { value: T; expiresAtMs: number; bytes: number }>();
  private readonly inFlight = new Map<string, Promise<T>>();
  private totalBytes = 0;

  constructor(
    readonly ttlSeconds: number,
    readonly maxEntries = 10_000,
    private readonly now: () => number = Date.now,
    private readonly weight?: AnswerWeight<T>,
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
      this.forget(key);
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
    this.totalBytes = 0;
  }

  get size(): number {
    return this.entries.size;
  }

  /** What the remembered answers weigh, by `weight.sizeOf` (0 without a weight). */
  get bytes(): number {
    return this.totalBytes;
  }

  private remember(key: string, value: T): void {
    const bytes = this.weight ? this.weight.sizeOf(value) : 0;
    const maxBytes = this.weight?.maxBytes ?? Number.POSITIVE_INFINITY;
    if (bytes > maxBytes) return;
    this.forget(key);
    while (this.entries.size >= this.maxEntries || this.totalBytes + bytes > maxBytes) {
      // Map iteration is insertion order: drop the oldest entry.
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.forget(oldest);
    }
    this.entries.set(key, { value, expiresAtMs: this.now() + this.ttlSeconds * 1000, bytes });
    this.totalBytes += bytes;
  }

  private forget(key: string): void {
    const entry = this.entries.get(key);
    if (entry === undefined) return;
    this.entries.delete(key);
    this.totalBytes -= entry.bytes;
  }
}
