/**
 * The renewal loop in process against pebble (src/acme/manager.ts, issue 16): when putting the
 * renewed certificate in service fails (a local fault, not the CA's), the next try installs the
 * same certificate instead of ordering another, so the CA's rate limit is not spent on it.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { join } from "node:path";
import { type AcmeCertificate, startAcme } from "../../src/acme/manager.ts";
import { listenForHttpChallenges } from "../../src/http/acme-challenge.ts";
import { log } from "../../src/log.ts";
import { makeTempDir } from "../helpers.ts";
import { hasPebble, startPebble } from "./pebble.ts";

beforeAll(() => log.setLevel("error"));
afterAll(() => log.setLevel("info"));

describe.skipIf(!hasPebble())("a renewed certificate whose installation fails", async () => {
  // 6 s certificates: renewed at 4 s, retried 1 s after a failure.
  const pebble = await startPebble({ validitySeconds: 6 });

  it("is installed on the next try without a second order", async () => {
    const section = {
      host: "localhost",
      directory_url: pebble.directoryUrl,
      ca_file: pebble.listenerCaFile,
      http_challenge_addr: pebble.challengeAddr,
    };
    const manager = await startAcme({
      section,
      cacheDir: join(makeTempDir("acme-retry-"), "cache"),
      openHttpChallenge: (answers) =>
        listenForHttpChallenges(section.http_challenge_addr, "https://localhost/", answers),
    });
    const first = manager.current();
    const offered: AcmeCertificate[] = [];
    const installed = Promise.withResolvers<void>();
    manager.startRenewing(async (next) => {
      offered.push(next);
      if (offered.length === 1) throw new Error("the listener could not be swapped (simulated)");
      installed.resolve();
    });
    try {
      await Promise.race([
        installed.promise,
        Bun.sleep(20_000).then(() => Promise.reject(new Error("timeout"))),
      ]);
    } finally {
      manager.stop();
    }
    expect(offered).toHaveLength(2);
    expect(offered[1]).toEqual(offered[0] as AcmeCertificate);
    expect(offered[0]?.cert).not.toBe(first.cert);
    expect(manager.current()).toEqual(offered[1] as AcmeCertificate);
    expect(pebble.orders()).toBe(2); // the first certificate and one renewal
  });
});
