/**
 * `server.workers` in-process (issue 17): the throttle shared over a (here direct) message channel
 * keeps one server's budgets whichever worker asks; the CPU count follows a cgroup quota.
 */
import { describe, expect, it } from "bun:test";
import type { ClientIp } from "../../src/acl.ts";
import { LoginThrottle, type Throttle } from "../../src/authn/throttle.ts";
import { cpuQuota, usableCpuCount } from "../../src/serve/cpus.ts";
import { SharedThrottle, type ThrottleRequest, throttleService } from "../../src/serve/shared-throttle.ts";
import { verifierShare } from "../../src/serve/worker.ts";
import {
  configFingerprint,
  workerCount,
  workersServingOtherConfig,
} from "../../src/serve/workers-in-serve.ts";
import type { LoadedConfig } from "../../src/config/load.ts";

const OPTIONS = {
  perAccount: { burst: 3, refillSeconds: 60 },
  perIp: { burst: 100, refillSeconds: 1 },
  successExemptionSeconds: 3600,
  maxEntries: 1000,
};
const HOST: ClientIp = { text: "192.0.2.7", bytes: new Uint8Array([192, 0, 2, 7]) };

/** `count` workers wired to one supervisor throttle, as src/serve/supervisor.ts wires them over IPC. */
function wired(count: number) {
  const server = new LoginThrottle(OPTIONS);
  const services: ReturnType<typeof throttleService>[] = [];
  const workers = Array.from({ length: count }, () => {
    let worker: SharedThrottle | undefined;
    const service = throttleService(
      () => server,
      // JSON both ways, as Bun's IPC with serialization "json".
      (answer) => queueMicrotask(() => worker?.answered(JSON.parse(JSON.stringify(answer)))),
    );
    services.push(service);
    worker = new SharedThrottle(
      (message: ThrottleRequest) => queueMicrotask(() => service.handle(JSON.parse(JSON.stringify(message)))),
      new LoginThrottle(OPTIONS),
    );
    return worker;
  });
  return { server, workers, services };
}

/** A wrong password through `throttle`: "admitted" (and failed) or "refused". */
async function wrong(throttle: Throttle, account = "alice"): Promise<string> {
  const admission = await throttle.admit(HOST, account, `guess-${Math.random()}`);
  if (admission.kind === "admitted") admission.attempt.failed();
  return admission.kind;
}

