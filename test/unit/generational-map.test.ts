import { describe, expect, it } from "bun:test";
import { GenerationalMap } from "../../src/authn/generational-map.ts";

describe("GenerationalMap", () => {
  it("never holds more than maxEntries, and keeps what was used within the last half", () => {
    const map = new GenerationalMap<number>(100);
    for (let i = 0; i < 10_000; i++) {
      map.set(`k${i}`, i);
      expect(map.size).toBeLessThanOrEqual(100);
    }
    for (let i = 10_000 - 50; i < 10_000; i++) expect(map.get(`k${i}`)).toBe(i);
    expect(map.get("k0")).toBeUndefined();
  });

  it("a get promotes: an entry in use survives any number of insertions", () => {
    const map = new GenerationalMap<string>(10);
    map.set("kept", "yes");
    for (let i = 0; i < 1000; i++) {
      map.set(`other${i}`, "x");
      expect(map.get("kept")).toBe("yes");
    }
  });

  it("set replaces, delete removes from either generation", () => {
    const map = new GenerationalMap<number>(4);
    map.set("a", 1);
    map.set("b", 2);
    map.set("c", 3); // a, b now in the previous generation
    map.set("a", 10);
    expect(map.get("a")).toBe(10);
    map.delete("b");
    map.delete("c");
    expect(map.get("b")).toBeUndefined();
    expect(map.get("c")).toBeUndefined();
    expect(map.size).toBe(1);
  });
});
