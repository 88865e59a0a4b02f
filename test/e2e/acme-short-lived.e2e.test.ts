/**
 * Certificates the CA sends already due for renewal, or already expired, by this server's clock
 * (a clock far ahead, or a CA that issues them so), in process against pebble: the renewal must
 * not become an order loop at the CA's speed (each success scheduled the next renewal in the past),
 * and an expired certificate is a failed order, never served.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { join } from "node:path";
import { AcmeError, startAcme } from "../../src/acme/manager.ts";
import { listenForHttpChallenges } from "../../src/http/acme-challenge.ts";
import { log } from "../../src/log.ts";
import { makeTempDir } from "../helpers.ts";
import { hasPebble, startPebble } from "./pebble.ts";

beforeAll(() => log.setLevel("error"));
afterAll(() => log.setLevel("info"));

describe.skipIf(!hasPebble())("certificates due for renewal or expired on arrival", async () => {
  const pebble = await startPebble({ validitySeconds: 3600 });
  const section = {
    host: "localhost",
    directory_url: pebble.directoryUrl,
    ca_file: pebble.listenerCaFile,
    http_challenge_addr: pebble.challengeAddr,
  };
  const startAt = (offsetMs: number) =>
    startAcme({
      section,
      cacheDir: join(makeTempDir("acme-clock-"), "cache"),
      openHttpChallenge: (answers) =>
        listenForHttpChallenges(section.http_challenge_addr, "https://localhost/", answers),
      nowMs: () => Date.now() + offsetMs,
    });

  it("renews a certificate due on arrival no sooner than the backoff's first step (36 s for 1 h)", async () => {
    const before = pebble.orders();
    // 50 minutes ahead: each 1-hour certificate is past its renewal time (40 min) but valid.
    const manager = await startAt(50 * 60_000);
    let installs = 0;
    manager.startRenewing(async () => {
      installs++;
    });
    await Bun.sleep(3000);
    manager.stop();
    expect(installs).toBe(1); // the renewal at once, then a pause
    expect(pebble.orders() - before).toBe(2);
  }, 30_000);

  it("refuses a certificate that has expired on arrival, saying to check the clock", async () => {
    const before = pebble.orders();
    const error = await startAt(2 * 3600_000).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AcmeError);
    expect((error as Error).message).toContain("has already expired");
    expect((error as Error).message).toContain("clock");
    expect(pebble.orders() - before).toBe(1);
  }, 30_000);
});
