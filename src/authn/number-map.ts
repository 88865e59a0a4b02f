/**
 * GenerationalMap's semantics for number keys and values (the login throttle's buckets), kept in
 * typed arrays instead of Maps. A flood of distinct (address, account) pairs fills the throttle's four
 * (issue 9 item 6), and in a Map an entry costs ~70 bytes of heap, plus the garbage each doubling
 * of its table leaves; the collector returns that only at a full collection (measured here:
 * 100,000 number entries, 68 B of heap and 130–170 B of RSS each). In a NumberTable an entry is
 * 16 bytes in a table at most 80% full (1 MiB for 50,000), nothing in it is a cell the collector visits, and the
 * two generations' tables are reused when they swap, so a flood that has filled them allocates
 * nothing more.
 *
 * Keys are integers in [0, 2^53) (the throttle's keyed hashes); values are any numbers.
 */
export class GenerationalNumberMap {
  private current: NumberTable;
  private previous: NumberTable;
  private readonly generationSize: number;

  constructor(maxEntries: number) {
    this.generationSize = Math.max(1, Math.floor(maxEntries / 2));
    const maxSlots = nextPowerOfTwo(this.generationSize / MAX_LOAD);
    this.current = new NumberTable(maxSlots);
    this.previous = new NumberTable(maxSlots);
  }

  /** The value, promoted to the current generation (a use keeps it alive). */
  get(key: number): number | undefined {
    const value = this.current.get(key);
    if (value !== undefined) return value;
    const old = this.previous.get(key);
    if (old === undefined) return undefined;
    this.previous.delete(key);
    this.insert(key, old);
    return old;
  }

  set(key: number, value: number): void {
    if (this.current.replace(key, value)) return;
    this.previous.delete(key);
    this.insert(key, value);
  }

  delete(key: number): void {
    if (!this.current.delete(key)) this.previous.delete(key);
  }

  clear(): void {
    this.current.clear();
    this.previous.clear();
  }

  get size(): number {
    return this.current.size + this.previous.size;
  }

  private insert(key: number, value: number): void {
    if (this.current.size >= this.generationSize) {
      // The oldest generation is dropped whole; its table becomes the new current one.
      const emptied = this.previous;
      emptied.clear();
      this.previous = this.current;
      this.current = emptied;
    }
    this.current.add(key, value);
  }
}

/** Slots a table starts with; it doubles as entries come, while under half full, up to its maximum. */
const INITIAL_SLOTS = 16;
/**
 * How full a table at its maximum size may get: a full generation of the default 50,000 entries
 * fits in 65,536 slots (1 MiB) instead of 131,072; linear probing then takes ~3 probes to find a
 * key and ~9 to miss, still well under a microsecond.
 */
const MAX_LOAD = 0.8;

/**
 * An open-addressing hash table (linear probing, deletion by backward shift, so no tombstones)
 * over one Float64Array of (key + 1, value) pairs; 0 marks an empty slot. At most half full while
 * it may grow, at most MAX_LOAD full at its maximum size.
 */
class NumberTable {
  private slots = new Float64Array(2 * INITIAL_SLOTS);
  private mask = INITIAL_SLOTS - 1;
  private count = 0;

  constructor(private readonly maxSlots: number) {}

  get size(): number {
    return this.count;
  }

  get(key: number): number | undefined {
    const slot = this.find(key);
    return slot < 0 ? undefined : this.slots[2 * slot + 1];
  }

  /** Sets the value when the key is here; false when it is not. */
  replace(key: number, value: number): boolean {
    const slot = this.find(key);
    if (slot < 0) return false;
    this.slots[2 * slot + 1] = value;
    return true;
  }

  /** Adds a key that is not here (GenerationalNumberMap checks first). */
  add(key: number, value: number): void {
    if (2 * (this.count + 1) > this.mask + 1 && this.mask + 1 < this.maxSlots) this.grow();
    let slot = home(key, this.mask);
    while (this.slots[2 * slot] !== 0) slot = (slot + 1) & this.mask;
    this.slots[2 * slot] = key + 1;
    this.slots[2 * slot + 1] = value;
    this.count++;
  }

  delete(key: number): boolean {
    let hole = this.find(key);
    if (hole < 0) return false;
    // Backward shift: move later entries of the probe run into the hole when their home slot
    // is not between the hole and where they are, so every entry stays reachable from its home.
    let next = hole;
    for (;;) {
      next = (next + 1) & this.mask;
      const stored = this.slots[2 * next] as number;
      if (stored === 0) break;
      const start = home(stored - 1, this.mask);
      const staysPut = hole <= next ? hole < start && start <= next : hole < start || start <= next;
      if (staysPut) continue;
      this.slots[2 * hole] = stored;
      this.slots[2 * hole + 1] = this.slots[2 * next + 1] as number;
      hole = next;
    }
    this.slots[2 * hole] = 0;
    this.count--;
    return true;
  }

  clear(): void {
    this.slots.fill(0);
    this.count = 0;
  }

  private find(key: number): number {
    const wanted = key + 1;
    let slot = home(key, this.mask);
    for (;;) {
      const stored = this.slots[2 * slot];
      if (stored === wanted) return slot;
      if (stored === 0) return -1;
      slot = (slot + 1) & this.mask;
    }
  }

  private grow(): void {
    const old = this.slots;
    this.slots = new Float64Array(2 * 2 * (this.mask + 1));
    this.mask = 2 * (this.mask + 1) - 1;
    this.count = 0;
    for (let i = 0; i < old.length; i += 2) {
      const stored = old[i] as number;
      if (stored !== 0) this.add(stored - 1, old[i + 1] as number);
    }
  }
}

/** The key's first slot: both 32-bit halves mixed (MurmurHash3's finalizer), so any key spreads. */
function home(key: number, mask: number): number {
  let h = (key >>> 0) ^ Math.imul(Math.floor(key / 2 ** 32), 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return ((h ^ (h >>> 16)) >>> 0) & mask;
}

function nextPowerOfTwo(n: number): number {
  let power = INITIAL_SLOTS;
  while (power < n) power *= 2;
  return power;
}
