/**
 * The certificate's life at start and after (src/acme/manager.ts), with a CA that cannot be
 * reached (a closed loopback port) and a clock moved forward: what is reused, what is ordered,
 * what refuses the start, and what a failed renewal leaves serving.
 */
import { afterEach, describe, expect, it } from "bun:test";
import { readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  ACCOUNT_KEY_FILE,
  CERTIFICATE_FILE,
  ORDER_FAILURES_FILE,
  prepareCacheDir,
  writeCachedCertificate,
} from "../../src/acme/cache.ts";
import type { LetsEncryptConfig } from "../../src/acme/config-schema.ts";
import { AcmeError, type AcmeManager, startAcme } from "../../src/acme/manager.ts";
import { log } from "../../src/log.ts";
import { makeTempDir } from "../helpers.ts";

const DAY_MS = 86_400_000;

function certificateFor(host: string): { keyPem: string; chainPem: string } {
  const dir = makeTempDir("acme-cert-");
  const result = Bun.spawnSync([
    "openssl",
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    join(dir, "k.pem"),
    "-out",
    join(dir, "c.pem"),
    "-days",
    "90",
    "-subj",
    "/CN=test",
    "-addext",
    `subjectAltName=DNS:${host}`,
  ]);
  if (result.exitCode !== 0) throw new Error(result.stderr.toString());
  return {
    keyPem: readFileSync(join(dir, "k.pem"), "utf8"),
    chainPem: readFileSync(join(dir, "c.pem"), "utf8"),
  };
}

// Port 1 on loopback: nothing listens there, so every order fails at once with ECONNREFUSED.
const section: LetsEncryptConfig = {
  host: "auth.example.org",
  directory_url: "https://127.0.0.1:1/dir",
  http_challenge_addr: "127.0.0.1:0",
};
const pair = certificateFor("auth.example.org");

function cacheWith(cached: Partial<Parameters<typeof writeCachedCertificate>[1]> | null): string {
  const dir = join(makeTempDir("acme-manager-"), "cache");
  prepareCacheDir(dir);
  if (cached)
    writeCachedCertificate(dir, {
      host: section.host,
      directoryUrl: section.directory_url,
      ...pair,
      ...cached,
    });
  return dir;
}

const lines: string[] = [];
let restore = () => {};
let running: AcmeManager | null = null;
afterEach(() => {
  running?.stop();
  running = null;
  restore();
  lines.length = 0;
});

async function start(cacheDir: string, offsetMs = 0): Promise<AcmeManager> {
  restore = log.capture(lines);
  running = await startAcme({
    section,
    cacheDir,
    openHttpChallenge: () => ({ close: async () => {} }),
    nowMs: () => Date.now() + offsetMs,
  });
  return running;
}

async function refusal(cacheDir: string, offsetMs = 0): Promise<string> {
  try {
    await start(cacheDir, offsetMs);
  } catch (error) {
    expect(error).toBeInstanceOf(AcmeError);
    return (error as Error).message;
  }
  throw new Error("startAcme succeeded");
}

describe("startAcme", () => {
  it("serves a valid cached certificate without asking the CA", async () => {
    const manager = await start(cacheWith({}));
    expect(manager.current()).toEqual({ cert: pair.chainPem, key: pair.keyPem });
    expect(lines.join("\n")).toContain('msg="using the cached certificate" host=auth.example.org');
    expect(lines.join("\n")).not.toContain("ordering");
  });

  it("serves a cached certificate past its renewal time, renews at once, and keeps it when that fails", async () => {
    const manager = await start(cacheWith({}), 70 * DAY_MS);
    manager.startRenewing(async () => {
      throw new Error("must not install");
    });
    const deadline = Date.now() + 10_000;
    while (!lines.some((l) => l.includes("renewal failed")) && Date.now() < deadline) await Bun.sleep(20);
    const failed = lines.find((l) => l.includes("renewal failed")) ?? "";
    expect(failed).toContain('msg="certificate renewal failed; still serving the current certificate"');
    expect(failed).toContain("cannot reach the ACME server at https://127.0.0.1:1: connection refused");
    expect(failed).toContain("failures=1 retry_in_seconds=300");
    expect(manager.current().cert).toBe(pair.chainPem);
  });

  it("refuses to start with an expired cached certificate and no CA", async () => {
    const message = await refusal(cacheWith({}), 91 * DAY_MS);
    expect(message).toStartWith(
      "no certificate for auth.example.org, and none could be obtained: cannot reach",
    );
    expect(message).toEndWith("regauth does not fall back to plain HTTP; fix this and start again");
    expect(lines.join("\n")).toContain("the cached certificate has expired; ordering a new one");
  });

  it("orders anew when the cached certificate is for another host or another CA", async () => {
    await refusal(cacheWith({ host: "old.example.org" }));
    await refusal(cacheWith({ directoryUrl: "https://staging.example/dir" }));
    expect(lines.filter((l) => l.includes("for another host or CA")).length).toBe(2);
  });

  it("orders anew when the cached certificate is not for the host it claims", async () => {
    await refusal(cacheWith({ ...certificateFor("other.example.org") }));
    expect(lines.join("\n")).toContain("the cached certificate cannot be used");
  });

  it("refuses a certificate file that is a planted link", async () => {
    const dir = cacheWith(null);
    const target = join(makeTempDir(), "elsewhere.json");
    writeFileSync(target, "{}");
    symlinkSync(target, join(dir, CERTIFICATE_FILE));
    expect(await refusal(dir)).toMatch(/cannot use the cached certificate: .* is a symbolic link/);
  });

  it("refuses an account key it cannot use, saying what to do", async () => {
    const dir = cacheWith(null);
    writeFileSync(join(dir, ACCOUNT_KEY_FILE), "not a key", { mode: 0o600 });
    expect(await refusal(dir)).toMatch(/acme-account\.key is not a private key .* move it away/);
  });

  it("refuses a cache directory others may write into", async () => {
    const dir = makeTempDir("acme-open-");
    Bun.spawnSync(["chmod", "777", dir]);
    expect(await refusal(dir)).toMatch(/cannot use the ACME cache in .*writable by everyone/);
  });
});