describe("SharedThrottle", () => {
  it("gives two workers one budget: the 4th wrong password is refused whichever worker gets it", async () => {
    const { workers } = wired(2);
    const got: string[] = [];
    for (let i = 0; i < 6; i++) got.push(await wrong(workers[i % 2] as SharedThrottle));
    const single = new LoginThrottle(OPTIONS);
    const expected: string[] = [];
    for (let i = 0; i < 6; i++) expected.push(await wrong(single));
    expect(got).toEqual(expected);
    expect(got).toEqual(["admitted", "admitted", "admitted", "refused", "refused", "refused"]);
  });

  it("charges parallel guesses on two workers once each: no burst passes one check twice", async () => {
    const { workers } = wired(2);
    const kinds = await Promise.all(
      Array.from({ length: 8 }, (_, i) => wrong(workers[i % 2] as SharedThrottle)),
    );
    expect(kinds.filter((k) => k === "admitted")).toHaveLength(3);
  });

  it("admits a credential that logged in on this worker without asking, and refunds a success", async () => {
    const { workers, server } = wired(1);
    const worker = workers[0] as SharedThrottle;
    const first = await worker.admit(HOST, "alice", "right");
    if (first.kind !== "admitted") throw new Error("refused");
    first.attempt.succeeded();
    await Bun.sleep(0);
    for (let i = 0; i < 3; i++) await wrong(worker);
    // alice's budget at this address is spent, her own password still goes through, locally.
    expect(await wrong(worker)).toBe("refused");
    const again = await worker.admit(HOST, "alice", "right");
    expect(again.kind).toBe("admitted");
    expect(again.kind === "admitted" && again.attempt.isKnownGood).toBe(true);
    expect(server.retryAfterSeconds(HOST, "alice")).toBeGreaterThan(0);
  });

  // One process renews a credential's exemption at every success; a worker that admitted it by
  // its own memory renewed nothing, so the server's lapsed after successExemptionSeconds.
  it("renews the server's memory of a success a worker admitted by its own", async () => {
    let nowMs = 1_000_000;
    const clock = { nowMs: () => nowMs };
    const server = new LoginThrottle({ ...OPTIONS, ...clock });
    const connect = () => {
      let worker: SharedThrottle | undefined;
      const service = throttleService(
        () => server,
        (answer) => queueMicrotask(() => worker?.answered(JSON.parse(JSON.stringify(answer)))),
      );
      worker = new SharedThrottle(
        (message: ThrottleRequest) =>
          queueMicrotask(() => service.handle(JSON.parse(JSON.stringify(message)))),
        new LoginThrottle({ ...OPTIONS, ...clock }),
      );
      return worker;
    };
    const first = connect();
    const login = async (worker: SharedThrottle) => {
      const admission = await worker.admit(HOST, "alice", "right");
      if (admission.kind !== "admitted") throw new Error("refused");
      admission.attempt.succeeded();
      await Bun.sleep(0);
      return admission.attempt.isKnownGood;
    };
    expect(await login(first)).toBe(false); // the first login: a new credential
    nowMs += 3000 * 1000;
    expect(await login(first)).toBe(true); // by the worker's own memory
    nowMs += 3000 * 1000; // 6,000 s after the first login, 3,000 after the last
    expect(await login(connect())).toBe(true); // a worker that never saw it: the server knows it
  });

  it("refunds what a worker that died left unsettled", async () => {
    const { workers, services, server } = wired(1);
    const worker = workers[0] as SharedThrottle;
    for (let i = 0; i < 3; i++) await worker.admit(HOST, "bob", `pending-${i}`); // never settled
    expect(server.retryAfterSeconds(HOST, "bob")).toBeGreaterThan(0);
    services[0]?.forget();
    expect(server.retryAfterSeconds(HOST, "bob")).toBe(0);
  });

  it("shares the registration budget", async () => {
    const { workers } = wired(2);
    const v6: ClientIp = { text: "2001:db8::1", bytes: new Uint8Array(16).fill(1) };
    let refused = 0;
    for (let i = 0; i < 120; i++)
      if ((await (workers[i % 2] as SharedThrottle).reserveRegistration(v6)) > 0) refused++;
    expect(refused).toBe(20); // perIp burst 100 per /48, whichever worker asks
  });
});

describe("usableCpuCount", () => {
  it.each([
    ["max 100000", null],
    ["150000 100000", 1.5],
    ["50000 100000", 0.5],
    ["", null],
    ["garbage", null],
    ["-1 100000", null],
  ])("reads cpu.max %p as a quota of %p CPUs", (text, quota) => {
    expect(cpuQuota(text)).toBe(quota);
  });

  it("caps the affinity's CPUs by the quota, rounding up, never below 1", () => {
    const affinity = navigator.hardwareConcurrency;
    expect(usableCpuCount(null)).toBe(affinity);
    expect(usableCpuCount("50000 100000")).toBe(1);
    expect(usableCpuCount(`${affinity * 100000 * 4} 100000`)).toBe(affinity);
  });
});

describe("verifierShare", () => {
  it.each([
    [2, 1, 48],
    [3, 1, 32],
    [4, 1, 24],
    [16, 1, 8],
  ])("gives each of %p workers %p check slots and %p waiting places", (workers, slots, waiting) => {
    const share = verifierShare(workers);
    expect(share.maxConcurrentVerifications).toBe(slots);
    expect(share.maxWaitingVerifications).toBe(waiting);
  });
});

