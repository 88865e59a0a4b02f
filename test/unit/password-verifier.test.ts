/** The password verifier: success cache (HMAC-keyed, TTL, hash-bound), concurrency limit, single flight. */
import { afterEach, describe, expect, it, spyOn } from "bun:test";
import { isSupportedHash, PasswordVerifier } from "../../src/authn/password-verifier.ts";
import { ServerBusy } from "../../src/errors.ts";
import { log } from "../../src/log.ts";
import { hashPassword } from "../helpers.ts";

const HASH = hashPassword("secret");
const OTHER_HASH = hashPassword("secret"); // same password, different salt
const DUMMY_HASH = hashPassword("never-sent");

const spies: { mockRestore(): void }[] = [];
afterEach(() => {
  for (const spy of spies.splice(0)) spy.mockRestore();
});

function countHashChecks() {
  const spy = spyOn(Bun.password, "verify");
  spies.push(spy);
  return spy;
}

function verifierAt(
  clock: { nowMs: number },
  overrides: Partial<ConstructorParameters<typeof PasswordVerifier>[0]> = {},
) {
  const verifier = new PasswordVerifier({
    cacheTtlSeconds: 60,
    maxCacheEntries: 100,
    maxConcurrentVerifications: 4,
    maxWaitingVerifications: 64,
    now: () => clock.nowMs,
    ...overrides,
  });
  // Made ahead: the default dummy hash is made on first use, off the loop these tests step by hand.
  verifier.useDummyHash(DUMMY_HASH);
  return verifier;
}

