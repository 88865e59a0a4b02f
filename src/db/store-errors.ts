/**
 * SQLite failures that are the store's state, not our bug (issue 9, items 2 and 5): a lock held
 * by another process (SQLITE_BUSY, SQLITE_LOCKED), a full disk (SQLITE_FULL), a failing or frozen
 * disk (SQLITE_IOERR), a read-only file. On the request path they become StoreUnavailable (503
 * with Retry-After, one log line, no stack); at start-up and in the CLI a DatabaseError that names
 * the file and says what happened in words ("the disk is full", not "disk I/O error").
 */
import { statfsSync } from "node:fs";
import { dirname } from "node:path";
import { StoreUnavailable, type ThrottleSettlement } from "../errors.ts";
import { log } from "../log.ts";
import { DatabaseError } from "./database-error.ts";

/** What a client waiting for a lock or for disk space should wait before trying again. */
export const STORE_RETRY_AFTER_SECONDS = 2;

export function sqliteCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : "";
}

type StoreFault = "locked" | "disk full" | "disk error" | "read-only";

export function storeFault(error: unknown): StoreFault | null {
  const code = sqliteCode(error);
  if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) return "locked";
  if (code === "SQLITE_FULL" || code === "ENOSPC" || code === "EDQUOT") return "disk full";
  if (code.startsWith("SQLITE_IOERR")) return "disk error";
  if (code.startsWith("SQLITE_READONLY") || code === "EROFS") return "read-only";
  return null;
}

/** True when the file system holding `path` has (almost) no space left for us. */
export function isDiskFull(path: string): boolean {
  try {
    const stats = statfsSync(dirname(path));
    return stats.bavail * stats.bsize < 64 * 1024;
  } catch {
    return false;
  }
}

function faultInWords(fault: StoreFault, path: string): string {
  switch (fault) {
    case "locked":
      return "another process (the CLI, a backup) holds the database lock";
    case "disk full":
      return "the disk is full";
    case "disk error":
      // SQLite reports a full disk as an I/O error when it hits ENOSPC growing its shared-memory file.
      return isDiskFull(path) ? "the disk is full" : "disk I/O error (check the disk: dmesg, df)";
    case "read-only":
      return "the database or its directory is read-only for this user";
  }
}

/**
 * For start-up and the CLI: a DatabaseError that names the file and the fault, or the error
 * unchanged when it is not a store fault (or already explains itself).
 */
export function describeStoreError(error: unknown, path: string, doing: string): unknown {
  if (error instanceof DatabaseError) return error;
  const fault = storeFault(error);
  if (fault === null) return error;
  return new DatabaseError(`${doing} ${path}: ${faultInWords(fault, path)}`);
}

let lastLoggedMs = 0;
let suppressed = 0;

/**
 * For the request path: the StoreUnavailable to answer with, or null when `error` is not a store
 * fault. Logged at most every 10 s with the count in between: a held lock fails every write.
 */
export function storeUnavailable(
  error: unknown,
  path: string,
  settlement: ThrottleSettlement = {},
): StoreUnavailable | null {
  if (error instanceof StoreUnavailable) return error;
  const fault = storeFault(error);
  if (fault === null) return null;
  const now = Date.now();
  if (now - lastLoggedMs >= 10_000) {
    log.warn("the accounts database cannot answer; clients get 503", {
      database: path,
      reason: faultInWords(fault, path),
      code: sqliteCode(error),
      ...(suppressed > 0 ? { suppressed } : {}),
    });
    lastLoggedMs = now;
    suppressed = 0;
  } else suppressed++;
  return new StoreUnavailable(
    fault === "locked"
      ? "the accounts database is busy; try again shortly"
      : "the accounts database cannot be written right now; try again later",
    STORE_RETRY_AFTER_SECONDS,
    settlement,
  );
}
