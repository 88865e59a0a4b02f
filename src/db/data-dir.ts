/**
 * The data directory: whether regauth may trust it (issue 8, L4), and whether it holds a
 * previous installation (issue 9, item 3).
 *
 * Trust: everything in it is regauth's (the signing key, the accounts), so nobody else may be able
 * to add, replace or plant files in it. A directory writable by group or others is refused; so
 * is one owned by another user, except that root may work inside a 0700 directory of the
 * service's user (systemd DynamicUser + StateDirectory, `sudo regauth user add`) and hands the
 * files it creates there to that user.
 *
 * First run: only when the directory holds nothing of a previous run. A database that is missing
 * or empty next to keys, or keys missing next to a database, means something was lost; starting
 * over silently would drop every account or rotate the key every registry trusts.
 */
import { existsSync, lstatSync, readdirSync, readlinkSync, renameSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { readPrivateFile, writePrivateFile } from "../fs/private-file.ts";
import { log } from "../log.ts";
import { DatabaseError } from "./database-error.ts";

export const DATABASE_FILE_NAME = "regauth.db";
/** Files a previous run leaves (src/token/keys.ts, src/token/refresh-token.ts). */
const SIGNING_KEY_FILES = ["token.key", "token.crt"] as const;
const REFRESH_KEY_FILE = "refresh.key";

/** Null when regauth may use `dataDir`, else why not and what to do. */
export function dataDirTrustProblem(dataDir: string): string | null {
  const directory = statSync(dataDir);
  const mode = directory.mode & 0o7777;
  const modeText = mode.toString(8).padStart(4, "0");
  if (mode & 0o022)
    return `data directory ${dataDir} is writable by ${mode & 0o002 ? "everyone" : "its group"} (mode ${modeText}): others could plant or replace its keys and database; chmod 700 ${dataDir}`;
  const uid = process.geteuid?.() ?? process.getuid?.();
  if (uid === undefined || directory.uid === uid) return null;
  if (uid === 0) {
    if (mode & 0o077)
      return `data directory ${dataDir} belongs to user ${directory.uid} and is open to others (mode ${modeText}); as root regauth works only in a 0700 directory of the service's user (systemd StateDirectory): chmod 700 ${dataDir}, or chown it to root`;
    return null;
  }
  return `data directory ${dataDir} belongs to user ${directory.uid}, not to the user regauth runs as (${uid}); run regauth as its owner, or chown -R ${uid} ${dataDir}`;
}

/**
 * Whether root should hand a file it created in `dataDir` to the directory's owner: only inside
 * a 0700 directory of another user (the service's; see dataDirTrustProblem), never elsewhere.
 */
export function dataDirOwnerToChownTo(dataDir: string): { uid: number; gid: number } | null {
  if ((process.geteuid?.() ?? process.getuid?.()) !== 0) return null;
  const directory = statSync(dataDir);
  if (directory.uid === 0 || (directory.mode & 0o077) !== 0) return null;
  return { uid: directory.uid, gid: directory.gid };
}

function sizeOf(path: string): number | null {
  try {
    return lstatSync(path).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
}

export interface DataDirContents {
  /** The database file is missing, empty (0 bytes), or holds something. */
  database: "missing" | "empty" | "present";
  /** Which of token.key and token.crt, token-keys.json and token-N.key/.crt exist. */
  signingKeyFiles: string[];
  hasRefreshKey: boolean;
}

/** A rotated key's file, token-N.key or token-N.crt (src/token/key-set.ts); group 1 is N. */
export const ROTATED_KEY_FILE = /^token-([1-9][0-9]*)\.(key|crt)$/;
/** The key set's state (src/token/key-set.ts KEY_SET_FILE). */
export const KEY_ROTATION_STATE_FILE = "token-keys.json";

/** A rotation's files: token-keys.json and token-N.key/.crt. */
function rotationFiles(dataDir: string): string[] {
  try {
    return readdirSync(dataDir)
      .filter((name) => name === KEY_ROTATION_STATE_FILE || ROTATED_KEY_FILE.test(name))
      .sort();
  } catch {
    return [];
  }
}

export function inspectDataDir(dataDir: string): DataDirContents {
  const size = sizeOf(join(dataDir, DATABASE_FILE_NAME));
  return {
    database: size === null ? "missing" : size === 0 ? "empty" : "present",
    // A rotation's files prove a previous run as token.key does: with the database gone and only
    // they left, a start must not pass for a first run.
    signingKeyFiles: [
      ...SIGNING_KEY_FILES.filter((f) => sizeOf(join(dataDir, f)) !== null),
      ...rotationFiles(dataDir),
    ],
    hasRefreshKey: sizeOf(join(dataDir, REFRESH_KEY_FILE)) !== null,
  };
}

export const REINITIALIZE_HINT = "regauth serve --reinitialize";

/**
 * Problems that make `dataDir` neither a first run nor a whole installation, each naming what is
 * missing and how to restore it. `generatesSigningKey`: the config names no key, so token.key
 * and token.crt belong to the data directory.
 */
export function previousRunProblems(
  contents: DataDirContents,
  dataDir: string,
  generatesSigningKey: boolean,
): string[] {
  const problems: string[] = [];
  // refresh.key alone does not prove a lost database when the file is missing: regauth
  // registry-config of earlier versions created it (and no database) before the first start.
  const leftovers = [
    ...contents.signingKeyFiles,
    ...(contents.hasRefreshKey && contents.database === "empty" ? [REFRESH_KEY_FILE] : []),
  ];
  if (contents.database !== "present" && leftovers.length > 0) {
    const state = contents.database === "missing" ? "is missing" : "is empty (0 bytes)";
    problems.push(
      `${join(dataDir, DATABASE_FILE_NAME)} ${state}, but ${leftovers.join(", ")} in the same directory are from a previous run: the accounts would be lost. Restore ${DATABASE_FILE_NAME} from your backup (docs/deployment.md, Backups), or start over with a new, empty database and a new admin: ${REINITIALIZE_HINT}`,
    );
  }
  const hasFirstKey = contents.signingKeyFiles.some((f) => f === "token.key" || f === "token.crt");
  if (generatesSigningKey && contents.database === "present" && !hasFirstKey) {
    const rotated = contents.signingKeyFiles.length > 0;
    problems.push(
      rotated
        ? `token.key and token.crt are missing from ${dataDir}, which holds the accounts database of an existing installation and the rotation state ${contents.signingKeyFiles.join(", ")}. Restore both from your backup, or generate a new first pair with ${REINITIALIZE_HINT}: the rotated keys stay as they are (a current token-N key keeps signing), and the new pair signs only if no rotated key is current (then give every registry the new token-bundle.crt as rootcertbundle and restart it)`
        : `token.key and token.crt are missing from ${dataDir}, which holds the accounts database of an existing installation: every registry trusts that certificate. Restore both from your backup, or generate a new pair with ${REINITIALIZE_HINT} (then give every registry the new token-bundle.crt as rootcertbundle and restart it)`,
    );
  }
  return problems;
}

/**
 * --reinitialize on an empty or missing database: moves an empty database file and any journal
 * files aside (kept, never deleted), so that SQLite starts a new one.
 */
export function setAsideEmptyDatabase(dataDir: string, nowUnix: number): void {
  for (const suffix of ["", "-wal", "-shm"]) {
    const path = join(dataDir, `${DATABASE_FILE_NAME}${suffix}`);
    if (sizeOf(path) === null) continue;
    renameSync(path, `${path}.before-reinitialize-${nowUnix}`);
  }
}

/**
 * Null when regauth may open `path`, a file of the data directory (the database, its -wal and
 * -shm, the keys): missing, or a regular file owned by the directory's owner or by the user
 * regauth runs as. A symlink is refused (review finding 10: as root, `user add` followed a
 * planted regauth.db link and created a 0644 database holding password hashes where the service
 * user pointed it, or would have migrated any SQLite file there); so is another user's file.
 */
export function dataDirFileProblem(path: string): string | null {
  let stats: ReturnType<typeof lstatSync>;
  try {
    stats = lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
  if (stats.isSymbolicLink())
    return `${path} is a symbolic link (to ${readlinkSync(path)}); regauth does not follow links in its data directory, since whoever can write there could point it at any file: put the file itself there`;
  if (!stats.isFile()) return `${path} is not a regular file; move it away`;
  const uid = process.geteuid?.() ?? process.getuid?.();
  const directoryOwner = statSync(dirname(path)).uid;
  if (uid !== undefined && stats.uid !== uid && stats.uid !== directoryOwner)
    return `${path} belongs to user ${stats.uid}, neither the data directory's owner (${directoryOwner}) nor the user regauth runs as (${uid}): chown ${directoryOwner} ${path}, or remove it if you do not know where it came from`;
  return null;
}

export function throwIfUntrustedFile(path: string): void {
  const problem = dataDirFileProblem(path);
  if (problem) throw new DatabaseError(problem);
}

export function throwIfUntrusted(dataDir: string): void {
  const problem = dataDirTrustProblem(dataDir);
  if (problem) throw new DatabaseError(problem);
}

/**
 * A secret of the data directory (access-token.key, webhook-secret.key, notifications.secret):
 * read, or created on first use with `create()`'s bytes (0600, atomically, exclusively: of two
 * processes creating it at once, the second reads the first's). Never through a planted link nor
 * another user's file (review finding 10); a file others may read is used, with a warning.
 */
export function ensureDataDirSecret(
  dataDir: string,
  fileName: string,
  what: string,
  create: () => string | Uint8Array,
): Buffer {
  const path = join(dataDir, fileName);
  const problem = dataDirFileProblem(path);
  if (problem) throw new Error(problem);
  if (!existsSync(path)) {
    try {
      writePrivateFile(path, create(), { exclusive: true, owner: dataDirOwnerToChownTo(dataDir) });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
  }
  if (statSync(path).mode & 0o077) log.warn(`${what} is readable by group or others; chmod 600 it`, { path });
  return readPrivateFile(path);
}
