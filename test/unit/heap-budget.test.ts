import { describe, expect, it } from "bun:test";
import { HeapBudget } from "../../src/ops/heap-budget.ts";

const MiB = 2 ** 20;

/** A heap that grows by what the test says and shrinks to `liveBytes` when collected. */
function fakeHeap(startBytes: number, liveBytes: number) {
  let usedBytes = startBytes;
  const budget = new HeapBudget({
    growthBytes: 8 * MiB,
    heapUsedBytes: () => usedBytes,
    collect: () => {
      usedBytes = liveBytes;
    },
  });
  return {
    budget,
    set: (bytes: number) => {
      usedBytes = bytes;
    },
  };
}

describe("HeapBudget", () => {
  it.each([
    // the heap's size at start, then as successive checks see it (MiB) → full collections run
    ["idle: the heap does not grow", 20, [20, 20, 20, 20], 0],
    ["growth below the budget", 20, [23, 27.9], 0],
    ["growth of the budget", 20, [28], 1],
    ["a flood: one collection per budget's worth of growth", 20, [24, 28, 24, 28, 24, 28], 3],
    ["the engine collected meanwhile: growth counts from the lower size", 30, [14, 20, 21.9], 0],
    ["from the lower size, a full budget later", 30, [14, 22], 1],
  ])("%s", (_, startMiB, sizesMiB, expected) => {
    // A collection brings the heap back to 20 MiB; the next check sees what the table says.
    const heap = fakeHeap(startMiB * MiB, 20 * MiB);
    for (const sizeMiB of sizesMiB) {
      heap.set(sizeMiB * MiB);
      heap.budget.check();
    }
    expect(heap.budget.collections).toBe(expected);
  });

  it("measures the heap again after collecting: the next budget starts from what is live", () => {
    const heap = fakeHeap(10 * MiB, 12 * MiB);
    heap.set(19 * MiB);
    heap.budget.check();
    expect(heap.budget.collections).toBe(1);
    heap.set(19.9 * MiB); // 7.9 MiB above the 12 MiB left after the collection
    heap.budget.check();
    expect(heap.budget.collections).toBe(1);
    heap.set(20 * MiB);
    heap.budget.check();
    expect(heap.budget.collections).toBe(2);
  });

  it("with the real heap: collects after a burst of garbage, and the timer does not hold the process", async () => {
    const budget = new HeapBudget({ growthBytes: 4 * MiB, checkIntervalMs: 10 }).start();
    try {
      let kept: unknown[] = [];
      for (let round = 0; round < 50 && budget.collections === 0; round++) {
        kept = Array.from({ length: 20_000 }, (_, i) => ({ i, text: `garbage ${i} ${round}` }));
        await Bun.sleep(15);
      }
      expect(kept.length).toBe(20_000);
      expect(budget.collections).toBeGreaterThan(0);
    } finally {
      budget.stop();
    }
  });
});
