/**
 * The footprint of an idle serve (issue 12 item 6): the background writer's worker thread, a
 * JavaScript VM of ~5 MiB, starts with the first real write, not within a second of every start
 * because the audit log's and the notification receiver's prunes at start had nothing to delete;
 * and the memory a burst leaves behind is handed back once the server has been quiet for a while.
 */
import { describe, expect, it } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { startRegauth } from "./harness.ts";

/** The names of a process's threads; Bun names a Worker's thread "Worker". */
function threadNames(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`).map((task) =>
    readFileSync(`/proc/${pid}/task/${task}/comm`, "utf8").trim(),
  );
}

async function waitForThread(pid: number, name: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (threadNames(pid).includes(name)) return true;
    await Bun.sleep(50);
  }
  return false;
}

describe("an idle serve", () => {
  it("starts no worker thread until something is written in the background", async () => {
    // One process: with server.workers above 1 the refused login may land on another process,
    // whose writer thread this one would never see.
    const regauth = await startRegauth({
      configYaml: `server: {addr: "127.0.0.1:{{PORT}}", workers: 1}\ntoken: {issuer: regauth, expiration: 300}\n`,
    });
    try {
      // Past the writer's flush interval (1 s) after the start-up prunes were scheduled.
      expect(await waitForThread(regauth.proc.pid, "Worker", 2500)).toBe(false);
      // The first write starts it: the audit log records a refused login.
      const answer = await fetch(`${regauth.url}/auth?service=registry`, {
        headers: { authorization: `Basic ${btoa("admin:not-the-password")}` },
      });
      expect(answer.status).toBe(401);
      expect(await waitForThread(regauth.proc.pid, "Worker", 15_000)).toBe(true);
    } finally {
      await regauth.stop();
    }
  });

  it("hands memory back ten quiet seconds after start, and again after a burst, not while idle", async () => {
    const regauth = await startRegauth({
      configYaml: `server: {addr: "127.0.0.1:{{PORT}}", workers: 1}\ntoken: {issuer: regauth, expiration: 300}\nlog: {level: debug}\n`,
    });
    const released = /msg="handing memory back after a quiet period" rss_mib=\d+/;
    const releases = () => regauth.stderr.text.match(new RegExp(released, "g"))?.length ?? 0;
    try {
      // Start-up is the first burst (src/ops/heap-budget.ts QuietRelease).
      await regauth.stderr.waitFor(released, 20_000);
      // A burst: 2,000 anonymous tokens, then quiet again.
      const url = `${regauth.url}/auth?service=registry&scope=repository:library/alpine:pull`;
      for (let batch = 0; batch < 40; batch++)
        await Promise.all(Array.from({ length: 50 }, () => fetch(url).then((r) => r.arrayBuffer())));
      const deadline = Date.now() + 20_000;
      while (releases() < 2 && Date.now() < deadline) await Bun.sleep(200);
      expect(releases()).toBe(2);
      // Idle from here: no further release.
      await Bun.sleep(3_000);
      expect(releases()).toBe(2);
    } finally {
      await regauth.stop();
    }
  }, 60_000);
});
