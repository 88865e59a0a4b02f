/**
 * The one way regauth runs an external program (ext_auth, ext_authz). docker_auth runs hooks with
 * `exec.Command(...).Output()`: inherited environment, no timeout, unbounded output, and a read that
 * blocks for as long as any grandchild holds stdout open (security.md §5.1, §5.3). Here:
 *
 * - argv only, never a shell; the program is an absolute path checked when the config loads;
 * - the child leads its own process group (`detached` = setsid(2)), so the timeout, an output
 *   overflow, and the end of the call kill everything the hook started (kill(-pgid, SIGKILL));
 * - stdout and stderr are each capped; a program that keeps writing past the cap is killed;
 * - after the program exits, its pipes are drained for a bounded grace period only: a grandchild
 *   that escaped the group (its own setsid) and holds stdout cannot hang the request
 *   (golang/go #23019, the reason Go added Cmd.WaitDelay);
 * - the environment is an allow-list (a fixed PATH, locale, TZ, HOME=/nonexistent): none of the
 *   server's variables, so no secret passed to regauth through its environment reaches a hook;
 * - at most `maxConcurrent` programs run at once per hook, with a bounded queue.
 *
 * The runner never logs stdin (it holds a password for ext_auth); callers log what they choose.
 */
import { Unavailable } from "../errors.ts";
import { log } from "../log.ts";
import { ConcurrencyLimit } from "./concurrency-limit.ts";

export interface ProgramLimits {
  /** From spawn to exit. The whole process group is killed when it passes. */
  timeoutMs: number;
  /** Per stream (stdout, stderr). */
  maxOutputBytes: number;
  /** How long to keep reading pipes after the program exited or was killed. */
  drainGraceMs: number;
  maxConcurrent: number;
  maxQueued: number;
}

export const DEFAULT_PROGRAM_LIMITS: ProgramLimits = {
  timeoutMs: 5_000,
  maxOutputBytes: 64 * 1024,
  drainGraceMs: 500,
  maxConcurrent: 8,
  maxQueued: 256,
};

/** PATH for hooks: the system directories only, never the server's own PATH. */
export const HOOK_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** Variables copied from the server's environment when set: they change formatting, not behaviour. */
const PASSED_THROUGH_VARIABLES = ["LANG", "LC_ALL", "TZ"] as const;

/** The complete environment of a hook. */
export function hookEnvironment(
  parent: Record<string, string | undefined> = process.env,
): Record<string, string> {
  const env: Record<string, string> = { PATH: HOOK_PATH, HOME: "/nonexistent" };
  for (const name of PASSED_THROUGH_VARIABLES) {
    const value = parent[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

/** The program ran to its own exit. What the exit code means is the caller's business. */
export interface ProgramExit {
  exitCode: number;
  stdout: Uint8Array;
  stderr: Uint8Array;
  durationMs: number;
  /** True when a process outside the group still held stdout or stderr after the grace period. */
  outputLeftOpen: boolean;
}

export type ProgramFailureReason = "busy" | "spawn" | "timeout" | "signal" | "output-limit";

/** The program could not give an answer: not started, killed, or too many calls waiting. */
export class ProgramFailure extends Error {
  constructor(
    readonly reason: ProgramFailureReason,
    message: string,
    /** What the program wrote to stderr before it failed (capped), for the log. */
    readonly stderr: Uint8Array = new Uint8Array(),
  ) {
    super(message);
    this.name = "ProgramFailure";
  }
}

/** Process groups still alive, killed if regauth exits first (a hook must not outlive the server). */
const liveGroups = new Set<number>();
process.on("exit", () => {
  for (const pgid of liveGroups) killGroup(pgid);
});

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, "SIGKILL");
  } catch {
    // ESRCH: the group is already gone.
  }
}

export class ProgramRunner {
  readonly limits: ProgramLimits;
  private readonly slots: ConcurrencyLimit;
  private readonly env: Record<string, string>;

  /** `program` must be absolute (see resolveHookProgram); `args` follow it verbatim. */
  constructor(
    readonly program: string,
    readonly args: readonly string[],
    limits: Partial<ProgramLimits> = {},
    parentEnv: Record<string, string | undefined> = process.env,
  ) {
    this.limits = { ...DEFAULT_PROGRAM_LIMITS, ...limits };
    this.slots = new ConcurrencyLimit(this.limits.maxConcurrent, this.limits.maxQueued);
    this.env = hookEnvironment(parentEnv);
  }

  /** Runs the program with `stdin` as its whole input. Throws ProgramFailure when it gave no answer. */
  async run(stdin: Uint8Array): Promise<ProgramExit> {
    // Waiting for a slot is bounded by the same timeout: a queue that does not move is a failure.
    const slot = await this.slots.acquire(this.limits.timeoutMs);
    if (slot !== "acquired") {
      throw new ProgramFailure(
        "busy",
        slot === "queue-full"
          ? `${this.limits.maxConcurrent} running and ${this.limits.maxQueued} waiting already`
          : `no free slot within ${this.limits.timeoutMs} ms (${this.limits.maxConcurrent} running)`,
      );
    }
    try {
      return await this.runNow(stdin);
    } finally {
      this.slots.release();
    }
  }

  get busy(): { running: number; waiting: number } {
    return { running: this.slots.runningCount, waiting: this.slots.waitingCount };
  }

