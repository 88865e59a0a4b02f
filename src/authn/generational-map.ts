/**
 * A bounded map for state an attacker can grow (login throttle buckets, verified credentials),
 * evicting in O(1) amortised: two generations, `current` and `previous`. New and touched entries
 * go to `current`; when it holds half the bound, `previous` is dropped whole and `current`
 * becomes it. So at most `maxEntries` are kept, an entry used within the last half-bound
 * insertions is never dropped, and nothing is ever iterated to find the oldest entry
 * (`map.keys().next()` after many deletes walks the deleted slots: up to 370 µs per eviction
 * under a flood, issue 9 item 6).
 */
export class GenerationalMap<V, K extends string | number = string> {
  private current = new Map<K, V>();
  private previous = new Map<K, V>();
  private readonly generationSize: number;

  constructor(maxEntries: number) {
    this.generationSize = Math.max(1, Math.floor(maxEntries / 2));
  }

  /** The value, promoted to the current generation (a use keeps it alive). */
  get(key: K): V | undefined {
    const value = this.current.get(key);
    if (value !== undefined) return value;
    const old = this.previous.get(key);
    if (old === undefined) return undefined;
    this.previous.delete(key);
    this.insert(key, old);
    return old;
  }

  set(key: K, value: V): void {
    if (this.current.has(key)) {
      this.current.set(key, value);
      return;
    }
    this.previous.delete(key);
    this.insert(key, value);
  }

  delete(key: K): void {
    if (!this.current.delete(key)) this.previous.delete(key);
  }

  clear(): void {
    this.current = new Map();
    this.previous = new Map();
  }

  get size(): number {
    return this.current.size + this.previous.size;
  }

  private insert(key: K, value: V): void {
    if (this.current.size >= this.generationSize) {
      this.previous = this.current;
      this.current = new Map();
    }
    this.current.set(key, value);
  }
}
