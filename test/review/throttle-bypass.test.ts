/**
 * Review (after issue 8 M4 / L3 fixes): login throttle and fair password-check queue.
 * Each test FAILS on the current code.
 */
import { describe, expect, it } from "bun:test";
import type { ClientIp } from "../../src/acl.ts";
import { PasswordVerifier } from "../../src/authn/password-verifier.ts";
import { ServerBusy } from "../../src/errors.ts";

/** 2001:db8:0:N::1 — each N its own /64, all inside one /48 a single VPS customer often gets. */
function v6(n: number): ClientIp {
  const bytes = new Uint8Array(16);
  bytes.set([0x20, 0x01, 0x0d, 0xb8, 0, 0, n >> 8, n & 0xff]);
  bytes[15] = 1;
  return { text: `2001:db8:0:${n.toString(16)}::1`, bytes };
}

describe("review: fair password-check queue (issue 8 M4: a newcomer waits one round)", () => {
  it("1,024 /64s of one /48 holding one place each lock every new source out with 503", async () => {
    const verifier = new PasswordVerifier({
      cacheTtlSeconds: 60,
      maxCacheEntries: 10_000,
      maxConcurrentVerifications: 2,
      maxWaitingVerifications: 64,
    });
    const gates: (() => void)[] = [];
    const hold = () => new Promise<void>((resolve) => gates.push(resolve));
    // Both slots busy, then one waiting check from each of 1,024 attacker /64s.
    const running = [verifier.limited(hold, { ip: v6(0) }), verifier.limited(hold, { ip: v6(0) })];
    const waiting = Array.from({ length: 1024 }, (_, i) =>
      verifier.limited(async () => "attacker", { ip: v6(i + 1) }).catch((e: unknown) => e),
    );
    // A real user from another network, first attempt (not known-good yet).
    const newcomer: ClientIp = { text: "192.0.2.7", bytes: new Uint8Array([192, 0, 2, 7]) };
    const outcome = verifier.limited(async () => "newcomer", { ip: newcomer }).catch((e: unknown) => e);
    const early = await Promise.race([outcome, Bun.sleep(50).then(() => "still waiting")]);
    // Drain so nothing leaks.
    for (const open of gates.splice(0)) open();
    await Promise.all([...running, ...waiting]);
    await outcome;
    expect(early instanceof ServerBusy ? "refused busy at once" : String(early)).not.toBe(
      "refused busy at once",
    );
  });
});
