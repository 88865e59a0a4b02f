/**
 * `regauth backup DIR` (issue 12, item 3): an online, consistent copy of the data directory that
 * is itself a data directory, so that restoring is one step: stop, put DIR in place of the data
 * directory, start (docs/deployment.md, Backups).
 *
 * The database is copied with `VACUUM INTO`, one read transaction: a snapshot that a running
 * server's writes cannot tear (a file copy can catch a WAL checkpoint half-way). The copy is in
 * rollback-journal mode; regauth switches it to WAL on its first start. Every other regular file
 * of the data directory (token.key/crt, refresh.key, access-token.key, notifications.secret, and
 * whatever later versions keep there, such as a key set) is copied as it is: regauth writes those atomically (rename), so
 * a reader sees the old file or the new one, never half of one. Everything is 0600 in a 0700
 * directory: the copy holds the private signing key and the password hashes.
 */
import type { Database } from "bun:sqlite";
import { Database as SqliteDatabase } from "bun:sqlite";
import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { DATABASE_FILE_NAME } from "../db/data-dir.ts";
import { syncDirectory, writePrivateFile } from "../fs/private-file.ts";

/** The database's own files are copied through SQLite, never as bytes. */
const DATABASE_FILES = new Set([
  DATABASE_FILE_NAME,
  `${DATABASE_FILE_NAME}-wal`,
  `${DATABASE_FILE_NAME}-shm`,
]);
/** Left behind by --reinitialize (src/db/data-dir.ts setAsideEmptyDatabase): not part of a restore. */
const SET_ASIDE = /\.before-reinitialize-\d+$/;

export class BackupError extends Error {}

export interface BackupResult {
  directory: string;
  /** Paths relative to the backup directory, the database first. */
  files: string[];
  databaseBytes: number;
}

/**
 * Copies `dataDir` into `target`, which must not exist or be an empty directory. On any failure
 * the partial copy is removed again (when this call created it), so that a half backup is never
 * mistaken for a whole one.
 */
export function backupDataDir(dataDir: string, database: Database, target: string): BackupResult {
  const createdTarget = prepareTarget(target);
  try {
    const databaseCopy = join(target, DATABASE_FILE_NAME);
    // VACUUM INTO refuses an existing file; the target was checked empty above.
    database.run("VACUUM INTO ?", [databaseCopy]);
    chmodSync(databaseCopy, 0o600);
    checkIntegrity(databaseCopy);
    const files = [DATABASE_FILE_NAME, ...copyOtherFiles(dataDir, target, dataDir)];
    syncDirectory(target);
    return { directory: target, files, databaseBytes: statSync(databaseCopy).size };
  } catch (error) {
    if (createdTarget) rmSync(target, { recursive: true, force: true });
    else
      for (const entry of readdirSync(target)) rmSync(join(target, entry), { recursive: true, force: true });
    throw error;
  }
}

/** True when this call created `target`. */
function prepareTarget(target: string): boolean {
  let stats: ReturnType<typeof lstatSync>;
  try {
    stats = lstatSync(target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    mkdirSync(target, { mode: 0o700 });
    chmodSync(target, 0o700); // whatever the umask
    return true;
  }
  if (stats.isSymbolicLink()) throw new BackupError(`${target} is a symbolic link; give a directory`);
  if (!stats.isDirectory()) throw new BackupError(`${target} exists and is not a directory`);
  if (readdirSync(target).length > 0)
    throw new BackupError(
      `${target} is not empty; give a new or empty directory (a backup never overwrites)`,
    );
  chmodSync(target, 0o700);
  return false;
}

function checkIntegrity(path: string): void {
  const copy = new SqliteDatabase(path, { readonly: true, strict: true });
  try {
    const rows = copy.query("PRAGMA integrity_check").values() as [string][];
    const messages = rows.map((row) => row[0]);
    if (messages.length !== 1 || messages[0] !== "ok")
      throw new BackupError(`the copy of the database failed PRAGMA integrity_check: ${messages.join("; ")}`);
  } finally {
    copy.close();
  }
}

function copyOtherFiles(directory: string, target: string, root: string): string[] {
  const copied: string[] = [];
  for (const name of readdirSync(directory).sort()) {
    const source = join(directory, name);
    const relativePath = relative(root, source);
    if (directory === root && (DATABASE_FILES.has(name) || SET_ASIDE.test(name))) continue;
    if (name.startsWith(".") && name.endsWith(".tmp")) continue; // an atomic write in progress
    const stats = lstatSync(source);
    if (stats.isSymbolicLink())
      // regauth never follows links in its data directory (src/db/data-dir.ts); neither does a backup.
      throw new BackupError(
        `${source} is a symbolic link; regauth does not follow links in its data directory`,
      );
    if (stats.isDirectory()) {
      const subdirectory = join(target, name);
      mkdirSync(subdirectory, { mode: 0o700 });
      chmodSync(subdirectory, 0o700);
      copied.push(...copyOtherFiles(source, subdirectory, root));
      syncDirectory(subdirectory);
    } else if (stats.isFile()) {
      writePrivateFile(join(target, name), readFileSync(source), { exclusive: true });
      copied.push(relativePath);
    }
  }
  return copied;
}
