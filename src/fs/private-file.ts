/**
 * Writing the files regauth generates (signing key, certificate, refresh-token key) so that a
 * crash, a full disk or a planted file can never leave a half-written or foreign one in place
 * (issue 9, item 4; issue 8, L4): the bytes go to a new temporary file in the same directory,
 * created with O_EXCL (never an existing file, never through a symlink) and mode 0600, fsynced,
 * then moved to the name, and the directory is fsynced so that the name survives a power loss.
 * A failed write leaves neither the name nor the temporary file behind.
 */
import { randomBytes } from "node:crypto";
import {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fstatSync,
  fsyncSync,
  linkSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";

export interface PrivateFileOptions {
  /**
   * True: fail with EEXIST when the name exists (as a file, a directory or a symlink, which is
   * never followed); false: replace it atomically.
   */
  exclusive: boolean;
  /** Give the file to this owner (root writing into the service user's 0700 data directory). */
  owner?: { uid: number; gid: number } | null;
  /** 0600 unless given: the published bundle and JWKS are public (0644, issue 12 item 2). */
  mode?: number;
}

export function writePrivateFile(path: string, data: string | Uint8Array, options: PrivateFileOptions): void {
  const directory = dirname(path);
  const temporary = join(directory, `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  const bytes = typeof data === "string" ? Buffer.from(data) : data;
  // O_EXCL with O_CREAT fails on an existing name, symlinks included; O_NOFOLLOW says so twice.
  const fd = openSync(
    temporary,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    0o600,
  );
  const mode = options.mode ?? 0o600;
  try {
    try {
      fchmodSync(fd, mode); // whatever the umask
      if (options.owner) fchownSync(fd, options.owner.uid, options.owner.gid);
      for (let written = 0; written < bytes.length; )
        written += writeSync(fd, bytes, written, bytes.length - written);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (options.exclusive) {
      // link(2) fails with EEXIST if the name exists in any form and never follows a symlink.
      linkSync(temporary, path);
      unlinkSync(temporary);
    } else {
      renameSync(temporary, path);
    }
  } catch (error) {
    try {
      unlinkSync(temporary);
    } catch {
      // already moved, or never created
    }
    throw error;
  }
  syncDirectory(directory);
}

/**
 * Reads a file regauth wrote into its data directory (a key) without following a symlink
 * (O_NOFOLLOW: ELOOP, review finding 10) and without blocking on a planted FIFO (O_NONBLOCK).
 */
export function readPrivateFile(path: string): Buffer {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ELOOP")
      throw new Error(`${path} is a symbolic link; regauth does not follow links in its data directory`);
    throw error;
  }
  try {
    if (!fstatSync(fd).isFile()) throw new Error(`${path} is not a regular file`);
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** fsync of a directory makes a rename or a new name in it durable (rename(2) alone is not). */
export function syncDirectory(directory: string): void {
  const fd = openSync(directory, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
