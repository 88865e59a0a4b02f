import { describe, expect, it } from "bun:test";
import { heapStats } from "bun:jsc";
import type { ClientIp } from "../../src/acl.ts";
import {
  type Admission,
  foldAccountName,
  LoginThrottle,
  type ThrottleOptions,
} from "../../src/authn/throttle.ts";
import { log } from "../../src/log.ts";

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

function throttle(overrides: Partial<ThrottleOptions> = {}) {
  let now = 1_000_000;
  const t = new LoginThrottle({
    perAccount: { burst: 3, refillSeconds: 10 },
    perIp: { burst: 6, refillSeconds: 1 },
    successExemptionSeconds: 3600,
    maxEntries: 1000,
    nowMs: () => now,
    ...overrides,
  });
  return { t, advance: (seconds: number) => (now += seconds * 1000) };
}

let guesses = 0;
/** A wrong password: admitted and settled as a failure, or refused. */
function fail(t: LoginThrottle, source: ClientIp, account: string): Admission["kind"] {
  const admission = t.admit(source, account, `guess-${guesses++}`);
  if (admission.kind === "admitted") admission.attempt.failed();
  return admission.kind;
}

/** The right password: admitted and settled as a success, or refused. */
function succeed(t: LoginThrottle, source: ClientIp, account: string): Admission["kind"] {
  const admission = t.admit(source, account, "correct-password");
  if (admission.kind === "admitted") admission.attempt.succeeded();
  return admission.kind;
}

/** Admitted and not settled yet: a request still being answered. */
function admitted(t: LoginThrottle, source: ClientIp, account: string, secret: string) {
  const admission = t.admit(source, account, secret);
  if (admission.kind !== "admitted") throw new Error(`refused (${admission.retryAfterSeconds} s)`);
  return admission.attempt;
}