describe("workerCount", () => {
  const config = (server: object, metrics = false) =>
    ({
      server: { net: "tcp", addr: "127.0.0.1:5001", ...server },
      metrics: { enabled: metrics },
    }) as unknown as LoadedConfig["config"];
  it.each([
    ["server.workers when set", config({ workers: 3 }), 3],
    ["the usable CPUs by default", config({}), usableCpuCount()],
    ["1 on port 0, which is a new port for each process", config({ addr: "127.0.0.1:0", workers: 3 }), 1],
    [
      "1 on a unix socket, whatever server.workers says",
      config({ net: "unix", addr: "/tmp/s", workers: 4 }),
      1,
    ],
    ["1 with metrics on and no server.workers", config({}, true), 1],
    ["server.workers with metrics on, when set", config({ workers: 2 }, true), 2],
    [
      "1 with server.letsencrypt (issue 16): only the supervisor holds its certificate",
      config({ workers: 2, letsencrypt: {} }),
      1,
    ],
  ])("is %s", (_name, given, expected) => {
    expect(workerCount(given)).toBe(expected);
  });
});

describe("SharedThrottle and the supervisor's side, at their edges (review of issue 17)", () => {
  it("refunds an admission the worker gave up waiting for, once the supervisor gets to it", async () => {
    const server = new LoginThrottle(OPTIONS);
    const service = throttleService(
      () => server,
      () => {}, // the answer comes too late to matter
    );
    // The supervisor is stuck for 50 ms; the worker waits 10.
    const worker = new SharedThrottle(
      (message: ThrottleRequest) => setTimeout(() => service.handle(JSON.parse(JSON.stringify(message))), 50),
      new LoginThrottle(OPTIONS),
      10,
    );
    await expect(worker.admit(HOST, "carol", "late")).rejects.toThrow("the login throttle did not answer");
    await Bun.sleep(150);
    // Without the refund: the charge stood and the credential stayed "in flight" (free) for good.
    expect(server.attemptsInFlight).toBe(0);
    expect(server.retryAfterSeconds(HOST, "carol")).toBe(0);
    expect(service.openAttempts).toBe(0);
  });

  it("drops malformed messages from a worker without throwing", () => {
    const server = new LoginThrottle(OPTIONS);
    const answers: unknown[] = [];
    const service = throttleService(
      () => server,
      (answer) => answers.push(answer),
    );
    const hostile: unknown[] = [
      null,
      7,
      "admit",
      {},
      { t: "nonsense", id: 1 },
      { t: "admit", id: "1", ip: null, account: "a", secret: "s" },
      { t: "admit", id: 2, ip: { text: 5, bytes: 9 }, account: "a", secret: "s" },
      { t: "admit", id: 3, ip: { text: "x", bytes: [1, 2, 3] }, account: { toString: 1 }, secret: null },
      { t: "settle", id: 99, outcome: "succeeded" },
      { t: "charge-address", ip: { bytes: null } },
      { t: "reserve-registration", id: 4, ip: { text: "::1", bytes: "x".repeat(16) } },
    ];
    for (const message of hostile) expect(() => service.handle(message as ThrottleRequest)).not.toThrow();
    // Only well-formed questions were answered, each once.
    expect(answers.map((a) => (a as { id: number }).id)).toEqual([2, 3, 4]);
  });
});

describe("configFingerprint and workersServingOtherConfig (review of issue 17)", () => {
  const config = {
    server: { addr: "127.0.0.1:5001" },
    acl: [{ match: { account: "alice" }, actions: ["pull"] }],
  };

  it("is the same for the same config and differs when anything in it does", () => {
    expect(configFingerprint({ config: structuredClone(config) })).toBe(configFingerprint({ config }));
    const pushToo = structuredClone(config);
    (pushToo.acl[0] as { actions: string[] }).actions.push("push");
    expect(configFingerprint({ config: pushToo })).not.toBe(configFingerprint({ config }));
  });

  it("names the workers whose config after a reload is not the supervisor's", () => {
    const served = configFingerprint({ config });
    const answer = (worker: number, isApplied: boolean, fingerprint: string) => ({
      worker,
      isApplied,
      lines: [],
      config: fingerprint,
    });
    expect(
      workersServingOtherConfig(
        [answer(1, true, served), answer(2, false, "old"), answer(3, true, "read at another moment")],
        served,
      ),
    ).toEqual([2, 3]);
  });
});
