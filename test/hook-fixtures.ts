/** Fixtures for hook tests: throwaway programs, and counters for descriptors and processes. */
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTempDir } from "./helpers.ts";

/** Writes an executable `#!/bin/sh` program with `body` and returns its absolute path. */
export function writeHook(body: string, name = "hook.sh", dir = makeTempDir("regauth-hook-")): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

/** Open file descriptors of this process. */
export function openFdCount(): number {
  return readdirSync("/proc/self/fd").length;
}

/** Direct children of this process (any thread). */
export function childPids(): number[] {
  const pids: number[] = [];
  for (const task of readdirSync("/proc/self/task")) {
    try {
      const text = readFileSync(`/proc/self/task/${task}/children`, "utf8").trim();
      if (text !== "") pids.push(...text.split(/\s+/).map(Number));
    } catch {
      // the thread ended while we looked
    }
  }
  return pids;
}

/** Processes anywhere on the machine whose command line mentions `marker` (e.g. a temp dir). */
export function processesMentioning(marker: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (cmdline.includes(marker) && processState(Number(entry)) !== "Z") found.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

/** The state letter of a process (R, S, Z, …), or null when it no longer exists. */
export function processState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return null;
  }
}

/** True when `pid` is not running: gone, or a zombie waiting for init (already killed). */
export function isNotRunning(pid: number): boolean {
  const state = processState(pid);
  return state === null || state === "Z" || state === "X";
}

/** Reads a pid a hook wrote to `path`, waiting briefly for it to appear. */
export async function readPid(path: string, timeoutMs = 2000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (existsSync(path)) {
      const text = readFileSync(path, "utf8").trim();
      if (text !== "") return Number(text);
    }
    await Bun.sleep(10);
  }
  throw new Error(`no pid in ${path}`);
}

/** Polls `condition` until it holds or `timeoutMs` passes; returns its last value. */
export async function eventually(condition: () => boolean, timeoutMs = 2000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (condition()) return true;
    if (Date.now() > deadline) return false;
    await Bun.sleep(20);
  }
}