describe("login throttle", () => {
  const attacker = ip("203.0.113.9");
  const alicesIp = ip("198.51.100.7");

  // Review L2: logging once per (address, account) let one address write 100,011 lines in 19 s
  // by varying the name.
  it("logs refusals once a minute per address and ~once a second overall, then says how many it left out", () => {
    const { t, advance } = throttle();
    const lines: string[] = [];
    const restore = log.capture(lines);
    try {
      for (let i = 0; i < 10_000; i++) t.reportRefusal(attacker, `name${i}`);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain("login throttled");
      // Many addresses: bounded overall (a burst of 20, then one a second).
      for (let i = 0; i < 10_000; i++) t.reportRefusal(ip(`10.0.${i >> 8}.${i & 255}`), "alice");
      expect(lines.length).toBeLessThanOrEqual(21);
      const before = lines.length;
      advance(60);
      t.reportRefusal(attacker, "alice");
      const after = lines.slice(before);
      expect(after).toHaveLength(2);
      expect(after[0]).toContain(`suppressed=${10_000 - 1 + 10_000 - (before - 1)} `);
      expect(after[1]).toContain(`ip=${attacker.text}`); // its minute is over
    } finally {
      restore();
    }
  });

  it("allows the burst, then asks to wait, then refills", () => {
    const { t, advance } = throttle();
    for (let i = 0; i < 3; i++) {
      expect(t.retryAfterSeconds(attacker, "alice")).toBe(0);
      expect(fail(t, attacker, "alice")).toBe("admitted");
    }
    expect(t.retryAfterSeconds(attacker, "alice")).toBe(10);
    expect(t.admit(attacker, "alice", "another-guess")).toEqual({ kind: "refused", retryAfterSeconds: 10 });
    advance(4);
    expect(t.retryAfterSeconds(attacker, "alice")).toBe(6);
    advance(6);
    expect(t.retryAfterSeconds(attacker, "alice")).toBe(0);
  });

  it("an attacker hammering alice does not lock alice out from her own address", () => {
    const { t } = throttle();
    for (let i = 0; i < 50; i++) fail(t, attacker, "alice");
    expect(t.retryAfterSeconds(attacker, "alice")).toBeGreaterThan(0);
    expect(t.retryAfterSeconds(alicesIp, "alice")).toBe(0);
  });

  it("the per-IP budget stops one address spraying many accounts", () => {
    const { t } = throttle();
    for (let i = 0; i < 6; i++) expect(fail(t, attacker, `user${i}`)).toBe("admitted");
    expect(t.retryAfterSeconds(attacker, "someone-else")).toBeGreaterThan(0);
    expect(t.retryAfterSeconds(alicesIp, "someone-else")).toBe(0);
  });

  // Review 2, M1: a success refunds its own charge but does not clear the bucket, or a victim's
  // logins at a shared address would hand an attacker there a fresh burst each time.
  it("a success refunds only its own charge, and the right password is never slowed", () => {
    const { t } = throttle();
    fail(t, alicesIp, "alice");
    fail(t, alicesIp, "alice");
    expect(succeed(t, alicesIp, "alice")).toBe("admitted");
    expect(fail(t, alicesIp, "alice")).toBe("admitted");
    expect(fail(t, alicesIp, "alice")).toBe("refused");
    expect(succeed(t, alicesIp, "alice")).toBe("admitted");
  });

  it("the victim's logins do not hand an attacker at the same address new guesses", () => {
    const { t, advance } = throttle();
    let attackerAdmitted = 0;
    for (let round = 0; round < 10; round++) {
      succeed(t, alicesIp, "alice");
      for (let i = 0; i < 2; i++) if (fail(t, alicesIp, "alice") === "admitted") attackerAdmitted++;
      advance(1);
    }
    expect(attackerAdmitted).toBeLessThanOrEqual(3 + 1); // the burst, plus what 10 s refill
  });

  it("folds the account's spelling, as LDAP matches it", () => {
    const { t } = throttle();
    for (const spelling of ["alice", "Alice", " ALICE "]) fail(t, attacker, spelling);
    expect(fail(t, attacker, "aLiCe")).toBe("refused");
  });

  // Review L3: fullwidth ａｌｉｃｅ and alİce bind as alice in LDAP, so they are alice's bucket.
  it("folds compatibility forms, full case, the Turkish i and invisible code points", () => {
    const spellings = [
      "ａｌｉｃｅ",
      "alİce",
      "alıce",
      "ALICE",
      "a\u00ADlice",
      "al\u200Bice",
      "alic\u0065\uFE0F",
    ];
    for (const spelling of spellings) {
      const { t } = throttle();
      for (let i = 0; i < 2; i++) fail(t, attacker, "alice");
      fail(t, attacker, spelling);
      expect({ spelling, kind: fail(t, attacker, "alice") }).toEqual({ spelling, kind: "refused" });
    }
    expect(foldAccountName("STRASSE")).toBe(foldAccountName("straße"));
    expect(foldAccountName("  Bob   Smith ")).toBe("bob smith");
    expect(foldAccountName("alice")).not.toBe(foldAccountName("alicf"));
  });

  it("keys IPv6 by /64 and IPv4-mapped IPv6 as IPv4", () => {
    const { t } = throttle();
    for (let i = 0; i < 3; i++) fail(t, ip(`2001:db8:1:2:0:0:0:${i + 1}`), "alice");
    expect(t.retryAfterSeconds(ip("2001:db8:1:2:ffff:0:0:99"), "alice")).toBeGreaterThan(0);
    expect(t.retryAfterSeconds(ip("2001:db8:1:3:0:0:0:1"), "alice")).toBe(0);
    for (let i = 0; i < 3; i++) fail(t, ip("0:0:0:0:0:ffff:cb00:7109"), "bob"); // 203.0.113.9
    expect(t.retryAfterSeconds(attacker, "bob")).toBeGreaterThan(0);
  });

  it("bounds memory: the least recently charged buckets are dropped", () => {
    let now = 0;
    const t = new LoginThrottle({
      perAccount: { burst: 1, refillSeconds: 60 },
      perIp: { burst: 1_000_000, refillSeconds: 1 },
      successExemptionSeconds: 3600,
      maxEntries: 100,
      nowMs: () => now++,
    });
    for (let i = 0; i < 1000; i++) fail(t, attacker, `u${i}`);
    expect(t.trackedPairs).toBe(100);
    expect(t.attemptsInFlight).toBe(0);
    for (let i = 0; i < 1000; i++) succeed(t, attacker, `u${i}`);
    expect(t.rememberedSuccesses).toBeLessThanOrEqual(100);
    expect(t.rememberedSuccesses).toBeGreaterThanOrEqual(50);
  });

  // Review L6: 110,000 forged refresh tokens with long subjects took RSS from 77 to 149 MB.
  it("long account names cost what short ones do: entries are keyed by a short hash", () => {
    const t = new LoginThrottle({
      perAccount: { burst: 1, refillSeconds: 60 },
      perIp: { burst: 1_000_000, refillSeconds: 1 },
      successExemptionSeconds: 3600,
      maxEntries: 100_000,
    });
    const long = "x".repeat(4000);
    Bun.gc(true);
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 20_000; i++) fail(t, ip(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`), `${long}${i}`);
    Bun.gc(true);
    const grownBytes = process.memoryUsage().heapUsed - before;
    expect(t.trackedPairs).toBe(20_000);
    // 20,000 names of 4 KB kept as keys would be 80 MB; hashed keys are ~100 bytes an entry.
    expect(grownBytes).toBeLessThan(15 * 2 ** 20);
  });

  // Issue 9 item 6: under a flood of distinct pairs the buckets must not be collector work. Map
  // entries keyed by the address string were one cell each (and ~70 bytes of heap per entry).
  it("a flood of distinct pairs adds no objects to the heap: buckets are numbers in typed arrays", () => {
    const t = new LoginThrottle({
      perAccount: { burst: 1, refillSeconds: 60 },
      perIp: { burst: 1_000_000, refillSeconds: 1 },
      successExemptionSeconds: 3600,
      maxEntries: 100_000,
    });
    const flood = (from: number, count: number) => {
      for (let i = from; i < from + count; i++)
        fail(t, ip(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`), `flood${i}`);
    };
    flood(0, 1000); // the tables exist, whatever their size
    Bun.gc(true);
    const before = heapStats();
    flood(1000, 40_000);
    Bun.gc(true);
    const after = heapStats();
    expect(t.trackedPairs).toBe(41_000);
    expect(after.objectCount - before.objectCount).toBeLessThan(1000);
    // Three kinds of bucket, 41,000 of each, at most 32 bytes an entry (some tables mid-growth).
    expect(after.heapSize - before.heapSize).toBeLessThan(8 * 2 ** 20);
  });
});

