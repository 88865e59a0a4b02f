import { describe, expect, it } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ConcurrencyLimit } from "../../src/hooks/concurrency-limit.ts";
import {
  HOOK_PATH,
  hookEnvironment,
  ProgramFailure,
  ProgramRunner,
  stderrExcerpt,
} from "../../src/hooks/run-program.ts";
import { makeTempDir } from "../helpers.ts";
import { childPids, eventually, isNotRunning, openFdCount, readPid, writeHook } from "../hook-fixtures.ts";

const NO_INPUT = new Uint8Array();
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

async function failureOf(promise: Promise<unknown>): Promise<ProgramFailure> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ProgramFailure) return error;
    throw error;
  }
  throw new Error("expected a ProgramFailure");
}

describe("ProgramRunner", () => {
  it("passes stdin as data, closes it, and returns stdout, stderr and the exit code", async () => {
    const hook = writeHook('read u p; printf "[%s][%s]" "$u" "$p"; echo oops >&2; exit 3');
    const exit = await new ProgramRunner(hook, []).run(new TextEncoder().encode("alice pass word"));
    expect(exit.exitCode).toBe(3);
    expect(text(exit.stdout)).toBe("[alice][pass word]");
    expect(text(exit.stderr)).toBe("oops\n");
    expect(exit.outputLeftOpen).toBe(false);
  });

  it("closes stdin, so a program reading to end of file returns", async () => {
    const input = new TextEncoder().encode("line one\nline two");
    const exit = await new ProgramRunner("/bin/cat", []).run(input);
    expect(text(exit.stdout)).toBe("line one\nline two");
  });

  it("survives a program that exits without reading a large stdin (EPIPE)", async () => {
    const input = new Uint8Array(4 * 1024 * 1024).fill(65);
    expect((await new ProgramRunner(writeHook("exit 0"), []).run(input)).exitCode).toBe(0);
    expect(
      (await new ProgramRunner(writeHook("head -c 10 >/dev/null; exit 1"), []).run(input)).exitCode,
    ).toBe(1);
    // A rejected write would surface as an unhandled error a moment later and fail this file.
    await Bun.sleep(100);
    const counted = await new ProgramRunner("/usr/bin/wc", ["-c"]).run(input);
    expect(text(counted.stdout).trim()).toBe(String(input.length));
  });

  it("passes args verbatim, without a shell", async () => {
    const hook = writeHook('for a in "$@"; do printf "<%s>" "$a"; done');
    const exit = await new ProgramRunner(hook, ["$(id)", ";id", "a b", "*"]).run(NO_INPUT);
    expect(text(exit.stdout)).toBe("<$(id)><;id><a b><*>");
  });

  it("kills a program that hangs at the timeout, with everything it started; no zombie", async () => {
    const dir = makeTempDir();
    const hook = writeHook('echo $$ > "$1"; sleep 60 & echo $! > "$2"; wait');
    const runner = new ProgramRunner(hook, [join(dir, "hook.pid"), join(dir, "sleep.pid")], {
      timeoutMs: 300,
    });
    const started = Date.now();
    const failure = await failureOf(runner.run(NO_INPUT));
    const elapsedMs = Date.now() - started;
    expect(failure.reason).toBe("timeout");
    expect(elapsedMs).toBeGreaterThanOrEqual(290);
    expect(elapsedMs).toBeLessThan(300 + runner.limits.drainGraceMs + 1000);
    const hookPid = await readPid(join(dir, "hook.pid"));
    const sleepPid = await readPid(join(dir, "sleep.pid"));
    // The direct child was reaped by us (no zombie); the grandchild was killed with its group.
    expect(childPids()).not.toContain(hookPid);
    expect(existsSync(`/proc/${hookPid}`)).toBe(false);
    expect(await eventually(() => isNotRunning(sleepPid))).toBe(true);
  });

  it("returns promptly when a grandchild in the group holds stdout (sleep 60 & echo ok; exit 0)", async () => {
    const dir = makeTempDir();
    const hook = writeHook('sleep 60 & echo $! > "$1"; echo ok; exit 0');
    const runner = new ProgramRunner(hook, [join(dir, "sleep.pid")], { timeoutMs: 5000 });
    const started = Date.now();
    const exit = await runner.run(NO_INPUT);
    expect(Date.now() - started).toBeLessThan(runner.limits.drainGraceMs + 1000);
    expect(exit.exitCode).toBe(0);
    expect(text(exit.stdout)).toBe("ok\n");
    const sleepPid = await readPid(join(dir, "sleep.pid"));
    expect(await eventually(() => isNotRunning(sleepPid))).toBe(true);
  });

  it.skipIf(!Bun.which("setsid"))(
    "stops reading after the drain grace when a grandchild escaped the group and holds stdout",
    async () => {
      const dir = makeTempDir();
      const pidFile = join(dir, "escaped.pid");
      // setsid(1) puts the grandchild in a session of its own: the group kill cannot reach it.
      const hook = writeHook(
        `setsid sh -c 'echo $$ > "$1"; exec sleep 60' escaped "$1" &\nsleep 0.2; echo ok; exit 0`,
      );
      // In a process of its own, so that the descriptor count sees only this run's (see the fixture).
      const child = Bun.spawn(
        [process.execPath, join(import.meta.dir, "../fixtures/escaped-grandchild.ts"), hook, pidFile],
        {
          stdout: "pipe",
          stderr: "inherit",
        },
      );
      const report = JSON.parse(await new Response(child.stdout).text()) as {
        exitCode: number;
        stdout: string;
        outputLeftOpen: boolean;
        elapsedMs: number;
        closed: boolean;
      };
      await child.exited;
      const escapedPid = await readPid(pidFile);
      try {
        expect(report.exitCode).toBe(0);
        expect(report.stdout).toBe("ok\n");
        expect(report.outputLeftOpen).toBe(true);
        expect(report.elapsedMs).toBeLessThan(200 + 300 + 1000);
        expect(isNotRunning(escapedPid)).toBe(false); // it really was still there, holding the pipe
        // Our ends of its pipes are closed although the grandchild still holds the other ends.
        expect(report.closed).toBe(true);
      } finally {
        process.kill(escapedPid, "SIGKILL");
      }
    },
  );

  it("caps 100 MB on stdout: kills the program, fails, and memory stays bounded", async () => {
    const hook = writeHook("head -c 100000000 /dev/zero");
    const runner = new ProgramRunner(hook, []);
    Bun.gc(true);
    const rssBefore = process.memoryUsage().rss;
    const started = Date.now();
    const failure = await failureOf(runner.run(NO_INPUT));
    expect(failure.reason).toBe("output-limit");
    expect(failure.message).toContain("stdout");
    expect(Date.now() - started).toBeLessThan(3000);
    Bun.gc(true);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(32 * 1024 * 1024);
  });

  it("caps an endless stderr the same way", async () => {
    const failure = await failureOf(new ProgramRunner(writeHook("yes oops >&2"), []).run(NO_INPUT));
    expect(failure.reason).toBe("output-limit");
    expect(failure.message).toContain("stderr");
    expect(failure.stderr.length).toBeLessThanOrEqual(64 * 1024);
  });

  it("keeps output up to the cap exactly", async () => {
    const exit = await new ProgramRunner(writeHook("head -c 65536 /dev/zero"), []).run(NO_INPUT);
    expect(exit.stdout.length).toBe(65536);
  });

  it("reports an exit by signal as a failure", async () => {
    const failure = await failureOf(new ProgramRunner(writeHook("kill -9 $$"), []).run(NO_INPUT));
    expect(failure.reason).toBe("signal");
    expect(failure.message).toContain("SIGKILL");
  });

  it("reports exit 137 as an exit code (the hook decides what it means)", async () => {
    expect((await new ProgramRunner(writeHook("exit 137"), []).run(NO_INPUT)).exitCode).toBe(137);
  });

  it("reports a program that cannot start", async () => {
    const failure = await failureOf(new ProgramRunner("/nonexistent/hook", []).run(NO_INPUT));
    expect(failure.reason).toBe("spawn");
  });

  it("gives the program only allow-listed variables, none of ours", async () => {
    process.env.REGAUTH_FAKE_SECRET = "hunter2-from-the-environment";
    try {
      const exit = await new ProgramRunner("/usr/bin/env", []).run(NO_INPUT);
      const variables = text(exit.stdout).trim().split("\n");
      expect(text(exit.stdout)).not.toContain("hunter2");
      const names = variables.map((line) => line.slice(0, line.indexOf("=")));
      expect(names.every((name) => ["PATH", "HOME", "LANG", "LC_ALL", "TZ"].includes(name))).toBe(true);
      expect(variables).toContain(`PATH=${HOOK_PATH}`);
      expect(variables).toContain("HOME=/nonexistent");
    } finally {
      delete process.env.REGAUTH_FAKE_SECRET;
    }
  });

  it("passes locale and TZ through, and nothing else", () => {
    const env = hookEnvironment({ LANG: "C.UTF-8", TZ: "UTC", AWS_SECRET_ACCESS_KEY: "x", PATH: "/evil" });
    expect(env).toEqual({ PATH: HOOK_PATH, HOME: "/nonexistent", LANG: "C.UTF-8", TZ: "UTC" });
  });

  it("shows what a shell hook sees of its environment: nothing of ours", async () => {
    const hook = writeHook("env");
    const exit = await new ProgramRunner(hook, [], {}, { SECRET_TOKEN: "s3cr3t", PATH: "/tmp" }).run(
      NO_INPUT,
    );
    expect(text(exit.stdout)).not.toContain("s3cr3t");
    expect(text(exit.stdout)).not.toContain("SECRET_TOKEN");
  });

  it("inherits no file descriptors beyond stdin, stdout and stderr", async () => {
    const exit = await new ProgramRunner("/bin/sh", ["-c", "ls /proc/$$/fd"]).run(NO_INPUT);
    expect(text(exit.stdout).trim().split(/\s+/).sort()).toEqual(["0", "1", "2"]);
  });

  it("kills running hooks when the server process exits", async () => {
    const dir = makeTempDir();
    const pidFile = join(dir, "hook.pid");
    const hook = writeHook('echo $$ > "$1"; exec sleep 60');
    const script = join(dir, "server.ts");
    writeFileSync(
      script,
      [
        `import { ProgramRunner } from ${JSON.stringify(resolve(import.meta.dir, "../../src/hooks/run-program.ts"))};`,
        `void new ProgramRunner(${JSON.stringify(hook)}, [${JSON.stringify(pidFile)}]).run(new Uint8Array());`,
        "await Bun.sleep(300);",
        "process.exit(0);",
      ].join("\n"),
    );
    const server = Bun.spawn([process.execPath, script], { stdout: "ignore", stderr: "inherit" });
    expect(await server.exited).toBe(0);
    const hookPid = await readPid(pidFile);
    expect(await eventually(() => isNotRunning(hookPid))).toBe(true);
  });

  it("limits concurrency and refuses beyond the queue", async () => {
    const runner = new ProgramRunner(writeHook("sleep 0.3"), [], { maxConcurrent: 1, maxQueued: 1 });
    const results = await Promise.allSettled([1, 2, 3, 4].map(() => runner.run(NO_INPUT)));
    const busy = results.filter(
      (r) => r.status === "rejected" && (r.reason as ProgramFailure).reason === "busy",
    );
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(2);
    expect(busy).toHaveLength(2);
    expect(runner.busy).toEqual({ running: 0, waiting: 0 });
  });

  it("leaks no descriptors and no processes over many runs of every kind", async () => {
    const fdsBefore = openFdCount();
    const ok = new ProgramRunner(writeHook("cat >/dev/null; echo ok"), []);
    const slow = new ProgramRunner(writeHook("sleep 60"), [], { timeoutMs: 100 });
    const loud = new ProgramRunner(writeHook("yes"), []);
    await Promise.allSettled(
      Array.from({ length: 30 }, (_, i) =>
        [ok, slow, loud][i % 3]?.run(new TextEncoder().encode("some input")),
      ),
    );
    expect(await eventually(() => childPids().length === 0)).toBe(true);
    Bun.gc(true);
    expect(await eventually(() => openFdCount() <= fdsBefore)).toBe(true);
  });
});

describe("ConcurrencyLimit", () => {
  it("hands slots over in order and times out a waiter that never gets one", async () => {
    const limit = new ConcurrencyLimit(1, 2);
    expect(await limit.acquire(1000)).toBe("acquired");
    const second = limit.acquire(1000);
    const third = limit.acquire(50);
    expect(await limit.acquire(1000)).toBe("queue-full");
    expect(await third).toBe("wait-timeout");
    limit.release();
    expect(await second).toBe("acquired");
    expect(limit.runningCount).toBe(1);
    limit.release();
    expect(limit.runningCount).toBe(0);
  });
});

describe("stderrExcerpt", () => {
  it("redacts the secret before cutting, so no prefix of it survives", () => {
    const stderr = new TextEncoder().encode(`${"x".repeat(295)}hunter2 and hunter2`);
    const excerpt = stderrExcerpt(stderr, "hunter2");
    expect(excerpt).not.toContain("hunter");
    expect(excerpt.length).toBeLessThanOrEqual(301);
  });
});
