/**
 * A worker's side of `server.workers` (src/serve/supervisor.ts): how `regauth serve` knows it was
 * started by a supervisor, and the handshake that gives it the server's secret and data directory
 * and connects its throttle to the supervisor's.
 */
import { LoginThrottle } from "../authn/throttle.ts";
import { type PasswordVerifierOptions, DEFAULT_VERIFIER_OPTIONS } from "../authn/password-verifier.ts";
import { log } from "../log.ts";
import { useServerSecret } from "./server-secret.ts";
import { SharedThrottle, type ThrottleAnswer, type ThrottleRequest } from "./shared-throttle.ts";

/** Set by the supervisor in a worker's environment: its id, 1..N-1. */
export const WORKER_ENV = "REGAUTH_WORKER";

export type WorkerMessage =
  | { t: "hello" }
  | { t: "ready" }
  | { t: "reloaded"; id: number; isApplied: boolean; lines: string[]; config: string }
  | ThrottleRequest;
export type SupervisorMessage =
  | { t: "start"; secret: string; dataDir: string; workers: number; config: string }
  | { t: "reload"; id: number }
  | ThrottleAnswer;

/** The lines of a reload's outcome, which the supervisor logs once for the server (src/reload/reload-config.ts). */
const RELOAD_OUTCOME =
  /msg="?config (reloaded|reload refused|key changed but needs a restart)|"msg":"config (reloaded|reload refused|key changed but needs a restart)/;

export interface WorkerLink {
  id: number;
  dataDir: string;
  /** How many processes serve, the supervisor included. */
  workers: number;
  /** configFingerprint of the config the supervisor serves now: a worker serves that one or none. */
  config: string;
  throttle: SharedThrottle;
  /** Tells the supervisor this worker serves (then it forwards SIGHUP). */
  ready(): void;
  /**
   * Runs `reload` when the supervisor asks (on its SIGHUP), one at a time; `reload` says whether
   * the new config was applied, and the configFingerprint of the one serving after. Its outcome
   * lines go to the supervisor, the rest to the log.
   */
  onReload(reload: () => Promise<{ isApplied: boolean; config: string }>): void;
  /** Runs `stop` once the supervisor is gone (killed, crashed): a worker never outlives it. */
  onSupervisorGone(stop: () => void): void;
}

/** This process's worker id when a supervisor started it (with an IPC channel), else null. */
export function workerId(): number | null {
  const id = Number(process.env[WORKER_ENV]);
  return Number.isInteger(id) && id > 0 && typeof process.send === "function" ? id : null;
}

/** Greets the supervisor and waits for the server's secret and data directory. */
export async function joinSupervisor(id: number): Promise<WorkerLink> {
  // A closed channel means the supervisor is gone, and this worker is stopping (onSupervisorGone).
  const send = (message: WorkerMessage) => {
    try {
      process.send?.(message);
    } catch {}
  };
  const throttle = new SharedThrottle(send, new LoginThrottle());
  let reloadHandler: (() => Promise<{ isApplied: boolean; config: string }>) | null = null;
  let reloads = Promise.resolve();
  const reload = (id: number) => {
    reloads = reloads.then(async () => {
      const lines: string[] = [];
      const restore = log.capture(lines);
      let outcome = { isApplied: false, config: "" };
      try {
        outcome = (await reloadHandler?.()) ?? outcome;
      } finally {
        restore();
      }
      for (const line of lines) if (!RELOAD_OUTCOME.test(line)) process.stderr.write(`${line}\n`);
      send({
        t: "reloaded",
        id,
        ...outcome,
        lines: lines.filter((line) => RELOAD_OUTCOME.test(line)),
      });
    });
  };
  const start = await new Promise<{ secret: string; dataDir: string; workers: number; config: string }>(
    (resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the supervisor did not answer")), 30_000);
      process.on("message", (message: SupervisorMessage) => {
        if (message.t === "start") {
          clearTimeout(timer);
          resolve(message);
        } else if (message.t === "reload") reload(message.id);
        else throttle.answered(message);
      });
      send({ t: "hello" });
    },
  );
  useServerSecret(Buffer.from(start.secret, "base64"));
  return {
    id,
    dataDir: start.dataDir,
    workers: start.workers,
    config: start.config,
    throttle,
    ready: () => send({ t: "ready" }),
    onReload(handler) {
      reloadHandler = handler;
    },
    onSupervisorGone(stop) {
      process.once("disconnect", stop);
      // A parent that died without closing the channel cleanly: re-parented, so ppid changes.
      const parent = process.ppid;
      setInterval(() => {
        if (process.ppid !== parent) stop();
      }, 1000).unref();
    },
  };
}

/**
 * What a config says, as one short string: equal in every process that loaded the same config.
 * A worker that (re)starts or reloads and gets another one than the supervisor serves (the file
 * was edited and not reloaded yet, it changed between their reads, a key that needs a restart
 * changed) must not serve it: an ACL or a user the server revoked would still be served there.
 */
export function configFingerprint(loaded: { config: unknown }): string {
  return new Bun.CryptoHasher("sha256").update(JSON.stringify(loaded.config)).digest("base64");
}

/**
 * The password-check queue of one of `workers` processes: its share of the slots and waiting
 * places, so the server as a whole checks as many passwords at once as one process did, and one
 * source still gets one share of each queue (src/authn/password-verifier.ts).
 */
export function verifierShare(workers: number): PasswordVerifierOptions {
  const d = DEFAULT_VERIFIER_OPTIONS;
  return {
    ...d,
    maxConcurrentVerifications: Math.max(1, Math.floor(d.maxConcurrentVerifications / workers)),
    // Half as many again: SO_REUSEPORT spreads connections by a hash of their addresses, not
    // evenly, so a burst of 64 fills one process's exact share (32 of 64) while the other has
    // room, and the overflow was refused (503, charged to the source, then 429): the bench's
    // 1,000 users rotating on 64 connections got 2,516 refusals with two workers and none with
    // one. With one slot a process, 48 waiting is 2.4 s of bcrypt-10 at worst.
    maxWaitingVerifications: Math.max(8, Math.ceil((d.maxWaitingVerifications * 1.5) / workers)),
  };
}