/** Replaces Bun.password.verify with a controllable fake that records concurrency. */
function slowHashChecks(result = true) {
  const state = { running: 0, peak: 0, calls: 0, release: [] as (() => void)[] };
  const spy = spyOn(Bun.password, "verify").mockImplementation(async () => {
    state.calls++;
    state.running++;
    state.peak = Math.max(state.peak, state.running);
    await new Promise<void>((resolve) => state.release.push(resolve));
    state.running--;
    return result;
  });
  spies.push(spy);
  return state;
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

describe("PasswordVerifier", () => {
  it("verifies and rejects", async () => {
    const verifier = verifierAt({ nowMs: 0 });
    expect(await verifier.verify("alice", "secret", HASH)).toBe(true);
    expect(await verifier.verify("alice", "wrong", HASH)).toBe(false);
  });

  it("an empty password is false without hashing", async () => {
    const checks = countHashChecks();
    expect(await verifierAt({ nowMs: 0 }).verify("alice", "", HASH)).toBe(false);
    expect(checks).not.toHaveBeenCalled();
  });

  it("a cache hit does not hash again", async () => {
    const verifier = verifierAt({ nowMs: 0 });
    const checks = countHashChecks();
    expect(await verifier.verify("alice", "secret", HASH)).toBe(true);
    expect(await verifier.verify("alice", "secret", HASH)).toBe(true);
    expect(checks).toHaveBeenCalledTimes(1);
    expect(verifier.cacheSize).toBe(1);
  });

  it("entries expire after the TTL (injected clock)", async () => {
    const clock = { nowMs: 1_000_000 };
    const verifier = verifierAt(clock, { cacheTtlSeconds: 30 });
    const checks = countHashChecks();
    await verifier.verify("alice", "secret", HASH);
    clock.nowMs += 29_999;
    await verifier.verify("alice", "secret", HASH);
    expect(checks).toHaveBeenCalledTimes(1);
    clock.nowMs += 1;
    await verifier.verify("alice", "secret", HASH);
    expect(checks).toHaveBeenCalledTimes(2);
  });

  it("a changed hash misses, even for the same password", async () => {
    const verifier = verifierAt({ nowMs: 0 });
    const checks = countHashChecks();
    await verifier.verify("alice", "secret", HASH);
    expect(await verifier.verify("alice", "secret", OTHER_HASH)).toBe(true);
    expect(checks).toHaveBeenCalledTimes(2);
    expect(await verifier.verify("alice", "secret", hashPassword("rotated"))).toBe(false);
  });

  it("the cache is per user: another name with the same password and hash misses", async () => {
    const verifier = verifierAt({ nowMs: 0 });
    const checks = countHashChecks();
    await verifier.verify("alice", "secret", HASH);
    await verifier.verify("bob", "secret", HASH);
    expect(checks).toHaveBeenCalledTimes(2);
  });

  it("the user/password boundary cannot be shifted by a NUL", async () => {
    const verifier = verifierAt({ nowMs: 0 });
    const checks = countHashChecks();
    const hash = hashPassword("\u0000secret");
    expect(await verifier.verify("alice", "\u0000secret", hash)).toBe(true);
    expect(await verifier.verify("alice\u0000", "secret", hash)).toBe(false);
    expect(checks).toHaveBeenCalledTimes(2);
  });

  it("only successes are cached", async () => {
    const verifier = verifierAt({ nowMs: 0 });
    const checks = countHashChecks();
    for (let i = 0; i < 3; i++) expect(await verifier.verify("alice", "wrong", HASH)).toBe(false);
    expect(checks).toHaveBeenCalledTimes(3);
    expect(verifier.cacheSize).toBe(0);
  });

  it("the cache holds at most maxCacheEntries", async () => {
    const verifier = verifierAt({ nowMs: 0 }, { maxCacheEntries: 3 });
    // Two generations (src/authn/generational-map.ts): the older half is dropped at once.
    for (const user of ["a", "b", "c", "d", "e", "f", "g"]) {
      await verifier.verify(user, "secret", HASH);
      expect(verifier.cacheSize).toBeLessThanOrEqual(3);
    }
  });

  it("clear() forgets every success", async () => {
    const verifier = verifierAt({ nowMs: 0 });
    await verifier.verify("alice", "secret", HASH);
    verifier.clear();
    expect(verifier.cacheSize).toBe(0);
  });

  it("a malformed hash is false, not an exception", async () => {
    const verifier = verifierAt({ nowMs: 0 });
    for (const hash of [
      "",
      "plain",
      "$2y$05$short",
      "$argon2id$v=19$m=1,t=1,p=1$bad$bad",
      "$2y$99$".padEnd(60, "a"),
    ])
      expect(await verifier.verify("alice", "secret", hash)).toBe(false);
  });

  it("never runs more hash checks at once than the limit; the rest queue", async () => {
    const verifier = verifierAt({ nowMs: 0 }, { maxConcurrentVerifications: 2 });
    const state = slowHashChecks();
    const results = ["a", "b", "c", "d", "e"].map((user) => verifier.verify(user, "secret", HASH));
    await settle();
    expect(state.running).toBe(2);
    while (state.calls < 5 || state.release.length > 0) {
      state.release.shift()?.();
      await settle();
    }
    expect(await Promise.all(results)).toEqual([true, true, true, true, true]);
    expect(state.peak).toBe(2);
    expect(state.calls).toBe(5);
  });

  it("the dummy check counts against the limit too", async () => {
    const verifier = verifierAt({ nowMs: 0 }, { maxConcurrentVerifications: 1 });
    const state = slowHashChecks(false);
    const pending = [verifier.verifyDummy("x"), verifier.verify("alice", "secret", HASH)];
    await settle();
    expect(state.running).toBe(1);
    while (state.calls < 2 || state.release.length > 0) {
      state.release.shift()?.();
      await settle();
    }
    expect(await Promise.all(pending)).toEqual([false, false]);
    expect(state.peak).toBe(1);
  });

  it("identical concurrent requests share one hash check (single flight)", async () => {
    const verifier = verifierAt({ nowMs: 0 });
    const state = slowHashChecks();
    const results = Array.from({ length: 10 }, () => verifier.verify("alice", "secret", HASH));
    await settle();
    expect(state.calls).toBe(1);
    state.release.shift()?.();
    expect(await Promise.all(results)).toEqual(Array(10).fill(true));
    expect(state.calls).toBe(1);
  });

  it("single flight does not merge different passwords", async () => {
    const verifier = verifierAt({ nowMs: 0 });
    const results = await Promise.all([
      verifier.verify("alice", "secret", HASH),
      verifier.verify("alice", "wrong", HASH),
    ]);
    expect(results).toEqual([true, false]);
  });

  it("the wait queue is bounded: beyond it a check fails at once with ServerBusy (503, Retry-After)", async () => {
    const lines: string[] = [];
    const restore = log.capture(lines);
    try {
      const verifier = verifierAt(
        { nowMs: 0 },
        { maxConcurrentVerifications: 2, maxWaitingVerifications: 3 },
      );
      const state = slowHashChecks(false);
      const admitted = ["a", "b", "c", "d", "e"].map((user) => verifier.verify(user, "guess", HASH));
      const refused = ["f", "g"].map((user) => verifier.verify(user, "guess", HASH));
      await settle();
      expect(state.running).toBe(2);
      for (const result of refused) {
        const error = await result.catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ServerBusy);
        expect((error as ServerBusy).status).toBe(503);
        expect((error as ServerBusy).retryAfterSeconds).toBeGreaterThan(0);
      }
      // The dummy check and new-password hashing share the queue.
      await expect(verifier.verifyDummy("x")).rejects.toBeInstanceOf(ServerBusy);
      await expect(verifier.limited(async () => 1)).rejects.toBeInstanceOf(ServerBusy);
      // Logged once, not per refused request.
      expect(lines.filter((line) => line.includes("queue full"))).toHaveLength(1);
      while (state.calls < 5 || state.release.length > 0) {
        state.release.shift()?.();
        await settle();
      }
      expect(await Promise.all(admitted)).toEqual([false, false, false, false, false]);
      // Drained: checks are accepted again.
      const again = verifier.verify("h", "guess", HASH);
      await settle();
      state.release.shift()?.();
      expect(await again).toBe(false);
    } finally {
      restore();
    }
  });

  it("a cached credential and a request joining one in flight never wait in (or for) the queue", async () => {
    const verifier = verifierAt({ nowMs: 0 }, { maxConcurrentVerifications: 1, maxWaitingVerifications: 1 });
    expect(await verifier.verify("alice", "secret", HASH)).toBe(true); // cached from now on
    const state = slowHashChecks(false);
    const running = verifier.verify("bob", "guess", HASH);
    const queued = verifier.verify("carol", "guess", HASH);
    await settle();
    expect(state.running).toBe(1);
    await expect(verifier.verify("dave", "guess", HASH)).rejects.toBeInstanceOf(ServerBusy); // full
    expect(await verifier.verify("alice", "secret", HASH)).toBe(true); // cached: answered at once
    const joined = verifier.verify("bob", "guess", HASH); // same as the running one: shares it
    await settle();
    state.release.shift()?.();
    expect(await running).toBe(false);
    expect(await joined).toBe(false);
    await settle();
    state.release.shift()?.();
    expect(await queued).toBe(false);
    expect(state.calls).toBe(2);
  });

  // Review M4: ten addresses kept the shared queue full, so every newcomer got 503 for 25 s.
  describe("fair per source (review M4)", () => {
    const from = (text: string, isKnownGood = false) => ({
      ip: { text, bytes: new Uint8Array(text.split(".").map(Number)) },
      isKnownGood,
    });
    const flooder = from("203.0.113.1");

    it("a newcomer is queued even when a flood fills the queue, and waits one round", async () => {
      const verifier = verifierAt(
        { nowMs: 0 },
        { maxConcurrentVerifications: 1, maxWaitingVerifications: 4 },
      );
      const state = slowHashChecks(false);
      const flood = Array.from({ length: 10 }, (_, i) =>
        verifier.verify(`u${i}`, "guess", HASH, flooder).catch((e: unknown) => e),
      );
      await settle();
      const newcomer = verifier.verify("newcomer", "guess", HASH, from("198.51.100.2"));
      let answered = false;
      void newcomer.then(() => (answered = true));
      await settle();
      // One running, four waiting: the rest are refused for the flood's own pressure, so their
      // throttle charge stands. The newcomer's first place is its own, even in a full queue.
      const refused = await Promise.all(flood.slice(5));
      for (const error of refused) {
        expect(error).toBeInstanceOf(ServerBusy);
        expect((error as ServerBusy).keepsThrottleCharge).toBe(true);
      }
      // One round: the running check ends, one of the flood's runs, then the newcomer's.
      let checksEnded = 0;
      while (!answered && checksEnded < 10) {
        state.release.shift()?.();
        checksEnded++;
        for (let i = 0; i < 4; i++) await settle();
      }
      expect(await newcomer).toBe(false);
      expect(checksEnded).toBe(3);
      while (state.release.length > 0) {
        state.release.shift()?.();
        await settle();
      }
    });

    it("a source alone may use the whole queue; beyond it, its own pressure keeps the charge", async () => {
      const verifier = verifierAt(
        { nowMs: 0 },
        { maxConcurrentVerifications: 1, maxWaitingVerifications: 2 },
      );
      slowHashChecks(false);
      // One running, two waiting; the fourth is refused.
      const results = Array.from({ length: 4 }, (_, i) =>
        verifier.verify(`u${i}`, "guess", HASH, flooder).catch((e: unknown) => e),
      );
      await settle();
      const error = await results[3];
      expect(error).toBeInstanceOf(ServerBusy);
      expect((error as ServerBusy).keepsThrottleCharge).toBe(true);
    });

    it("with more sources than places, a newcomer still waits only one round", async () => {
      const verifier = verifierAt(
        { nowMs: 0 },
        { maxConcurrentVerifications: 1, maxWaitingVerifications: 2 },
      );
      const state = slowHashChecks(false);
      // 90 addresses (one IPv6 /56 holds 256 /64s), each sending 3.
      const flood = Array.from({ length: 90 * 3 }, (_, i) =>
        verifier.verify(`u${i}`, "guess", HASH, from(`203.0.113.${i % 90}`)).catch((e: unknown) => e),
      );
      await settle();
      const newcomer = verifier.verify("newcomer", "guess", HASH, from("198.51.100.2"));
      let answered = false;
      void newcomer.then(() => (answered = true));
      let checksEnded = 0;
      while (!answered && checksEnded < 200) {
        state.release.shift()?.();
        checksEnded++;
        for (let i = 0; i < 4; i++) await settle();
      }
      expect(await newcomer).toBe(false);
      // The running one, then one per flooding source ahead (90), then the newcomer's.
      expect(checksEnded).toBeLessThanOrEqual(1 + 90 + 1 + 2);
      while (state.release.length > 0) {
        state.release.shift()?.();
        await settle();
      }
      await Promise.all(flood);
    });

    // Review finding 7: 1,024 /64s (one /54) holding one place each refused every newcomer at once.
    describe("past 1,024 waiting sources, sources fold into wider prefixes (review finding 7)", () => {
      /** 2001:db8:H:N::1 — each N its own /64; H picks the /48. */
      const v6 = (n: number, h = 0) => {
        const bytes = new Uint8Array(16);
        bytes.set([0x20, 0x01, 0x0d, 0xb8, h >> 8, h & 0xff, n >> 8, n & 0xff]);
        bytes[15] = 1;
        return { ip: { text: `2001:db8:${h.toString(16)}:${n.toString(16)}::1`, bytes } };
      };
      const newcomer = from("192.0.2.7");

      it("1,024 /64s of one /48 holding one place each do not lock a new source out with 503", async () => {
        const verifier = new PasswordVerifier({
          cacheTtlSeconds: 60,
          maxCacheEntries: 10_000,
          maxConcurrentVerifications: 2,
          maxWaitingVerifications: 64,
        });
        const gates: (() => void)[] = [];
        const hold = () => new Promise<void>((resolve) => gates.push(resolve));
        const running = [verifier.limited(hold, v6(0)), verifier.limited(hold, v6(0))];
        const waiting = Array.from({ length: 1024 }, (_, i) =>
          verifier.limited(async () => "attacker", v6(i + 1)).catch((e: unknown) => e),
        );
        const outcome = verifier.limited(async () => "newcomer", newcomer).catch((e: unknown) => e);
        const early = await Promise.race([outcome, Bun.sleep(50).then(() => "still waiting")]);
        for (const open of gates.splice(0)) open();
        await Promise.all([...running, ...waiting]);
        expect(await outcome).toBe("newcomer");
        expect(early instanceof ServerBusy ? "refused busy at once" : String(early)).not.toBe(
          "refused busy at once",
        );
      });

      it("the newcomer waits one round of folded lanes, and later /64s of the flood join their lane", async () => {
        const verifier = verifierAt(
          { nowMs: 0 },
          { maxConcurrentVerifications: 1, maxWaitingVerifications: 64 },
        );
        const state = slowHashChecks(false);
        const flood = Array.from({ length: 1025 }, (_, i) =>
          verifier.verify(`u${i}`, "guess", HASH, v6(i)).catch((e: unknown) => e),
        );
        await settle();
        // The table is full: the newcomer folds the flood's /64s into their /56s (5 of them), and
        // new sources are keyed by their /56 (or /24) while the flood lasts.
        const first = verifier.verify("newcomer", "guess", HASH, newcomer);
        // More of the flood, from /64s not seen yet: into the folded lanes, not new ones.
        const more = Array.from({ length: 2000 }, (_, i) =>
          verifier.verify(`v${i}`, "guess", HASH, v6(1100 + i)).catch((e: unknown) => e),
        );
        await settle();
        const second = verifier.verify("newcomer2", "guess", HASH, from("198.51.100.9"));
        let answered = 0;
        void first.then(() => answered++);
        void second.then(() => answered++);
        let checksEnded = 0;
        while (answered < 2 && checksEnded < 100) {
          state.release.shift()?.();
          checksEnded++;
          for (let i = 0; i < 4; i++) await settle();
        }
        expect(await first).toBe(false);
        expect(await second).toBe(false);
        // The running check, a turn of each /56 lane ahead (5 before the first newcomer, 9 more
        // from the later /64s: /56s 4 to 12), then the two newcomers.
        expect(checksEnded).toBeLessThanOrEqual(1 + 5 + 1 + 9 + 1 + 2);
        // Drain; the later /64s that were refused were refused for their lanes' own pressure.
        let done = 0;
        const all = [...flood, ...more].map((p) => p.finally(() => done++));
        while (done < all.length) {
          state.release.shift()?.();
          await settle();
        }
        const refused = (await Promise.all(more)).filter((e) => e instanceof ServerBusy) as ServerBusy[];
        expect(refused.length).toBeGreaterThan(0);
        for (const error of refused) expect(error.keepsThrottleCharge).toBe(true);
      });

      it("bounded: 5,000 sources in 5,000 /48s keep at most 1,024 + maxWaitingVerifications waiting", async () => {
        const verifier = verifierAt(
          { nowMs: 0 },
          { maxConcurrentVerifications: 1, maxWaitingVerifications: 64 },
        );
        const state = slowHashChecks(false);
        let refusedCount = 0;
        const flood = Array.from({ length: 5000 }, (_, i) =>
          verifier.verify(`u${i}`, "guess", HASH, v6(1, i)).catch((e: unknown) => {
            refusedCount++;
            return e;
          }),
        );
        await settle();
        for (let i = 0; i < 4; i++) await settle();
        expect(5000 - refusedCount).toBeLessThanOrEqual(1 + 1024 + 64);
        // A newcomer from another network still gets a place.
        const late = verifier.verify("newcomer", "guess", HASH, newcomer).catch((e: unknown) => e);
        await settle();
        let answered = false;
        void late.then(() => (answered = true));
        let checksEnded = 0;
        while (!answered && checksEnded < 3000) {
          state.release.shift()?.();
          checksEnded++;
          await settle();
        }
        expect(await late).toBe(false);
        let done = 0;
        const all = flood.map((p) => p.finally(() => done++));
        while (done < all.length) {
          state.release.shift()?.();
          await settle();
        }
      });
    });

    it("a credential that already succeeded from that address has a reserved way through", async () => {
      const verifier = verifierAt(
        { nowMs: 0 },
        { maxConcurrentVerifications: 1, maxWaitingVerifications: 2 },
      );
      const state = slowHashChecks(false);
      const flood = Array.from({ length: 20 }, (_, i) =>
        Promise.resolve(i).then((n) =>
          verifier.verify(`u${n}`, "guess", HASH, from(`203.0.113.${n}`)).catch(() => null),
        ),
      );
      await settle();
      const knownGood = verifier.verify("alice", "alice-pw", HASH, from("203.0.113.7", true));
      await settle();
      state.release.shift()?.(); // the running check ends: the known-good one goes next
      await settle();
      state.release.shift()?.();
      expect(await knownGood).toBe(false); // the fake says false; what counts is that it ran
      while (state.release.length > 0) {
        state.release.shift()?.();
        await settle();
      }
      await Promise.all(flood);
    });
  });

  it("verifyDummy is always false and really hashes", async () => {
    const checks = countHashChecks();
    expect(await verifierAt({ nowMs: 0 }).verifyDummy("anything")).toBe(false);
    expect(checks).toHaveBeenCalledTimes(1);
  });
});

