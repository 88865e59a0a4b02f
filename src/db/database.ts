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
import { chownSync, closeSync, existsSync, openSync } from "node:fs";
import { dirname, join } from "node:path";
import { DATABASE_FILE_NAME, dataDirOwnerToChownTo, throwIfUntrustedFile } from "./data-dir.ts";
import { DatabaseError } from "./database-error.ts";
import { LATEST_SCHEMA_VERSION, migrate, schemaVersion } from "./migrate.ts";
import { isDiskFull } from "./store-errors.ts";

export { DATABASE_FILE_NAME, DatabaseError };
/** How long a writer waits for another one (the CLI, a second process) before giving up. */
export const BUSY_TIMEOUT_MS = 5000;
/**
 * The server's wait for a lock once it serves requests: bun:sqlite is synchronous, so every
 * millisecond here holds every request (issue 9, item 2). A registration that does not get the
 * lock in time answers 503 with Retry-After (src/db/store-errors.ts). Start-up (migrations, the
 * first admin) and the CLI keep BUSY_TIMEOUT_MS.
 */
export const REQUEST_PATH_BUSY_TIMEOUT_MS = 100;

export function databasePath(dataDir: string): string {
  return join(dataDir, DATABASE_FILE_NAME);
}

/**
 * `sudo regauth user add ...` on a fresh data directory of a server that runs as another user
 * (systemd DynamicUser owns /var/lib/regauth): a database file created by root would be
 * unwritable for the server. So root hands the new file to the directory's owner, but only
 * inside a 0700 directory (issue 8 L4: never to whoever owns some open directory).
 */
function giveToDataDirOwner(path: string): void {
  const owner = dataDirOwnerToChownTo(dirname(path));
  if (owner) chownSync(path, owner.uid, owner.gid);
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

export interface OpenDatabaseOptions {
  busyTimeoutMs?: number;
  /**
   * Run `PRAGMA quick_check` and refuse a damaged database (serve does, at start: a damaged
   * index must not turn every anonymous pull into a 500; issue 9, item 5).
   */
  quickCheck?: boolean;
}

/** Opens (creating if needed) and migrates the database. Throws DatabaseError with a clear message. */
export function openDatabase(path: string, options: OpenDatabaseOptions = {}): Database {
  refuseLinkedFiles(path);
  let db: Database;
  try {
    // The database holds password hashes: create it 0600 whatever the umask. SQLite gives its
    // -wal and -shm files the database file's mode, and owner when running as root.
    if (!existsSync(path)) createPrivateFile(path);
    db = new Database(path, { create: true, strict: true });
  } catch (error) {
    throw new DatabaseError(`cannot open the database ${path}: ${describeSqliteError(error, path)}`);
  }
  try {
    db.run(`PRAGMA busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? BUSY_TIMEOUT_MS)}`);
    db.run("PRAGMA journal_mode = WAL");
    db.run("PRAGMA synchronous = NORMAL");
    db.run("PRAGMA foreign_keys = ON");
    if (options.quickCheck) checkIntegrity(db, path);
    migrate(db);
    // A harmless write, so that a read-only file or directory fails here, with this message,
    // and not at the first login.
    db.run(`PRAGMA user_version = ${schemaVersion(db)}`);
    return db;
  } catch (error) {
    db.close();
    if (error instanceof DatabaseError) throw error;
    throw new DatabaseError(`cannot use the database ${path}: ${describeSqliteError(error, path)}`);
  }
}

/**
 * Opens an existing database read-only, for commands that only read (`user list`, `perm list`,
 * `group list`): they work on a full disk and on a read-only file or directory (issue 9, item 5).
 * Never creates nor migrates; a database older than this binary is refused with a clear message.
 */
export function openDatabaseReadOnly(path: string): Database {
  refuseLinkedFiles(path);
  let db: Database;
  try {
    if (!existsSync(path))
      throw new DatabaseError(
        `no accounts database at ${path} yet (regauth serve or regauth user add creates it)`,
      );
    db = new Database(path, { readonly: true, strict: true });
    db.run(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    const version = schemaVersion(db);
    if (version !== LATEST_SCHEMA_VERSION) {
      db.close();
      throw new DatabaseError(
        `the database ${path} has schema v${version}, this binary v${LATEST_SCHEMA_VERSION}: run a command that writes (or regauth serve) once to ${version < LATEST_SCHEMA_VERSION ? "upgrade it" : "see why"}`,
      );
    }
    return db;
  } catch (error) {
    if (error instanceof DatabaseError) throw error;
    throw new DatabaseError(`cannot read the database ${path}: ${describeSqliteError(error, path)}`);
  }
}

/**
 * SQLite opens the database, and then its -wal and -shm by name, following symlinks: each must be
 * missing or a regular file of the data directory's owner or ours (review finding 10). What is
 * left is the moment between this check and SQLite's open, which only the directory's owner
 * (trusted to run the service) can use.
 */
function refuseLinkedFiles(path: string): void {
  for (const suffix of ["", "-wal", "-shm"]) throwIfUntrustedFile(`${path}${suffix}`);
}

/** PRAGMA quick_check (O(size), no index-to-table cross-check): refuses a damaged database. */
function checkIntegrity(db: Database, path: string): void {
  const rows = db.query<{ quick_check: string }, []>("PRAGMA quick_check(5)").all();
  if (rows.length === 1 && rows[0]?.quick_check === "ok") return;
  throw new DatabaseError(
    `the database ${path} is damaged (${rows.map((r) => r.quick_check).join("; ")}); regauth does not serve from a damaged store. ` +
      `Check it with: sqlite3 ${path} 'PRAGMA integrity_check', then restore ${path} from your backup ` +
      "(docs/deployment.md, Backups); a damaged index alone can be rebuilt with sqlite3 ... 'REINDEX'",
  );
}

function describeSqliteError(error: unknown, path = ""): string {
  const code = (error as { code?: string }).code ?? "";
  const message = error instanceof Error ? error.message : String(error);
  if (
    code === "SQLITE_FULL" ||
    code === "ENOSPC" ||
    (code.startsWith("SQLITE_IOERR") && path !== "" && isDiskFull(path))
  )
    return "the disk is full (free some space and start again)";
  if (code === "SQLITE_CORRUPT" || code === "SQLITE_NOTADB" || /malformed|not a database/i.test(message))
    return `${message}: the file is damaged or not a regauth database; check it with sqlite3 ${path || "regauth.db"} 'PRAGMA integrity_check' and restore it from your backup (docs/deployment.md, Backups)`;
  if (
    code.startsWith("SQLITE_READONLY") ||
    code === "SQLITE_CANTOPEN" ||
    /readonly|unable to open/i.test(message)
  )
    return `${message} (is the data directory writable by this user?)`;
  if (code.startsWith("SQLITE_BUSY")) return `${message} (another process holds a lock for too long)`;
  return message;
}
