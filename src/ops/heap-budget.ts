/**
 * A bound on how far the JavaScript heap grows between full collections (issue 9 item 6).
 *
 * JavaScriptCore starts a full collection only once the heap has doubled or passed 32 MiB, and
 * marks concurrently while the server keeps allocating. Under a flood of distinct failing logins
 * (~7 KB of garbage each, ~3,000 a second, each held for the failure-latency floor) on two busy
 * cores, the heap reached 37 MiB before it was collected (in process, 40,000 failures at 256 in
 * flight). Here a timer reads the heap's size every `checkIntervalMs` (a counter, ~10 µs) and,
 * once it has grown by `growthBytes` since it was last collected, runs a full collection
 * synchronously: a few milliseconds with the world stopped at this heap's size, and nothing
 * allocated meanwhile. The same run peaked at 22 MiB of heap and 117 MiB of RSS, against 131.
 * An idle server's heap does not grow, so nothing runs then.
 */

import { log } from "../log.ts";

/** Growth of the heap, since the last full collection, that starts one. */
export const HEAP_GROWTH_BUDGET_BYTES = 8 * 2 ** 20;
/** How often the heap's size is read. */
export const HEAP_CHECK_INTERVAL_MS = 100;

export interface HeapBudgetOptions {
  growthBytes?: number;
  checkIntervalMs?: number;
  /** The heap's size now (tests give their own). */
  heapUsedBytes?: () => number;
  /** A synchronous full collection (tests count them). */
  collect?: () => void;
}

export class HeapBudget {
  private readonly growthBytes: number;
  private readonly heapUsedBytes: () => number;
  private readonly collect: () => void;
  private afterCollectionBytes: number;
  private timer: ReturnType<typeof setInterval> | undefined;
  /** Full collections this budget has run (for tests and the log). */
  collections = 0;

  constructor(private readonly options: HeapBudgetOptions = {}) {
    this.growthBytes = options.growthBytes ?? HEAP_GROWTH_BUDGET_BYTES;
    this.heapUsedBytes = options.heapUsedBytes ?? (() => process.memoryUsage().heapUsed);
    this.collect = options.collect ?? (() => Bun.gc(true));
    this.afterCollectionBytes = this.heapUsedBytes();
  }

  /** Collects when the heap has grown by the budget; otherwise only follows it down. */
  check(): void {
    const usedBytes = this.heapUsedBytes();
    // The engine's own collections shrink the heap too: grow from where it is now.
    if (usedBytes < this.afterCollectionBytes) this.afterCollectionBytes = usedBytes;
    if (usedBytes - this.afterCollectionBytes < this.growthBytes) return;
    this.collect();
    this.collections++;
    this.afterCollectionBytes = this.heapUsedBytes();
  }

  /** Checks every checkIntervalMs; the timer never keeps the process alive. */
  start(): this {
    this.timer ??= setInterval(() => this.check(), this.options.checkIntervalMs ?? HEAP_CHECK_INTERVAL_MS);
    this.timer.unref?.();
    return this;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

/**
 * Hands memory back after a burst (issue 12 item 6). A burst of requests leaves the heap at its
 * high-water mark, compiled code for every path it took and the allocator's free pages, and an
 * idle server keeps them: JavaScriptCore collects by allocation, and an idle server allocates
 * nothing. Once the process has been quiet (under BUSY_CPU_MS_PER_SECOND of CPU a second, all its
 * threads) for QUIET_SECONDS_BEFORE_RELEASE after a burst, this runs one full collection and `Bun.shrink()`
 * (which, when the engine is next idle, frees unused compiled code and returns free memory), then
 * waits for the next burst. Start-up is the first burst. Measured on the compiled binary, 6 s
 * after 8 s of anonymous pulls: VmRSS 73.9 → 67.9 MiB (RssAnon 21.8 → 15.6). Under load (more
 * than 100 ms of CPU a second: above ~400–500 token requests a second on this 2-core machine)
 * nothing runs, since discarding compiled code then would only cost throughput; a lighter steady
 * trickle after a burst counts as quiet, and gets the one release of that burst.
 */
// A token request costs ~0.15–0.2 ms of CPU; a busy server uses ≥ 500 ms a second. An idle server that has
// just served a burst still uses 10–40 ms some seconds (the engine's own collections finishing), and
// those seconds must not restart the count.
export const BUSY_CPU_MS_PER_SECOND = 100;
export const QUIET_SECONDS_BEFORE_RELEASE = 10;

export interface QuietReleaseOptions {
  /** CPU time the process has used so far, user and system, in microseconds (tests give their own). */
  cpuMicros?: () => number;
  /** What hands memory back (tests count calls). */
  release?: () => void;
  /** One check a second; the thresholds are per check. */
  checkIntervalMs?: number;
}

function releaseMemory(): void {
  log.debug("handing memory back after a quiet period", {
    rss_mib: Math.round(process.memoryUsage.rss() / 2 ** 20),
  });
  Bun.gc(true);
  // Deprecated in bun-types, and still there: without it, only the collection runs.
  if (typeof Bun.shrink === "function") Bun.shrink();
}

export class QuietRelease {
  private readonly cpuMicros: () => number;
  private readonly release: () => void;
  private lastCpuMicros: number;
  private quietChecks = 0;
  /** Start-up is the first burst. */
  private isBusySinceRelease = true;
  private timer: ReturnType<typeof setInterval> | undefined;
  /** Times memory was handed back (for tests). */
  releases = 0;

  constructor(private readonly options: QuietReleaseOptions = {}) {
    this.cpuMicros =
      options.cpuMicros ??
      (() => {
        const { user, system } = process.cpuUsage();
        return user + system;
      });
    this.release = options.release ?? releaseMemory;
    this.lastCpuMicros = this.cpuMicros();
  }

  check(): void {
    const nowMicros = this.cpuMicros();
    const usedMs = (nowMicros - this.lastCpuMicros) / 1000;
    this.lastCpuMicros = nowMicros;
    if (usedMs >= BUSY_CPU_MS_PER_SECOND) {
      this.isBusySinceRelease = true;
      this.quietChecks = 0;
      return;
    }
    if (!this.isBusySinceRelease || ++this.quietChecks < QUIET_SECONDS_BEFORE_RELEASE) return;
    this.release();
    this.releases++;
    this.isBusySinceRelease = false;
    this.quietChecks = 0;
    // The release's own CPU time is not a burst.
    this.lastCpuMicros = this.cpuMicros();
  }

  /** Checks every checkIntervalMs; the timer never keeps the process alive. */
  start(): this {
    this.timer ??= setInterval(() => this.check(), this.options.checkIntervalMs ?? 1000);
    this.timer.unref?.();
    return this;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
