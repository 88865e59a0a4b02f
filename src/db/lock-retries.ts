/**
 * Writes that meet the database's write lock taken. bun:sqlite is synchronous: a busy_timeout
 * wait holds the whole event loop, every request of the process with it (review finding 9). So
 * request-path writes that may meet a lock run with busy_timeout 0 and retry after short pauses
 * that do not block: the lock is taken for milliseconds at a time by this server's own writers
 * (the background writer, the webhooks' queue and, with server.workers, the other processes).
 * Only a lock held for longer (another program: the CLI, a backup) is a store fault, after about a
 * quarter of a second.
 */
import type { Database } from "bun:sqlite";
import { storeFault } from "./store-errors.ts";

/** Attempts at a write while the lock is taken, and the pause between two. */
const LOCK_ATTEMPTS = 12;
const LOCK_RETRY_PAUSE_MS = 20;

/** Retries `write` while it finds the lock taken, pausing without blocking the event loop. */
export async function withLockRetries<T>(write: () => T): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return write();
    } catch (error) {
      if (attempt >= LOCK_ATTEMPTS || storeFault(error) !== "locked") throw error;
      await Bun.sleep(LOCK_RETRY_PAUSE_MS * (0.5 + Math.random()));
    }
  }
}

/**
 * Runs a write with busy_timeout 0, so SQLITE_BUSY comes back at once instead of a wait that
 * holds every request; the connection's timeout is restored.
 */
export function withoutBusyWait<T>(db: Database, write: () => T): T {
  const previous = db.query<{ timeout: number }, []>("PRAGMA busy_timeout").get()?.timeout ?? 0;
  db.run("PRAGMA busy_timeout = 0");
  try {
    return write();
  } finally {
    db.run(`PRAGMA busy_timeout = ${Math.trunc(previous)}`);
  }
}
