/**
 * `server.workers` (issue 17; README "Workers"): `regauth serve` is the supervisor and serves too;
 * it starts the other workers as copies of this executable, which bind the same port with
 * SO_REUSEPORT, so the kernel spreads connections over every process. Only the supervisor runs
 * the first-run admin, the banner and the background jobs; it owns the login throttle (its
 * workers ask it, src/serve/shared-throttle.ts), forwards SIGHUP, stops them on SIGTERM, and
 * restarts one that dies, with backoff.
 */
import type { Subprocess } from "bun";
import type { Throttle } from "../authn/throttle.ts";
import { log } from "../log.ts";
import { serverSecret } from "./server-secret.ts";
import { type ThrottleRequest, throttleService } from "./shared-throttle.ts";
import { type SupervisorMessage, WORKER_ENV, type WorkerMessage } from "./worker.ts";

/** How one worker's reload went: applied or refused, and the lines it logged about it. */
export interface WorkerReload {
  worker: number;
  isApplied: boolean;
  lines: string[];
  /** configFingerprint of the config the worker serves after it (src/serve/worker.ts). */
  config: string;
}

export interface WorkerPool {
  /**
   * Reloads every serving worker and resolves with how each went (one still starting reloads once
   * it serves). The supervisor reloads itself after: when it logs "config reloaded", every
   * process serves the new config.
   */
  reload(): Promise<WorkerReload[]>;
  /** SIGTERM to every worker; resolves once all have exited (SIGKILL after STOP_TIMEOUT_MS). */
  stop(): Promise<void>;
  /**
   * Stops these workers (SIGTERM) to start them again at once: one that serves another config than
   * the supervisor (a reload they did not agree on) starts from the config file again.
   */
  restart(workers: readonly number[]): void;
}

/** A worker that ran this long before it died restarts at once; one that dies sooner waits longer. */
const HEALTHY_RUN_MS = 30_000;
const FIRST_RESTART_DELAY_MS = 500;
const MAX_RESTART_DELAY_MS = 30_000;
/** A worker finishes its requests in this long after SIGTERM, or is killed. */
const STOP_TIMEOUT_MS = 10_000;
const EXIT_GRACE_MS = 200;
/** A worker's reload (a config, its keys, LDAP pools) takes well under this. */
const RELOAD_TIMEOUT_MS = 30_000;

interface Slot {
  id: number;
  process: Subprocess | null;
  isServing: boolean;
  isReloadPending: boolean;
  startedAtMs: number;
  restartDelayMs: number;
  restartTimer: ReturnType<typeof setTimeout> | null;
  /** Reloads asked of this worker process and not answered yet, by id. */
  reloads: Map<number, (answer: WorkerReload | null) => void>;
}

/**
 * Starts `count` workers (ids 1..count; the supervisor is 0). `throttle` is the issuer serving now's
 * throttle; `dataDir` the data directory the supervisor resolved (workers use it, whatever the
 * environment says by the time one restarts).
 */
