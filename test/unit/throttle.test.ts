import { describe, expect, it } from "bun:test";
import type { ClientIp } from "../../src/acl.ts";
import { LoginThrottle } from "../../src/authn/throttle.ts";

function ip(text: string): ClientIp {
  if (text.includes(":")) {
    // Enough of an IPv6 parser for the fixtures: full 8-group form.
    const bytes = new Uint8Array(16);
    text.split(":").forEach((group, i) => {
      const value = Number.parseInt(group, 16);
      bytes[i * 2] = value >> 8;
      bytes[i * 2 + 1] = value & 0xff;
    });
    return { text, bytes };
  }
  return { text, bytes: new Uint8Array(text.split(".").map(Number)) };
}

function throttle() {
  let now = 1_000_000;
  const t = new LoginThrottle({
    perAccount: { burst: 3, refillSeconds: 10 },
    perIp: { burst: 6, refillSeconds: 1 },
    maxEntries: 1000,
    nowMs: () => now,
  });
  return { t, advance: (seconds: number) => (now += seconds * 1000) };
}

describe("login throttle", () => {
  const attacker = ip("203.0.113.9");
  const alicesIp = ip("198.51.100.7");

  it("reports a refused pair once a minute, not on every request (no log flood)", () => {
    const { t, advance } = throttle();
    expect(t.shouldReportRefusal(attacker, "alice")).toBe(true);
    for (let i = 0; i < 1000; i++) expect(t.shouldReportRefusal(attacker, "alice")).toBe(false);
    expect(t.shouldReportRefusal(alicesIp, "alice")).toBe(true);
    expect(t.shouldReportRefusal(attacker, "bob")).toBe(true);
    advance(59);
    expect(t.shouldReportRefusal(attacker, "alice")).toBe(false);
    advance(1);
    expect(t.shouldReportRefusal(attacker, "alice")).toBe(true);
  });

  it("allows the burst, then asks to wait, then refills", () => {
    const { t, advance } = throttle();
    for (let i = 0; i < 3; i++) {
      expect(t.retryAfterSeconds(attacker, "alice")).toBe(0);
      t.recordFailure(attacker, "alice");
    }
    expect(t.retryAfterSeconds(attacker, "alice")).toBe(10);
    advance(4);
    expect(t.retryAfterSeconds(attacker, "alice")).toBe(6);
    advance(6);
    expect(t.retryAfterSeconds(attacker, "alice")).toBe(0);
  });

  it("an attacker hammering alice does not lock alice out from her own address", () => {
    const { t } = throttle();
    for (let i = 0; i < 50; i++) t.recordFailure(attacker, "alice");
    expect(t.retryAfterSeconds(attacker, "alice")).toBeGreaterThan(0);
    expect(t.retryAfterSeconds(alicesIp, "alice")).toBe(0);
  });

  it("the per-IP budget stops one address spraying many accounts", () => {
    const { t } = throttle();
    for (let i = 0; i < 6; i++) t.recordFailure(attacker, `user${i}`);
    expect(t.retryAfterSeconds(attacker, "someone-else")).toBeGreaterThan(0);
    expect(t.retryAfterSeconds(alicesIp, "someone-else")).toBe(0);
  });

  it("a success clears the pair's failures and is never slowed", () => {
    const { t } = throttle();
    t.recordFailure(alicesIp, "alice");
    t.recordFailure(alicesIp, "alice");
    t.recordSuccess(alicesIp, "alice");
    for (let i = 0; i < 2; i++) t.recordFailure(alicesIp, "alice");
    expect(t.retryAfterSeconds(alicesIp, "alice")).toBe(0);
  });

  it("keys IPv6 by /64 and IPv4-mapped IPv6 as IPv4", () => {
    const { t } = throttle();
    for (let i = 0; i < 3; i++) t.recordFailure(ip(`2001:db8:1:2:0:0:0:${i + 1}`), "alice");
    expect(t.retryAfterSeconds(ip("2001:db8:1:2:ffff:0:0:99"), "alice")).toBeGreaterThan(0);
    expect(t.retryAfterSeconds(ip("2001:db8:1:3:0:0:0:1"), "alice")).toBe(0);
    for (let i = 0; i < 3; i++) t.recordFailure(ip("0:0:0:0:0:ffff:cb00:7109"), "bob"); // 203.0.113.9
    expect(t.retryAfterSeconds(attacker, "bob")).toBeGreaterThan(0);
  });

  it("bounds memory: the least recently charged buckets are dropped", () => {
    let now = 0;
    const t = new LoginThrottle({
      perAccount: { burst: 1, refillSeconds: 60 },
      perIp: { burst: 1_000_000, refillSeconds: 1 },
      maxEntries: 100,
      nowMs: () => now++,
    });
    for (let i = 0; i < 1000; i++) t.recordFailure(attacker, `u${i}`);
    expect(t.trackedPairs).toBe(100);
  });
});

describe("registration budget", () => {
  it("account creations spend the address's budget, not any account's", () => {
    const { t } = throttle();
    const source = ip("192.0.2.1");
    for (let i = 0; i < 6; i++) t.chargeAddress(source);
    expect(t.retryAfterSeconds(source, "anyone")).toBeGreaterThan(0);
    expect(t.retryAfterSeconds(ip("192.0.2.2"), "anyone")).toBe(0);
  });
});
