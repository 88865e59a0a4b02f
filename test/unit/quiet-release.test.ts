import { describe, expect, it } from "bun:test";
import { QuietRelease } from "../../src/ops/heap-budget.ts";

/**
 * Each step is the CPU time (ms) the process used since the previous check (one check a second):
 * a burst is ≥ 100 ms in a second; ten quiet checks in a row after one hand memory back once.
 */
function run(cpuMsPerCheck: number[], releaseCpuMs = 0) {
  let cpuMicros = 0;
  const releasedAt: number[] = [];
  let check = 0;
  const quiet = new QuietRelease({
    cpuMicros: () => cpuMicros,
    release: () => {
      releasedAt.push(check);
      cpuMicros += releaseCpuMs * 1000; // a full collection costs CPU too
    },
  });
  for (const ms of cpuMsPerCheck) {
    check++;
    cpuMicros += ms * 1000;
    quiet.check();
  }
  return { releasedAt, releases: quiet.releases };
}

const quietFor = (checks: number) => Array<number>(checks).fill(1);

describe("QuietRelease", () => {
  it.each([
    // start-up is the first burst: its garbage is handed back ten quiet seconds after start
    ["quiet from start: one release, for start-up", quietFor(30), [10]],
    ["busy at once after start: the count starts after the burst", [200, ...quietFor(10)], [11]],
    ["nine quiet seconds are not enough", [200, ...quietFor(9)], []],
    [
      "a burst again before the tenth starts the count over",
      [200, ...quietFor(9), 150, ...quietFor(10)],
      [21],
    ],
    ["quiet for long after a release: no second release", [200, ...quietFor(40)], [11]],
    ["a second burst after the release: a second release", [...quietFor(10), 300, ...quietFor(10)], [10, 21]],
    [
      "just under the busy threshold is quiet (an engine collection after a burst)",
      [200, ...quietFor(5), 99, 40, ...quietFor(3)],
      [11],
    ],
    ["the threshold itself is busy", [...quietFor(10), 100, ...quietFor(10)], [10, 21]],
  ])("%s", (_, steps, expected) => {
    const { releasedAt, releases } = run(steps);
    expect(releasedAt).toEqual(expected);
    expect(releases).toBe(expected.length);
  });

  it("the release's own CPU time does not count as a burst", () => {
    // A release that costs 500 ms of CPU would otherwise look like a burst and release again.
    const { releasedAt } = run([200, ...quietFor(30)], 500);
    expect(releasedAt).toEqual([11]);
  });

  it("CPU used before it was made counts once, as start-up, not per second", () => {
    let cpuMicros = 5_000_000;
    let releases = 0;
    const quiet = new QuietRelease({ cpuMicros: () => cpuMicros, release: () => releases++ });
    for (let i = 0; i < 30; i++) {
      cpuMicros += 1000;
      quiet.check();
    }
    expect(releases).toBe(1);
  });

  it("start() checks on a timer that does not keep the process alive, stop() ends it", () => {
    const quiet = new QuietRelease({ cpuMicros: () => 0, release: () => {}, checkIntervalMs: 5 });
    expect(quiet.start()).toBe(quiet);
    quiet.stop();
  });
});
