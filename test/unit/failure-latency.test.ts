import { describe, expect, it } from "bun:test";
import { FailureLatencyFloor } from "../../src/authn/failure-latency.ts";

function floor(capMs = 500, window = 4) {
  const waits: number[] = [];
  const f = new FailureLatencyFloor(capMs, window, async (ms) => {
    waits.push(ms);
  });
  return { f, waits };
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

  it("forgets failures older than its window", async () => {
    const { f, waits } = floor(500, 2);
    await f.equalize(90);
    await f.equalize(5);
    await f.equalize(5);
    await f.equalize(5);
    expect(waits).toEqual([85, 85]);
  });

  it("caps the floor, so a slow LDAP server cannot stretch every failure", async () => {
    const { f, waits } = floor(100);
    await f.equalize(3000);
    await f.equalize(10);
    expect(waits).toEqual([90]);
  });
});
