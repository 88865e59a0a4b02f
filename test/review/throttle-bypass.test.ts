/**
 * Review (after issue 8 M4 / L3 fixes): login throttle and fair password-check queue.
 * Each test FAILS on the current code.
 */
import { describe, expect, it } from "bun:test";
import type { ClientIp } from "../../src/acl.ts";
import { PasswordVerifier } from "../../src/authn/password-verifier.ts";
import { LoginThrottle } from "../../src/authn/throttle.ts";
import { ServerBusy } from "../../src/errors.ts";

/** 2001:db8:0:N::1 — each N its own /64, all inside one /48 a single VPS customer often gets. */
function v6(n: number): ClientIp {
  const bytes = new Uint8Array(16);
  bytes.set([0x20, 0x01, 0x0d, 0xb8, 0, 0, n >> 8, n & 0xff]);
  bytes[15] = 1;
  return { text: `2001:db8:0:${n.toString(16)}::1`, bytes };
}

describe("review: login throttle against spraying one account (security.md §7.3 I2)", () => {
  it("one account can be guessed without limit from the /64s of a single /48", () => {
    let now = 1_000_000;
    const throttle = new LoginThrottle({
      perAccount: { burst: 10, refillSeconds: 30 },
      perIp: { burst: 100, refillSeconds: 3 },
      successExemptionSeconds: 24 * 60 * 60,
      maxEntries: 100_000,
      nowMs: () => now,
    });
    // 300 /64s × 10 guesses each at alice, spread over one minute: every one is admitted today.
    let admitted = 0;
    for (let n = 0; n < 300; n++) {
      for (let g = 0; g < 10; g++) {
        const a = throttle.admit(v6(n), "alice", `guess-${n}-${g}`);
        if (a.kind === "admitted") {
          admitted++;
          a.attempt.failed();
        }
      }
      now += 200;
    }
    // ASVS V2.2.1 / security.md I2: at most ~100 failed guesses per hour per account, wherever
    // they come from (a credential that already logged in stays exempt, so the owner is not locked out).
    expect(admitted).toBeLessThanOrEqual(100);
  });
});

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
    expect(early instanceof ServerBusy ? "refused busy at once" : String(early)).not.toBe("refused busy at once");
  });
});
