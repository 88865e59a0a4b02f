/**
 * What `regauth serve` (src/main.ts) asks about `server.workers` (issue 17), in one place: how
 * many, the lock on the listen address, the password-check queue's share, the pool of workers.
 */
import type { Throttle } from "../authn/throttle.ts";
import type { PasswordVerifierOptions } from "../authn/password-verifier.ts";
import { type LoadedConfig, parseListenAddress } from "../config/load.ts";
import { log } from "../log.ts";
import { usableCpuCount } from "./cpus.ts";
import { holdPortLock, type PortLock } from "./port-lock.ts";
import { startWorkers, type WorkerPool, type WorkerReload } from "./supervisor.ts";
import { joinSupervisor, verifierShare, type WorkerLink, workerId } from "./worker.ts";
import { setWorkerLabel } from "./worker-label.ts";

type ServerSection = LoadedConfig["config"]["server"];

/** The supervisor's link when this process is one of its workers; null otherwise. */
export async function joinIfWorker(): Promise<WorkerLink | null> {
  const id = workerId();
  if (id === null) return null;
  setWorkerLabel(id);
  log.tagProcess({ worker: id });
  return joinSupervisor(id);
}

/**
 * Processes to serve with: server.workers, else the usable CPUs; 1 on a unix socket (no
 * SO_REUSEPORT); 1 with server.letsencrypt. With metrics on and no server.workers, 1 as well:
 * each process counts its own, and a scrape through the shared port would see one process's
 * counters, then another's.
 */
export function workerCount(config: LoadedConfig["config"]): number {
  const { server } = config;
  if (server.net !== "tcp") {
    if ((server.workers ?? 1) > 1)
      log.warn("server.workers needs a TCP listener; serving with one process", { net: server.net });
    return 1;
  }
  // server.letsencrypt (issue 16, merged beside this): its certificate is obtained, renewed and
  // swapped in by the supervisor alone; a worker would serve without it. One process until
  // renewals reach the workers.
  if ((server as { letsencrypt?: unknown }).letsencrypt !== undefined) {
    if ((server.workers ?? 1) > 1)
      log.warn("server.workers with server.letsencrypt is not supported yet; serving with one process", {
        workers: server.workers,
      });
    return 1;
  }
  // Port 0 is a new port for each process that binds it: workers would listen where nobody looks.
  if (parseListenAddress(server.addr)?.port === 0) return 1;
  if (server.workers === undefined && config.metrics.enabled) return 1;
  if ((server.workers ?? 1) > 1 && config.metrics.enabled)
    log.warn("metrics are counted per worker: each scrape of /metrics sees one of them", {
      workers: server.workers,
      fix: "server.workers 1 for exact metrics",
    });
  return server.workers ?? usableCpuCount();
}

/** The listen address's lock (src/serve/port-lock.ts); TCP only, as only TCP is shared. */
export function lockListenAddress(server: ServerSection): PortLock {
  const address = server.net === "tcp" ? parseListenAddress(server.addr) : null;
  // Port 0 is a new port each time: nothing to share, nothing to lock.
  if (!address || address.port === 0) return { release() {} };
  return holdPortLock(`${address.hostname}:${address.port}`);
}

/** Each process's share of the password-check queue; the default with one process. */
export function verifierOptions(workers: number): PasswordVerifierOptions | undefined {
  return workers > 1 ? verifierShare(workers) : undefined;
}

/** Starts workers 1..count-1 beside this process (0); null with one process. */
export function startPool(
  count: number,
  dataDir: string,
  throttle: () => Throttle | undefined,
  config: () => string,
): WorkerPool | null {
  if (count <= 1) return null;
  setWorkerLabel(0);
  return startWorkers({ count: count - 1, dataDir, throttle, config });
}

export { configFingerprint } from "./worker.ts";

/**
 * After a reload: the workers that serve another config than the supervisor now does (`config`,
 * its configFingerprint): they refused what it applied, applied what it refused, or read the
 * file at another moment. Each is restarted (src/serve/supervisor.ts), so that no process keeps
 * serving an ACL, a user or a password the server no longer has; one whose file still differs
 * does not start (serveAsWorker) until a reload or a restart makes them one config again.
 */
export function workersServingOtherConfig(inWorkers: readonly WorkerReload[], config: string): number[] {
  return inWorkers.filter((answer) => answer.config !== config).map((answer) => answer.worker);
}

/**
 * After a reload: a worker whose outcome differs from the supervisor's (a file that changed
 * between their reads, a back-end one of them could not reach) is logged with what it said.
 */
export function logDisagreements(inWorkers: WorkerReload[], isApplied: boolean): void {
  for (const answer of inWorkers) {
    if (answer.isApplied === isApplied) continue;
    log.warn(
      isApplied
        ? "a worker refused the config the others reloaded; it keeps its running config"
        : "a worker reloaded the config the others refused",
      { worker: answer.worker, fix: "fix the config, then systemctl reload regauth (or restart)" },
    );
    for (const line of answer.lines) process.stderr.write(`${line}\n`);
  }
}
