import { describe, expect, it } from "bun:test";
import { heapStats } from "bun:jsc";
import { GenerationalMap } from "../../src/authn/generational-map.ts";
import { GenerationalNumberMap } from "../../src/authn/number-map.ts";

describe("GenerationalNumberMap", () => {
  it("never holds more than maxEntries, and keeps what was used within the last half", () => {
    const map = new GenerationalNumberMap(100);
    for (let i = 0; i < 10_000; i++) {
      map.set(i * 7919, i);
      expect(map.size).toBeLessThanOrEqual(100);
    }
    for (let i = 10_000 - 50; i < 10_000; i++) expect(map.get(i * 7919)).toBe(i);
    expect(map.get(0)).toBeUndefined();
  });

  // Issue 9 item 6: the throttle's default bound, 100,000 per kind, under a flood of new keys.
  it("a full map of 100,000 entries holds two tables of 1 MiB, and churning allocates no more", () => {
    Bun.gc(true);
    const before = heapStats().extraMemorySize;
    const map = new GenerationalNumberMap(100_000);
    for (let i = 0; i < 300_000; i++) map.set(i * 7919, i);
    Bun.gc(true);
    const filled = heapStats().extraMemorySize - before;
    for (let i = 300_000; i < 600_000; i++) map.set(i * 7919, i);
    Bun.gc(true);
    expect(map.size).toBe(100_000);
    expect(filled).toBeLessThan(2.2 * 2 ** 20);
    expect(heapStats().extraMemorySize - before).toBeLessThan(2.2 * 2 ** 20);
  });

  it("a get promotes: an entry in use survives any number of insertions", () => {
    const map = new GenerationalNumberMap(10);
    map.set(42, 1.5);
    for (let i = 0; i < 1000; i++) {
      map.set(1000 + i, 0);
      expect(map.get(42)).toBe(1.5);
    }
  });

  it("set replaces, delete removes from either generation", () => {
    const map = new GenerationalNumberMap(4);
    map.set(1, 1);
    map.set(2, 2);
    map.set(3, 3); // 1 and 2 now in the previous generation
    map.set(1, 10);
    expect(map.get(1)).toBe(10);
    map.delete(2);
    map.delete(3);
    expect(map.get(2)).toBeUndefined();
    expect(map.get(3)).toBeUndefined();
    expect(map.size).toBe(1);
  });

  // Keys at both ends of the range, 0 included (stored as key + 1) and the largest 53-bit one;
  // keys that differ only in their high half or share their low half, which must still spread.
  const edgeKeys = [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 52, Number.MAX_SAFE_INTEGER];
  it.each(edgeKeys)("keeps key %p apart from its neighbours", (key) => {
    const map = new GenerationalNumberMap(1000);
    for (const other of edgeKeys) if (other !== key) map.set(other, -other);
    expect(map.get(key)).toBeUndefined();
    map.set(key, 7);
    expect(map.get(key)).toBe(7);
    for (const other of edgeKeys) if (other !== key) expect(map.get(other)).toBe(-other);
    map.delete(key);
    expect(map.get(key)).toBeUndefined();
    expect(map.size).toBe(edgeKeys.length - 1);
  });

  // Random sets, gets and deletes on a small key space (so probe runs collide and deletions
  // shift entries back), against GenerationalMap over the same keys as the model.
  it.each([
    ["clustered keys", (n: number) => n],
    ["keys apart by 2^32", (n: number) => n * 2 ** 32],
    ["random 53-bit keys", (n: number) => Math.floor(((n * 2654435761) % 2 ** 32) * 2 ** 21) + n],
  ])("behaves as GenerationalMap does: %s", (_, keyOf) => {
    let seed = 12345;
    const random = (below: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % below;
    };
    for (const maxEntries of [2, 7, 64, 1000]) {
      const map = new GenerationalNumberMap(maxEntries);
      const model = new GenerationalMap<number, number>(maxEntries);
      for (let step = 0; step < 20_000; step++) {
        const key = keyOf(random(3 * maxEntries));
        const op = random(10);
        if (op < 5) {
          map.set(key, step);
          model.set(key, step);
        } else if (op < 8) expect(map.get(key)).toBe(model.get(key) as number);
        else {
          map.delete(key);
          model.delete(key);
        }
        expect(map.size).toBe(model.size);
      }
    }
  });
});