  private async runNow(stdin: Uint8Array): Promise<ProgramExit> {
    const started = performance.now();
    let child: Bun.Subprocess<"pipe", "pipe", "pipe">;
    try {
      child = Bun.spawn([this.program, ...this.args], {
        stdin: "pipe",
        stdout: "pipe",
        stderr: "pipe",
        env: this.env,
        detached: true, // setsid(2): the child leads a new process group whose id is its pid
      });
    } catch (error) {
      throw new ProgramFailure("spawn", `cannot start ${this.program}: ${(error as Error).message}`);
    }
    const pgid = child.pid;
    liveGroups.add(pgid);
    let timedOut = false;
    let overflowed: "stdout" | "stderr" | null = null;
    const onOverflow = (stream: "stdout" | "stderr") => {
      overflowed ??= stream;
      killGroup(pgid);
    };
    const stdout = new CappedReader(child.stdout, this.limits.maxOutputBytes, () => onOverflow("stdout"));
    const stderr = new CappedReader(child.stderr, this.limits.maxOutputBytes, () => onOverflow("stderr"));
    writeAndClose(child.stdin, stdin);
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(pgid);
    }, this.limits.timeoutMs);
    try {
      await child.exited;
    } finally {
      clearTimeout(timer);
      // Whatever the hook left behind in its group (`sleep 60 &`) ends with it. The group id
      // stays reserved while any member lives, and is signalled right after the reap, so this
      // cannot reach an unrelated process.
      killGroup(pgid);
      liveGroups.delete(pgid);
    }
    const outputLeftOpen = !(await drainWithin([stdout, stderr], this.limits.drainGraceMs));
    const durationMs = Math.round(performance.now() - started);
    const stderrBytes = stderr.bytes();
    if (timedOut)
      throw new ProgramFailure("timeout", `timed out after ${this.limits.timeoutMs} ms`, stderrBytes);
    if (overflowed)
      throw new ProgramFailure(
        "output-limit",
        `wrote more than ${this.limits.maxOutputBytes} bytes to ${overflowed}`,
        stderrBytes,
      );
    if (child.signalCode !== null || child.exitCode === null)
      throw new ProgramFailure("signal", `killed by ${child.signalCode ?? "a signal"}`, stderrBytes);
    return {
      exitCode: child.exitCode,
      stdout: stdout.bytes(),
      stderr: stderrBytes,
      durationMs,
      outputLeftOpen,
    };
  }
}

/** Writes stdin and closes it. A program that exits without reading it is not an error (EPIPE). */
function writeAndClose(sink: Bun.FileSink, input: Uint8Array): void {
  // Both calls may return promises that reject later with EPIPE; unobserved, that rejection
  // would end the server.
  const ignore = () => {};
  try {
    const written = sink.write(input);
    if (written instanceof Promise) written.catch(ignore);
    const ended = sink.end();
    if (ended instanceof Promise) ended.catch(ignore);
  } catch {
    // The program is already gone; its exit status tells the rest.
  }
}

/** Reads a stream into memory up to a byte cap; past the cap it calls `onOverflow` and stops. */
class CappedReader {
  private readonly chunks: Uint8Array[] = [];
  private length = 0;
  private readonly stop: () => Promise<void>;
  readonly done: Promise<void>;

  constructor(stream: ReadableStream<Uint8Array>, cap: number, onOverflow: () => void) {
    const reader = stream.getReader();
    this.stop = () => reader.cancel();
    this.done = (async () => {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return;
          const room = cap - this.length;
          if (value.length > room) {
            if (room > 0) this.keep(value.subarray(0, room));
            onOverflow();
            await reader.cancel();
            return;
          }
          this.keep(value);
        }
      } catch {
        // A cancelled or broken pipe ends the output; what was read so far stands.
      }
    })();
  }

  private keep(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** Stops reading; releases the pipe even if another process still holds its write end. */
  async cancel(): Promise<void> {
    await this.stop().catch(() => {});
    await this.done;
  }

  bytes(): Uint8Array {
    return Buffer.concat(this.chunks);
  }
}

/** True when every reader reached end of file within `graceMs`; otherwise cancels them. */
async function drainWithin(readers: CappedReader[], graceMs: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), graceMs);
  });
  const drained = await Promise.race([Promise.all(readers.map((r) => r.done)).then(() => true), deadline]);
  clearTimeout(timer);
  if (!drained) await Promise.all(readers.map((r) => r.cancel()));
  return drained;
}

/** The start of a program's stderr for a log line, with `secret` (a password) blanked out. */
export function stderrExcerpt(stderr: Uint8Array, secret = "", maxChars = 300): string {
  // Redact before cutting, so no prefix of the secret survives the cut.
  let text = new TextDecoder().decode(stderr);
  if (secret !== "") text = text.replaceAll(secret, "[redacted]");
  text = text.trim();
  return text.length > maxChars ? `${text.slice(0, maxChars)}…` : text;
}

/**
 * Runs a hook for one request. A run that could not finish (busy, spawn error, timeout, signal,
 * output overflow) is logged, with `secret` redacted from the stderr excerpt, and becomes
 * Unavailable: the request failed, it was not denied. The exit status is the caller's to read.
 */
export async function runHook(
  runner: ProgramRunner,
  hook: "ext_auth" | "ext_authz",
  stdin: string,
  fields: Record<string, unknown>,
  secret = "",
): Promise<ProgramExit> {
  let exit: ProgramExit;
  try {
    exit = await runner.run(new TextEncoder().encode(stdin));
  } catch (error) {
    if (!(error instanceof ProgramFailure)) throw error;
    log.warn(`${hook} program failed`, {
      ...fields,
      reason: error.reason,
      error: error.message,
      stderr: stderrExcerpt(error.stderr, secret),
    });
    const role = hook === "ext_auth" ? "authentication" : "authorization";
    throw new Unavailable(`the ${role} program failed; see the server log`, { cause: error });
  }
  if (exit.outputLeftOpen) {
    log.warn(`${hook} program left a process holding its output open`, {
      ...fields,
      duration_ms: exit.durationMs,
    });
  }
  return exit;
}