export function startWorkers(options: {
  count: number;
  dataDir: string;
  throttle: () => Throttle | undefined;
  /** configFingerprint of the config the supervisor serves now: a starting worker must load the same. */
  config: () => string;
}): WorkerPool {
  let isStopping = false;
  const slots: Slot[] = Array.from({ length: options.count }, (_, i) => ({
    id: i + 1,
    process: null,
    isServing: false,
    isReloadPending: false,
    startedAtMs: 0,
    restartDelayMs: FIRST_RESTART_DELAY_MS,
    restartTimer: null,
    reloads: new Map(),
  }));
  let nextReloadId = 1;
  const askReload = (slot: Slot, child: Subprocess): Promise<WorkerReload | null> => {
    const id = nextReloadId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(null), RELOAD_TIMEOUT_MS);
      const done = (answer: WorkerReload | null) => {
        clearTimeout(timer);
        slot.reloads.delete(id);
        resolve(answer);
      };
      slot.reloads.set(id, done);
      if (!send(child, { t: "reload", id })) done(null);
    });
  };

  const spawn = (slot: Slot) => {
    slot.restartTimer = null;
    slot.isServing = false;
    slot.startedAtMs = Date.now();
    const throttleAnswers = throttleService(options.throttle, (answer) => send(child, answer));
    let child: Subprocess;
    try {
      child = Bun.spawn(workerCommand(), {
        env: workerEnvironment(slot.id),
        stdin: "ignore",
        // Only the supervisor prints (the banner, the registry block); the log is shared.
        stdout: "ignore",
        stderr: "inherit",
        serialization: "json",
        ipc(message: WorkerMessage) {
          if (typeof message !== "object" || message === null) return; // input too: never a throw here
          if (message.t === "hello") {
            send(child, {
              t: "start",
              secret: serverSecret().toString("base64"),
              dataDir: options.dataDir,
              workers: options.count + 1,
              config: options.config(),
            });
          } else if (message.t === "ready") {
            slot.isServing = true;
            log.info("worker serving", { worker: slot.id, pid: child.pid });
            if (slot.isReloadPending) {
              slot.isReloadPending = false;
              void askReload(slot, child);
            }
          } else if (message.t === "reloaded") {
            slot.reloads.get(message.id)?.({
              worker: slot.id,
              isApplied: message.isApplied === true,
              lines: Array.isArray(message.lines) ? message.lines.map(String) : [],
              config: String(message.config),
            });
          } else throttleAnswers.handle(message as ThrottleRequest);
        },
        onExit(_proc, exitCode, signalCode) {
          throttleAnswers.forget();
          for (const done of slot.reloads.values()) done(null);
          slot.process = null;
          slot.isServing = false;
          const ranMs = Date.now() - slot.startedAtMs;
          // A moment first: a SIGTERM to the whole group (systemd) may reach this worker before the
          // supervisor's own handler has run, and that exit is no crash.
          slot.restartTimer = setTimeout(() => {
            if (isStopping) return;
            if (ranMs >= HEALTHY_RUN_MS) slot.restartDelayMs = FIRST_RESTART_DELAY_MS;
            log.warn("worker exited; restarting it", {
              worker: slot.id,
              pid: child.pid,
              ...(signalCode ? { signal: signalCode } : { code: exitCode }),
              restart_in_seconds: slot.restartDelayMs / 1000,
            });
            slot.restartTimer = setTimeout(() => spawn(slot), slot.restartDelayMs);
            slot.restartDelayMs = Math.min(slot.restartDelayMs * 2, MAX_RESTART_DELAY_MS);
          }, EXIT_GRACE_MS);
        },
      });
    } catch (error) {
      // No process (EAGAIN, ENOMEM): try again later, as for one that died at once.
      log.error("cannot start a worker; trying again", {
        worker: slot.id,
        error: error instanceof Error ? error.message : String(error),
        restart_in_seconds: slot.restartDelayMs / 1000,
      });
      slot.restartTimer = setTimeout(() => {
        if (!isStopping) spawn(slot);
      }, slot.restartDelayMs);
      slot.restartDelayMs = Math.min(slot.restartDelayMs * 2, MAX_RESTART_DELAY_MS);
      return;
    }
    slot.process = child;
  };
  for (const slot of slots) spawn(slot);

  return {
    async reload() {
      const asked: Promise<WorkerReload | null>[] = [];
      for (const slot of slots) {
        // One still starting may have read the file before it changed: it reloads once it serves.
        if (slot.process && slot.isServing) asked.push(askReload(slot, slot.process));
        else slot.isReloadPending = true;
      }
      return (await Promise.all(asked)).filter((answer) => answer !== null);
    },
    restart(workers) {
      for (const slot of slots) {
        if (!workers.includes(slot.id) || !slot.process) continue;
        log.warn("a worker serves another config than the supervisor; restarting it", {
          worker: slot.id,
          pid: slot.process.pid,
        });
        slot.restartDelayMs = FIRST_RESTART_DELAY_MS; // asked for, not a crash
        slot.process.kill("SIGTERM");
      }
    },
    async stop() {
      isStopping = true;
      const running = slots.flatMap((slot) => {
        if (slot.restartTimer) clearTimeout(slot.restartTimer);
        return slot.process ? [slot.process] : [];
      });
      for (const child of running) child.kill("SIGTERM");
      const killer = setTimeout(() => {
        for (const child of running) child.kill("SIGKILL");
      }, STOP_TIMEOUT_MS);
      await Promise.all(running.map((child) => child.exited));
      clearTimeout(killer);
    },
  };
}

/** A message to a worker; false when its channel is gone (it is exiting: its exit is handled). */
function send(child: Subprocess, message: SupervisorMessage): boolean {
  try {
    child.send(message);
    return true;
  } catch {
    return false;
  }
}

/**
 * This executable again: a compiled binary is process.execPath itself (its argv[1] is the embedded
 * entry point, /$bunfs/...); under `bun run src/main.ts` the script goes after bun.
 */
function workerCommand(): string[] {
  const [, entry, ...args] = process.argv;
  const isCompiled = entry === undefined || entry.startsWith("/$bunfs/") || entry.startsWith("B:/~BUN/");
  return isCompiled ? [process.execPath, ...args] : [process.execPath, entry, ...args];
}

/**
 * A worker's environment: the supervisor's, with its id, and without the build's bytecode-order
 * output (scripts/lib/bytecode-order.ts): every worker would write that file at exit, and the
 * last one's profile would win over the supervisor's.
 */
function workerEnvironment(id: number): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env))
    if (value !== undefined && name !== "BUN_BYTECODE_ORDER_OUT") env[name] = value;
  env[WORKER_ENV] = String(id);
  return env;
}
