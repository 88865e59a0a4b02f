/**
 * Review finding 9 (issue 9 item 2 follow-up): while another process holds the write lock, each
 * registration attempt waited the request-path busy_timeout (100 ms) synchronously on the event
 * loop, and a 503 for it was refunded to the throttle. One anonymous client sending registration
 * attempts back to back therefore stalled every other request while a CLI write, backup or VACUUM
 * held the lock (p99 of the bystanders' token requests 455 ms, against ≈ 50 ms with no lock).
 * Now the write does not wait (busy_timeout 0) and the 503 keeps its throttle charge.
 */
import { describe, expect, it } from "bun:test";
import { holdWriteLock, startRegauthWithPublicGrant } from "./lock-holder.ts";

describe("registration attempts under a held lock (review finding 9)", () => {
  it("one client's registration attempts do not stall other token requests (p99 < 100 ms)", async () => {
    const regauth = await startRegauthWithPublicGrant();
    const url = `${regauth.url}/auth?service=registry&scope=repository:public/app:pull`;
    const holder = await holdWriteLock(regauth.dataDir, 6000);
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
