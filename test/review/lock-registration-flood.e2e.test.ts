/**
 * Review (issue 9 item 2 follow-up): while another process holds the write lock, each
 * registration attempt still waits the request-path busy_timeout (100 ms) synchronously on the
 * event loop, and a 503 for it is refunded to the throttle. One anonymous client sending
 * registration attempts back to back therefore stalls every other request while a CLI write,
 * backup or VACUUM holds the lock. FAILS on the current code (p99 of the bystanders' token
 * requests is about the busy_timeout, 455 ms measured, against ≈ 50 ms with no lock).
 */
import { describe, expect, it } from "bun:test";
import { join } from "node:path";
import { ensureBinary, run, startRegauth } from "../e2e/harness.ts";

describe("review: registration attempts under a held lock", () => {
  it("one client's registration attempts do not stall other token requests (p99 < 100 ms)", async () => {
    const regauth = await startRegauth({
      configYaml: `server: {addr: "127.0.0.1:{{PORT}}"}\ntoken: {issuer: lock-test}\nregistration: {mode: approval}\n`,
    });
    const cli = await run([ensureBinary(), "perm", "grant", "*", "public/*", "read", "--data-dir", regauth.dataDir]);
    expect(cli.exitCode).toBe(0);
    const url = `${regauth.url}/auth?service=registry&scope=repository:public/app:pull`;
    const holder = Bun.spawn(
      [
        "bun",
        "-e",
        `const { Database } = require("bun:sqlite"); const db = new Database(${JSON.stringify(join(regauth.dataDir, "regauth.db"))}); db.run("BEGIN IMMEDIATE"); console.log("locked"); Bun.sleepSync(6000); db.run("ROLLBACK");`,
      ],
      { stdout: "pipe", stderr: "inherit" },
    );
    const reader = holder.stdout.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toContain("locked");
    const deadline = Date.now() + 3000;
    const registrationStatuses = new Map<number, number>();
    let n = 0;
    // The attacker: 4 connections, registration attempts back to back, a new name each time.
    const attacker = Promise.all(
      Array.from({ length: 4 }, async () => {
        while (Date.now() < deadline) {
          const name = `newcomer${n++}`;
          const r = await fetch(`${regauth.url}/auth?service=registry`, {
            headers: { authorization: `Basic ${btoa(`${name}:${name}-password`)}` },
          });
          await r.arrayBuffer();
          registrationStatuses.set(r.status, (registrationStatuses.get(r.status) ?? 0) + 1);
        }
      }),
    );
    const latencies: number[] = [];
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (Date.now() < deadline) {
          const t0 = performance.now();
          const res = await fetch(url);
          await res.arrayBuffer();
          latencies.push(performance.now() - t0);
        }
      }),
    );
    await attacker;
    holder.kill();
    await holder.exited;
    latencies.sort((a, b) => a - b);
    const p99 = latencies[Math.floor(latencies.length * 0.99)] ?? Number.POSITIVE_INFINITY;
    console.log(
      `lock held, registration flood ${JSON.stringify([...registrationStatuses])}: ${latencies.length} bystander requests, p50 ${latencies[Math.floor(latencies.length / 2)]?.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`,
    );
    await regauth.stop();
    // Without the lock the same flood gives p99 ≈ 50 ms on this 2-core machine (argon2 CPU); 100 ms leaves room.
    expect(p99).toBeLessThan(100);
  }, 30_000);
});
