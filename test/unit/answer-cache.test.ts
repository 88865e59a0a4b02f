/**
 * The hooks' answer cache (src/hooks/answer-cache.ts): bounded by entries and, when the caller says
 * what an answer weighs, by bytes (issue 12 item 6): an ext_auth program may print up to 64 KiB of
 * labels per user, so 10,000 remembered answers could hold hundreds of MiB.
 */
import { describe, expect, it } from "bun:test";
import { AnswerCache } from "../../src/hooks/answer-cache.ts";
import { authnOutcomeBytes, EXT_AUTH_CACHE_MAX_BYTES } from "../../src/hooks/ext-auth.ts";

const answer = (value: string) => () => Promise.resolve(value);

function weighed(maxBytes: number, maxEntries = 100) {
  const clock = { nowMs: 0 };
  const cache = new AnswerCache<string>(60, maxEntries, () => clock.nowMs, {
    maxBytes,
    sizeOf: (value) => value.length,
  });
  return { cache, clock };
}

describe("AnswerCache bounded by bytes", () => {
  const cases: {
    name: string;
    maxBytes: number;
    answers: [string, string][];
    kept: string[];
    bytes: number;
  }[] = [
    {
      name: "answers that fit are all kept",
      maxBytes: 30,
      answers: [
        ["a", "x".repeat(10)],
        ["b", "y".repeat(10)],
        ["c", "z".repeat(10)],
      ],
      kept: ["a", "b", "c"],
      bytes: 30,
    },
    {
      name: "past the budget, the oldest answers go first",
      maxBytes: 25,
      answers: [
        ["a", "x".repeat(10)],
        ["b", "y".repeat(10)],
        ["c", "z".repeat(10)],
      ],
      kept: ["b", "c"],
      bytes: 20,
    },
    {
      name: "an answer larger than the whole budget is answered, not remembered (nor evicts others)",
      maxBytes: 25,
      answers: [
        ["a", "x".repeat(10)],
        ["huge", "h".repeat(26)],
      ],
      kept: ["a"],
      bytes: 10,
    },
  ];
  for (const c of cases)
    it(c.name, async () => {
      const { cache } = weighed(c.maxBytes);
      for (const [key, value] of c.answers) expect(await cache.get(key, answer(value))).toBe(value);
      expect(c.answers.map(([key]) => key).filter((key) => cache.has(key))).toEqual(c.kept);
      expect(cache.bytes).toBe(c.bytes);
    });

  it("expired, replaced and cleared answers give their bytes back", async () => {
    const { cache, clock } = weighed(100);
    await cache.get("a", answer("x".repeat(10)));
    await cache.get("b", answer("y".repeat(20)));
    expect(cache.bytes).toBe(30);
    clock.nowMs = 61_000; // both expired
    await cache.get("a", answer("x".repeat(5))); // recomputed: the expired one's bytes are returned
    expect(cache.bytes).toBe(25); // b's 20 are still counted until it is looked up or evicted
    await cache.get("b", answer("y"));
    expect(cache.bytes).toBe(6);
    cache.clear();
    expect(cache.bytes).toBe(0);
    expect(cache.size).toBe(0);
  });

  it("the entry count still bounds it", async () => {
    const { cache } = weighed(1_000, 2);
    for (const key of ["a", "b", "c"]) await cache.get(key, answer(key));
    expect(cache.size).toBe(2);
    expect(cache.has("a")).toBe(false);
    expect(cache.bytes).toBe(2);
  });

  it("without a size function, only the count bounds it (bytes stay 0)", async () => {
    const cache = new AnswerCache<string>(60, 10);
    await cache.get("a", answer("x".repeat(1000)));
    expect(cache.size).toBe(1);
    expect(cache.bytes).toBe(0);
  });
});

describe("ext_auth answers are weighed by their labels", () => {
  it("a program's 64 KiB of labels weighs at least 128 KiB; 16 MiB keeps at most ~128 such answers", () => {
    const values = Array.from({ length: 1_000 }, (_, i) => `group-${String(i).padStart(50, "0")}`);
    const heavy = authnOutcomeBytes({ kind: "allow", labels: { group: values } });
    expect(values.join("").length).toBe(56_000); // with JSON quoting and commas, ~60 KiB of output
    expect(heavy).toBeGreaterThan(2 * values.join("").length);
    expect(Math.floor(EXT_AUTH_CACHE_MAX_BYTES / heavy)).toBeLessThan(200);
  });

  it("denials and answers without labels weigh little", () => {
    expect(authnOutcomeBytes({ kind: "deny" })).toBeLessThan(100);
    expect(authnOutcomeBytes({ kind: "no-match" })).toBeLessThan(100);
    expect(authnOutcomeBytes({ kind: "allow", labels: {} })).toBeLessThan(100);
  });
});
