/**
 * The stored login of `regauth login` (issue 10 item 5): `{url, token_id, token}` in
 * $XDG_CONFIG_HOME/regauth/credentials.json, else ~/.config/regauth/credentials.json. The token
 * is a password, so the file is 0600 in a 0700 directory, written atomically (a crash leaves the
 * old file or the new one, never half of one), and refused when others may read it, like ssh
 * refuses such a key.
 */
import { lstatSync, mkdirSync, readFileSync, unlinkSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { writePrivateFile } from "../fs/private-file.ts";
import { CommandFailed } from "./args.ts";

export interface StoredLogin {
  url: string;
  token_id: number;
  token: string;
}

/** Far more than any login needs; a bigger file is not ours. */
export const MAX_CREDENTIALS_BYTES = 64 * 1024;

export function credentialsPath(env: Record<string, string | undefined> = process.env): string {
  const xdg = env.XDG_CONFIG_HOME;
  // XDG Base Directory spec: a relative $XDG_CONFIG_HOME is invalid and ignored.
  const base = xdg !== undefined && xdg.startsWith("/") ? xdg : join(env.HOME || homedir(), ".config");
  return join(base, "regauth", "credentials.json");
}

/** The stored login, null when there is none; CommandFailed when the file is not one of ours. */
export function readStoredLogin(path: string): StoredLogin | null {
  let stat: ReturnType<typeof lstatSync>;
  try {
    stat = lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new CommandFailed(`cannot read ${path}: ${(error as Error).message}`);
  }
  const redo = `remove it and run regauth login URL again`;
  if (!stat.isFile()) throw new CommandFailed(`${path} is not a regular file; ${redo}`);
  if (stat.size > MAX_CREDENTIALS_BYTES)
    throw new CommandFailed(`${path} is too large (${stat.size} bytes) to be a regauth login; ${redo}`);
  if ((stat.mode & 0o077) !== 0)
    throw new CommandFailed(
      `${path} may be read by others (mode ${(stat.mode & 0o777).toString(8)}); it holds a token: ` +
        `chmod 600 ${path}, or revoke the token and log in again`,
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch {
    throw new CommandFailed(`${path} is not valid JSON; ${redo}`);
  }
  const login = parsed as Partial<StoredLogin> | null;
  if (
    login === null ||
    typeof login !== "object" ||
    Array.isArray(login) ||
    typeof login.url !== "string" ||
    typeof login.token !== "string" ||
    typeof login.token_id !== "number" ||
    !Number.isSafeInteger(login.token_id)
  )
    throw new CommandFailed(`${path} is not a regauth login (want {url, token_id, token}); ${redo}`);
  return { url: login.url, token_id: login.token_id, token: login.token };
}

/** Writes the login atomically, 0600 (src/fs/private-file.ts: temp file, fsync, rename, fsync of the directory). */
export function writeStoredLogin(path: string, login: StoredLogin): void {
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writePrivateFile(path, `${JSON.stringify(login, null, 2)}\n`, { exclusive: false });
  } catch (error) {
    throw new CommandFailed(`cannot write ${path}: ${(error as Error).message}`);
  }
}

/** True when there was a file to delete. */
export function deleteStoredLogin(path: string): boolean {
  try {
    unlinkSync(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw new CommandFailed(`cannot delete ${path}: ${(error as Error).message}`);
  }
}