describe("charged on admission, settled by the outcome", () => {
  const attacker = ip("203.0.113.9");
  const alicesIp = ip("198.51.100.7");

  it("parallel guesses: attempts still in flight count, so no more than the burst is admitted", () => {
    const { t } = throttle();
    const results = Array.from({ length: 50 }, (_, i) => t.admit(attacker, "alice", `guess-${i}`).kind);
    expect(results.filter((kind) => kind === "admitted")).toHaveLength(3);
    // The address budget too: 6 accounts in flight, the 7th is refused.
    const spray = Array.from({ length: 20 }, (_, i) => t.admit(alicesIp, `user${i}`, "pw").kind);
    expect(spray.filter((kind) => kind === "admitted")).toHaveLength(6);
  });

  it("a success clears the pair and refunds the address: successful logins never spend the budget", () => {
    const { t } = throttle();
    for (let round = 0; round < 5; round++)
      for (let i = 0; i < 10; i++) expect(succeed(t, alicesIp, `user${i}`)).toBe("admitted");
    expect(t.retryAfterSeconds(alicesIp, "anyone")).toBe(0);
  });

  it("a failure's charge stands, even if the attempt is disposed afterwards", () => {
    const { t } = throttle();
    for (let i = 0; i < 3; i++) {
      using attempt = admitted(t, attacker, "alice", `guess-${i}`);
      attempt.failed();
    }
    expect(t.retryAfterSeconds(attacker, "alice")).toBe(10);
  });

  it("an attempt that was never answered (a back-end error) is refunded", () => {
    const { t } = throttle();
    for (let i = 0; i < 20; i++) {
      using _attempt = admitted(t, attacker, "alice", `guess-${i}`);
      // the authenticator threw: neither succeeded() nor failed()
    }
    expect(t.retryAfterSeconds(attacker, "alice")).toBe(0);
    expect(t.attemptsInFlight).toBe(0);
  });

  it("an attempt identical to one in flight is a retry: it does not charge the pair again", () => {
    const { t } = throttle();
    // A CI fan-out: the same correct password 5 times at once (the pair's burst is 3).
    const fanOut = Array.from({ length: 5 }, () => admitted(t, alicesIp, "alice", "correct-password"));
    expect(t.attemptsInFlight).toBe(1);
    expect(t.admit(alicesIp, "alice", "guess-1").kind).toBe("admitted"); // 1 of 3 was spent
    for (const attempt of fanOut) attempt.succeeded();
    expect(t.attemptsInFlight).toBe(1); // only the guess
    // The same wrong password twice at once is one guess: one charge of the pair (but two of the address).
    const wrong = Array.from({ length: 2 }, () => admitted(t, attacker, "alice", "same-guess"));
    for (const attempt of wrong) attempt.failed();
    expect(t.retryAfterSeconds(attacker, "alice")).toBe(0);
    expect(fail(t, attacker, "alice")).toBe("admitted");
    expect(fail(t, attacker, "alice")).toBe("admitted");
    expect(fail(t, attacker, "alice")).toBe("refused");
  });

  // Identical attempts in flight are one guess (parallel CI steps with the same credentials, a
  // client retrying): charging each would turn a burst of correct logins from one address into
  // 429s. Distinct guesses still spend the address budget.
  it("identical attempts in flight are one guess: admitted, and charged once", () => {
    const { t } = throttle();
    const results = Array.from({ length: 20 }, () => t.admit(attacker, "alice", "same-guess").kind);
    expect(results.every((kind) => kind === "admitted")).toBe(true);
    for (let i = 0; i < 5; i++) expect(t.admit(attacker, `other${i}`, "guess").kind).toBe("admitted");
    expect(t.admit(attacker, "another", "guess").kind).toBe("refused"); // 1 + 5 = the burst of 6
  });

  it("the secret is not kept: in-flight entries are HMACs and leave with the attempt", () => {
    const { t } = throttle();
    const attempt = admitted(t, alicesIp, "alice", "correct-password");
    expect(JSON.stringify([...Object.values(t)])).not.toContain("correct-password");
    attempt.succeeded();
    expect(t.attemptsInFlight).toBe(0);
  });
});

