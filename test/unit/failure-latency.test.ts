import { describe, expect, it } from "bun:test";
import { FailureLatencyFloor } from "../../src/authn/failure-latency.ts";

function floor(capMs = 500, windowMinutes = 5) {
  const waits: number[] = [];
  let now = 1_000_000_000;
  const f = new FailureLatencyFloor(
    capMs,
    windowMinutes,
    async (ms) => {
      waits.push(ms);
    },
    () => now,
  );
  return { f, waits, advanceSeconds: (s: number) => (now += s * 1000) };
}

describe("FailureLatencyFloor", () => {
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
