import { describe, expect, it } from "bun:test";
import { FailureLatencyFloor } from "../../src/authn/failure-latency.ts";

function floor(capMs = 500, windowMinutes = 5, adaptive = true) {
  const waits: number[] = [];
  let now = 1_000_000_000;
  let clock = 0;
  const f = new FailureLatencyFloor(
    capMs,
    windowMinutes,
    async (ms) => {
      waits.push(ms);
    },
    () => now,
    () => clock,
  );
  if (adaptive) f.calibrate({ hashChecks: [], adaptive: true });
  /** A hash check that the fake clock says took `ms`. */
  const takes = (ms: number) => async () => {
    clock += ms;
  };
  return {
    f,
    waits,
    takes,
    tick: (ms: number) => (clock += ms),
    advanceSeconds: (s: number) => (now += s * 1000),
  };
}

// Review L5: the floor is known before the first failure is answered.
describe("FailureLatencyFloor: a floor known at start", () => {
  it("the first failure is padded to the slowest calibrated hash check (with a safety margin)", async () => {
    const { f, waits, takes } = floor(500, 5, false);
    f.calibrate({ hashChecks: [takes(20), takes(55), takes(30)] }); // dummy, bcrypt-10 user, ...
    await f.equalize(20); // the very first failure: an unknown name
    expect(waits).toEqual([55 * 1.2 + 5 - 20]);
    await f.equalize(55); // the bcrypt user's wrong password: the same total
    expect(waits[1]).toBe(55 * 1.2 + 5 - 55);
  });

  it("a failure answered before calibration has finished waits for it", async () => {
    const { f, waits, tick } = floor(500, 5, false);
    let finish = () => {};
    f.calibrate({ hashChecks: [() => new Promise<void>((resolve) => (finish = resolve))] });
    const pending = f.equalize(1);
    await Promise.resolve();
    expect(waits).toEqual([]);
    tick(40);
    finish();
    await pending;
    expect(waits).toEqual([40 * 1.2 + 5 - 1]);
  });

  it("LDAP: the operation timeout is the floor, capped", async () => {
    const { f, waits } = floor(500, 5, false);
    f.calibrate({ hashChecks: [], fixedMs: 10_000 });
    await f.equalize(30);
    expect(waits).toEqual([470]);
    expect(f.currentFloorMs).toBe(500);
  });

  it("without ext_auth, a slow failure does not raise the floor for later ones", async () => {
    const { f, waits, takes } = floor(500, 5, false);
    f.calibrate({ hashChecks: [takes(10)] });
    await f.equalize(300); // e.g. a queue wait
    await f.equalize(5);
    expect(waits).toEqual([10 * 1.2 + 5 - 5]);
  });
});

describe("FailureLatencyFloor with ext_auth (adaptive: the slowest recent failure)", () => {
  it("pads a fast failure (an unknown name) to the slowest recent one (a bcrypt user)", async () => {
    const { f, waits } = floor();
    await f.equalize(55); // a config user's wrong password: bcrypt cost 10
    await f.equalize(20); // an unknown name: the dummy hash only
    expect(waits).toEqual([35]);
  });

  it("never waits for the slowest failure itself", async () => {
    const { f, waits } = floor();
    await f.equalize(10);
    await f.equalize(80);
    expect(waits).toEqual([]);
  });

  // Review 2, L1: a window counted in failures could be flushed by a burst of fast ones.
  it("a burst of fast failures does not flush a slow one out of the window", async () => {
    const { f, waits } = floor();
    await f.equalize(90);
    for (let i = 0; i < 1000; i++) await f.equalize(5);
    expect(waits.every((ms) => ms === 85)).toBe(true);
    expect(waits).toHaveLength(1000);
  });

  it("forgets failures older than its window of minutes", async () => {
    const { f, waits, advanceSeconds } = floor(500, 2);
    await f.equalize(90);
    advanceSeconds(60);
    await f.equalize(5); // still within two minutes
    advanceSeconds(120);
    await f.equalize(5); // the 90 ms failure has left the window
    expect(waits).toEqual([85]);
  });

  it("caps the floor, so a slow LDAP server cannot stretch every failure", async () => {
    const { f, waits } = floor(100);
    await f.equalize(3000);
    await f.equalize(10);
    expect(waits).toEqual([90]);
  });
});