describe("a shared address (review M1)", () => {
  const shared = ip("198.51.100.1"); // NAT, CI runners, a proxy without real_ip_header
  const sprayOthers = (t: LoginThrottle) => {
    for (let i = 0; i < 6; i++) fail(t, shared, `nobody${i}`);
  };

  it("per-ip-budget-refuses-correct-password: a pair that logged in there recently is exempt", () => {
    const { t } = throttle();
    expect(succeed(t, shared, "alice")).toBe("admitted");
    sprayOthers(t);
    expect(t.retryAfterSeconds(shared, "newcomer")).toBeGreaterThan(0); // the budget still protects
    expect(succeed(t, shared, "alice")).toBe("admitted");
    expect(succeed(t, shared, "alice")).toBe("admitted");
  });

  it("the exemption covers the credential that succeeded, not the pair: other passwords are charged", () => {
    const { t } = throttle();
    succeed(t, shared, "alice");
    sprayOthers(t);
    expect(fail(t, shared, "alice")).toBe("refused");
    expect(succeed(t, shared, "alice")).toBe("admitted");
  });

  it("a remembered credential spends nothing", () => {
    const { t } = throttle();
    succeed(t, shared, "alice");
    for (let i = 0; i < 20; i++) expect(succeed(t, shared, "alice")).toBe("admitted");
    for (let i = 0; i < 6; i++) expect(fail(t, shared, `nobody${i}`)).toBe("admitted");
  });

  it("the exemption lasts successExemptionSeconds after the last success", () => {
    const { t, advance } = throttle({ perIp: { burst: 6, refillSeconds: 100_000 } });
    succeed(t, shared, "alice");
    advance(3000);
    succeed(t, shared, "alice"); // renews it
    sprayOthers(t);
    advance(3599);
    const inTime = t.admit(shared, "alice", "correct-password");
    expect(inTime.kind).toBe("admitted");
    if (inTime.kind === "admitted") inTime.attempt[Symbol.dispose](); // unanswered: no renewal
    advance(1);
    expect(t.admit(shared, "alice", "correct-password").kind).toBe("refused");
    expect(t.rememberedSuccesses).toBe(0);
  });

  it("only a success counts: a pair that only failed there is not exempt", () => {
    const { t } = throttle();
    fail(t, shared, "alice");
    sprayOthers(t);
    expect(t.retryAfterSeconds(shared, "alice")).toBeGreaterThan(0);
  });

  it("successExemptionSeconds: 0 turns the exemption off", () => {
    const { t } = throttle({ successExemptionSeconds: 0 });
    succeed(t, shared, "alice");
    sprayOthers(t);
    expect(t.retryAfterSeconds(shared, "alice")).toBeGreaterThan(0);
    expect(t.rememberedSuccesses).toBe(0);
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

/** 2001:db8:0:N::1 — each N its own /64, all inside one /48 a single VPS customer often gets. */
function v6InOne48(n: number): ClientIp {
  const bytes = new Uint8Array(16);
  bytes.set([0x20, 0x01, 0x0d, 0xb8, 0, 0, n >> 8, n & 0xff]);
  bytes[15] = 1;
  return { text: `2001:db8:0:${n.toString(16)}::1`, bytes };
}

describe("one account sprayed from many addresses (review finding 6, ASVS V2.2.1)", () => {
  it("failed guesses at one account from 300 /64s of one /48 are capped at 100 in a minute", () => {
    let now = 1_000_000;
    const throttle = new LoginThrottle({
      perAccount: { burst: 10, refillSeconds: 30 },
      perIp: { burst: 100, refillSeconds: 3 },
      successExemptionSeconds: 24 * 60 * 60,
      maxEntries: 100_000,
      nowMs: () => now,
    });
    // 300 /64s × 10 guesses each at alice, spread over one minute.
    let admitted = 0;
    for (let n = 0; n < 300; n++) {
      for (let g = 0; g < 10; g++) {
        const a = throttle.admit(v6InOne48(n), "alice", `guess-${n}-${g}`);
        if (a.kind === "admitted") {
          admitted++;
          a.attempt.failed();
        }
      }
      now += 200;
    }
    expect(admitted).toBeLessThanOrEqual(100);
  });

  it("at most 100 failures in any hour, from any number of addresses; then 429 with Retry-After", () => {
    const { t, advance } = throttle({ perAccountAnySource: { burst: 50, refillSeconds: 72 } });
    let admitted = 0;
    for (let i = 0; i < 3600; i++) {
      if (fail(t, v6InOne48(i), "alice") === "admitted") admitted++;
      advance(1);
    }
    expect(admitted).toBeLessThanOrEqual(100);
    expect(admitted).toBeGreaterThanOrEqual(99);
    fail(t, ip("192.0.2.8"), "alice"); // takes a token refilled since the last one, if any
    const refused = t.admit(ip("192.0.2.9"), "Alice", "another-guess");
    expect(refused.kind).toBe("refused");
    if (refused.kind === "refused") expect(refused.retryAfterSeconds).toBeGreaterThan(0);
    expect(t.retryAfterSeconds(ip("192.0.2.10"), "ALICE")).toBeGreaterThan(0); // folded name
    expect(t.retryAfterSeconds(ip("192.0.2.10"), "bob")).toBe(0); // other accounts unaffected
  });

  it("the owner's password that logged in from any address is not locked out, at a new address too", () => {
    const { t } = throttle({ perAccountAnySource: { burst: 5, refillSeconds: 1000 } });
    expect(succeed(t, ip("192.0.2.1"), "alice")).toBe("admitted"); // alice at home
    for (let i = 0; i < 20; i++) fail(t, v6InOne48(i), "alice"); // the spray
    expect(fail(t, ip("198.51.100.7"), "alice")).toBe("refused"); // a new guess, anywhere
    expect(succeed(t, ip("198.51.100.7"), "alice")).toBe("admitted"); // alice at the office
    expect(succeed(t, ip("198.51.100.7"), "ALICE")).toBe("admitted");
  });

  it("a success refunds the account's charge; an unanswered attempt too", () => {
    const { t } = throttle({ perAccountAnySource: { burst: 2, refillSeconds: 1000 } });
    expect(succeed(t, ip("192.0.2.1"), "bob")).toBe("admitted");
    const unanswered = admitted(t, ip("192.0.2.2"), "bob", "whatever");
    unanswered[Symbol.dispose]();
    expect(fail(t, ip("192.0.2.3"), "bob")).toBe("admitted");
    expect(fail(t, ip("192.0.2.4"), "bob")).toBe("admitted");
    expect(fail(t, ip("192.0.2.5"), "bob")).toBe("refused");
  });
});

describe("registration budget per IPv6 /48", () => {
  it("the /64s of one /48 share it; IPv4 is left to the address's budget; a release gives it back", () => {
    const { t } = throttle({ perIp: { burst: 3, refillSeconds: 1000 } });
    expect([0, 1, 2, 3].map((n) => t.reserveRegistration(v6InOne48(n)))).toEqual([
      0,
      0,
      0,
      expect.any(Number),
    ]);
    expect(t.reserveRegistration(v6InOne48(9))).toBeGreaterThan(0);
    t.releaseRegistration(v6InOne48(5));
    expect(t.reserveRegistration(v6InOne48(6))).toBe(0);
    expect(t.reserveRegistration(ip("2001:db9:0:0:0:0:0:1"))).toBe(0); // another /48
    for (let i = 0; i < 10; i++) expect(t.reserveRegistration(ip("192.0.2.1"))).toBe(0);
    expect(t.reserveRegistration(null)).toBe(0);
  });
});