// Issue 12 item 6: the start-up calibration times one hash computation at the dummy's cost, not
// two. Making the dummy (a hash) costs what checking against it (a verify) costs, so the first
// check times the making; each argon2id computation holds memoryCost KiB while it runs.
describe("dummyCheck: the failure-latency calibration's check at the dummy's cost", () => {
  it("the first call makes the dummy and times that: one hash, no verify", async () => {
    const verifier = new PasswordVerifier();
    const hashes: string[] = [];
    verifier.useDummyHash(async () => {
      hashes.push("made");
      return DUMMY_HASH;
    });
    const verify = countHashChecks();
    await verifier.dummyCheck("probe");
    expect(hashes).toEqual(["made"]);
    expect(verify).toHaveBeenCalledTimes(0);
    expect(await verifier.dummy()).toBe(DUMMY_HASH);
  });

  it("once the dummy exists (a reload's calibration), it verifies against it: one verify, no new dummy", async () => {
    const verifier = new PasswordVerifier();
    verifier.useDummyHash(DUMMY_HASH);
    const verify = countHashChecks();
    await verifier.dummyCheck("probe");
    expect(verify).toHaveBeenCalledTimes(1);
    expect(verify.mock.calls[0]?.[1]).toBe(DUMMY_HASH);
  });

  it("a failed dummy check still settles (calibration must not hang)", async () => {
    const verifier = new PasswordVerifier();
    verifier.useDummyHash(() => Promise.reject(new Error("no entropy")));
    await expect(verifier.dummyCheck("probe")).rejects.toThrow("no entropy");
  });
});