describe("a renewal the CA refuses for now (429, Retry-After)", () => {
  it("waits at least as long as the CA asks before the next try", async () => {
    const ca = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: () =>
        Response.json(
          { type: "urn:ietf:params:acme:error:rateLimited", detail: "too many certificates already issued" },
          { status: 429, headers: { "retry-after": "7200", "content-type": "application/problem+json" } },
        ),
    });
    try {
      const limited = { ...section, directory_url: `http://127.0.0.1:${ca.port}/dir` };
      const dir = join(makeTempDir("acme-manager-"), "cache");
      prepareCacheDir(dir);
      writeCachedCertificate(dir, { host: section.host, directoryUrl: limited.directory_url, ...pair });
      restore = log.capture(lines);
      running = await startAcme({
        section: limited,
        cacheDir: dir,
        openHttpChallenge: () => ({ close: async () => {} }),
        nowMs: () => Date.now() + 70 * DAY_MS,
      });
      running.startRenewing(async () => {
        throw new Error("must not install");
      });
      const deadline = Date.now() + 10_000;
      while (!lines.some((l) => l.includes("renewal failed")) && Date.now() < deadline) await Bun.sleep(20);
      const failed = lines.find((l) => l.includes("renewal failed")) ?? "";
      expect(failed).toContain("rate limited");
      expect(failed).toContain("failures=1 retry_in_seconds=7200");
    } finally {
      ca.stop(true);
    }
  });
});

describe("failed orders across restarts (systemd restarts a refused start after 2 s)", () => {
  it("orders again at once once, then waits a minute, then two: no order per restart", async () => {
    const dir = cacheWith(null);
    let offsetMs = 0;
    const startOnce = () =>
      startAcme({
        section,
        cacheDir: dir,
        openHttpChallenge: () => ({ close: async () => {} }),
        nowMs: () => Date.now() + offsetMs,
      }).then(
        () => "started",
        (error: Error) => error.message,
      );
    restore = log.capture(lines);
    expect(await startOnce()).toContain("none could be obtained");
    expect(await startOnce()).toContain("none could be obtained"); // the second try at once
    const record = JSON.parse(readFileSync(join(dir, ORDER_FAILURES_FILE), "utf8"));
    expect(record.failures).toBe(2);
    expect(record.error).toContain("cannot reach the ACME server");
    const third = startOnce();
    const settled = await Promise.race([third, Bun.sleep(500).then(() => "waiting")]);
    expect(settled).toBe("waiting");
    expect(lines.join("\n")).toContain("the last certificate orders failed; waiting before the next");
    expect(lines.join("\n")).toContain(`remove ${dir}/${ORDER_FAILURES_FILE} to order at once`);
    offsetMs = 61_000; // a minute later
    expect(await third).toContain("none could be obtained");
    expect(JSON.parse(readFileSync(join(dir, ORDER_FAILURES_FILE), "utf8")).failures).toBe(3);
    expect(lines.filter((l) => l.includes('msg="ordering a certificate"')).length).toBe(3);
  });

  it("after a restart amid failed renewals, renews when the record says, not at once", async () => {
    const dir = cacheWith({});
    writeFileSync(
      join(dir, ORDER_FAILURES_FILE),
      JSON.stringify({ failures: 5, lastAtMs: Date.now() + 70 * DAY_MS, retryAfterMs: null, error: "x" }),
      { mode: 0o600 },
    );
    const manager = await start(dir, 70 * DAY_MS);
    manager.startRenewing(async () => {
      throw new Error("must not install");
    });
    await Bun.sleep(500);
    expect(lines.join("\n")).not.toContain("ordering a certificate");
  });

  it("waits no longer than its backoff after a failure recorded by a clock far ahead", async () => {
    const dir = cacheWith(null);
    const tenYearsMs = 10 * 365 * DAY_MS;
    writeFileSync(
      join(dir, ORDER_FAILURES_FILE),
      JSON.stringify({ failures: 3, lastAtMs: Date.now() + tenYearsMs, retryAfterMs: null, error: "x" }),
      { mode: 0o600 },
    );
    let offsetMs = 0;
    restore = log.capture(lines);
    const started = startAcme({
      section,
      cacheDir: dir,
      openHttpChallenge: () => ({ close: async () => {} }),
      nowMs: () => Date.now() + offsetMs,
    }).catch((error: Error) => error.message);
    await Bun.sleep(200);
    const waiting = lines.find((l) => l.includes("waiting before the next")) ?? "";
    const orderAtMs = Date.parse(/order_at=(\S+)/.exec(waiting)?.[1] ?? "");
    expect(orderAtMs).toBeLessThanOrEqual(Date.now() + 2 * 60_000);
    offsetMs = 3 * 60_000;
    expect(await started).toContain("none could be obtained");
  });

  it("starts anew from a record that is not its own in shape", async () => {
    const dir = cacheWith(null);
    writeFileSync(join(dir, ORDER_FAILURES_FILE), '{"failures": "many"}', { mode: 0o600 });
    expect(await refusal(dir)).toContain("none could be obtained");
    expect(JSON.parse(readFileSync(join(dir, ORDER_FAILURES_FILE), "utf8")).failures).toBe(1);
  });
});
