/**
 * `regauth backup DIR`: an online copy of the data directory (src/ops/backup.ts), taken while
 * serve runs. It reads the database through its own read-only connection, so it waits for no
 * writer and no writer waits for it (WAL).
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { DatabaseError, databasePath, openDatabaseReadOnly } from "../db/database.ts";
import { throwIfUntrusted } from "../db/data-dir.ts";
import type { LoadedConfig } from "../config/load.ts";
import { CommandFailed, type ParsedArgs, UsageError } from "./args.ts";

export const BACKUP_USAGE = `regauth backup DIR [--config FILE] [--data-dir DIR]

Copies the data directory into DIR, a new or empty directory, while regauth serves: the
database through SQLite (VACUUM INTO, a consistent snapshot, then PRAGMA integrity_check on
the copy), and every key file next to it. DIR is 0700, its files 0600: it holds the private
signing key and the password hashes.

To restore: stop regauth, put DIR in place of the data directory, start regauth
(docs/deployment.md, Backups). The config file, and any key it names outside the data
directory, are not part of the data directory: keep copies of them too.`;

export const BACKUP_VALUE_FLAGS = ["config", "data-dir"];

export async function backupCommand(
  args: ParsedArgs,
  load: (args: ParsedArgs) => Promise<LoadedConfig>,
): Promise<number> {
  const [target, ...extra] = args.positionals;
  if (target === undefined) throw new UsageError("where to? regauth backup DIR");
  if (extra.length > 0) throw new UsageError(`unexpected argument ${extra[0]}`);
  const loaded = await load(args);
  if (!existsSync(loaded.dataDir)) throw new CommandFailed(`no data directory at ${loaded.dataDir}`);
  throwIfUntrusted(loaded.dataDir);
  const { backupDataDir, BackupError } = await import("../ops/backup.ts");
  const database = openDatabaseReadOnly(databasePath(loaded.dataDir));
  try {
    const result = backupDataDir(loaded.dataDir, database, resolve(target));
    process.stdout.write(
      `backed up ${loaded.dataDir} to ${result.directory}: ${result.files.join(", ")} (database ${result.databaseBytes} bytes, integrity_check ok)\n`,
    );
    if (loaded.keyPaths && !loaded.keyPaths.inDataDir)
      process.stdout.write(
        `note: the signing key ${loaded.keyPaths.keyPath} is outside the data directory: back it up with the config\n`,
      );
    return 0;
  } catch (error) {
    if (error instanceof BackupError) throw new CommandFailed(error.message);
    if (error instanceof DatabaseError) throw error;
    throw new CommandFailed(`cannot write the backup: ${(error as Error).message}`);
  } finally {
    database.close();
  }
}