describe("passwords longer than bcrypt's 72 bytes", () => {
  const long = `${"x".repeat(72)}-and-more-than-bcrypt-reads`;
  // What htpasswd -B and Go's bcrypt (docker_auth) store: bcrypt over the first 72 bytes.
  const truncatedHash = Bun.password.hashSync(Buffer.from(long).subarray(0, 72), {
    algorithm: "bcrypt",
    cost: 4,
  });
  // What Bun (regauth hash-password) stores: bcrypt over SHA-512 of the whole password.
  const bunHash = hashPassword(long);

  it("a hash made by htpasswd or docker_auth verifies with the whole password", async () => {
    expect(await verifierAt({ nowMs: 0 }).verify("alice", long, truncatedHash)).toBe(true);
  });
  it("a hash made by Bun verifies too", async () => {
    expect(await verifierAt({ nowMs: 0 }).verify("alice", long, bunHash)).toBe(true);
  });
  it("a wrong long password is refused by both", async () => {
    const wrong = `${"y".repeat(72)}-and-more`;
    expect(await verifierAt({ nowMs: 0 }).verify("alice", wrong, truncatedHash)).toBe(false);
    expect(await verifierAt({ nowMs: 0 }).verify("alice", wrong, bunHash)).toBe(false);
  });
  it("a short password is not padded into a match", async () => {
    expect(await verifierAt({ nowMs: 0 }).verify("alice", "x".repeat(71), truncatedHash)).toBe(false);
  });
  it.skipIf(Bun.which("htpasswd") === null)("htpasswd -B output verifies", async () => {
    const output = Bun.spawnSync(["htpasswd", "-nbB", "-C", "4", "alice", long]).stdout.toString().trim();
    const hash = output.slice(output.indexOf(":") + 1);
    expect(hash).toMatch(/^\$2y\$04\$/);
    expect(await verifierAt({ nowMs: 0 }).verify("alice", long, hash)).toBe(true);
  });
});

describe("isSupportedHash", () => {
  const cases: [string, boolean][] = [
    [HASH, true],
    ["$2y$05$LO.vzwpWC5LZGqThvEfznu8qhb5SGqvBSWY1J3yZ4AxtMRZ3kN5jC", true],
    [HASH.replace("$2b$", "$2a$"), true],
    [Bun.password.hashSync("x", { algorithm: "argon2id", memoryCost: 1024, timeCost: 1 }), true],
    ["", false],
    ["secret", false],
    ["$1$abc$Zx1ZXSkJgEXpTNsKDXW2e.", false],
    ["{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", false],
    [HASH.slice(0, -1), false],
    [`${HASH}x`, false],
    [`${HASH}\n`, false],
  ];
  for (const [hash, expected] of cases) {
    it(`${JSON.stringify(hash.slice(0, 30))}… → ${expected}`, () =>
      expect(isSupportedHash(hash)).toBe(expected));
  }
});
