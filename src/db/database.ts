/**
 * The SQLite database in the data directory. One handle per process; every module that needs it
 * gets it passed explicitly. Settings (security.md §8, sqlite.org/wal.html):
 * - busy_timeout first, so that even the journal_mode switch waits for another process (the
 *   offline CLI) instead of failing with SQLITE_BUSY;
 * - WAL: readers never block the writer, the token path never waits for the CLI;
 * - synchronous=NORMAL: in WAL mode a commit survives a crash of the process (kill -9); only a
 *   power loss may drop the last transactions, never corrupt the file;
 * - foreign_keys=ON: SQLite's default is off, per connection.
 */
import { Database } from "bun:sqlite";
import { chownSync, closeSync, existsSync, openSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { DatabaseError } from "./database-error.ts";
import { migrate, schemaVersion } from "./migrate.ts";

export { DatabaseError };

export const DATABASE_FILE_NAME = "regauth.db";
/** How long a writer waits for another one (the CLI, a second process) before giving up. */
export const BUSY_TIMEOUT_MS = 5000;

export function databasePath(dataDir: string): string {
  return join(dataDir, DATABASE_FILE_NAME);
}

/**
 * `sudo regauth user add ...` on a fresh data directory of a server that runs as another user
 * (systemd DynamicUser owns /var/lib/regauth): a database file created by root would be
 * unwritable for the server. So root hands the new file to the directory's owner.
 */
function giveToDataDirOwner(path: string): void {
  if (process.getuid?.() !== 0) return;
  const directory = statSync(dirname(path));
  if (directory.uid !== 0) chownSync(path, directory.uid, directory.gid);
}

/** Creates an empty 0600 file; another process creating it first is fine (both then open it). */
function createPrivateFile(path: string): void {
  try {
    closeSync(openSync(path, "wx", 0o600));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return;
    throw error;
  }
  giveToDataDirOwner(path);
}

/** Opens (creating if needed) and migrates the database. Throws DatabaseError with a clear message. */
export function openDatabase(path: string, options: { busyTimeoutMs?: number } = {}): Database {
  let db: Database;
  try {
    // The database holds password hashes: create it 0600 whatever the umask. SQLite gives its
    // -wal and -shm files the database file's mode, and owner when running as root.
    if (!existsSync(path)) createPrivateFile(path);
    db = new Database(path, { create: true, strict: true });
  } catch (error) {
    throw new DatabaseError(`cannot open the database ${path}: ${describeSqliteError(error)}`);
  }
  try {
    db.run(`PRAGMA busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? BUSY_TIMEOUT_MS)}`);
    db.run("PRAGMA journal_mode = WAL");
    db.run("PRAGMA synchronous = NORMAL");
    db.run("PRAGMA foreign_keys = ON");
    migrate(db);
    // A harmless write, so that a read-only file or directory fails here, with this message,
    // and not at the first login.
    db.run(`PRAGMA user_version = ${schemaVersion(db)}`);
    return db;
  } catch (error) {
    db.close();
    if (error instanceof DatabaseError) throw error;
    throw new DatabaseError(`cannot use the database ${path}: ${describeSqliteError(error)}`);
  }
}

function describeSqliteError(error: unknown): string {
  const code = (error as { code?: string }).code ?? "";
  const message = error instanceof Error ? error.message : String(error);
  if (
    code.startsWith("SQLITE_READONLY") ||
    code === "SQLITE_CANTOPEN" ||
    /readonly|unable to open/i.test(message)
  )
    return `${message} (is the data directory writable by this user?)`;
  if (code.startsWith("SQLITE_BUSY")) return `${message} (another process holds a lock for too long)`;
  return message;
}
