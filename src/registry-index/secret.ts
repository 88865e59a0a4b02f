/**
 * The secret the registry sends with every notification, as `Authorization: Bearer <secret>`
 * (`notifications.endpoints[].headers`, protocol_and_peers.md §C.1). By default 32 random bytes,
 * base64url, in `<data_dir>/notifications.secret` (0600, written atomically and exclusively like
 * access-token.key, src/fs/private-file.ts; `regauth backup` copies it with the other files);
 * or the operator's own file, `notifications.secret_file`. Never logged: `regauth
 * registry-config` prints it in the block to paste.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ensureDataDirSecret } from "../db/data-dir.ts";
import { ConfigError, type ConfigProblem } from "../errors.ts";

export const NOTIFICATIONS_SECRET_FILE = "notifications.secret";
const SECRET_BYTES = 32;
/** What a secret of the operator's must look like: it goes into an HTTP header and a YAML string. */
const SECRET_TEXT = /^[\x21-\x7e]{16,1024}$/;

/**
 * The secret: read from `secretFile` when given, else from the data directory, created there on
 * first use. Throws with the file and the problem when it is unreadable, a link, or too short.
 */
export function ensureNotificationSecret(dataDir: string, secretFile?: string): string {
  if (secretFile !== undefined) return readSecretFile(secretFile);
  const path = join(dataDir, NOTIFICATIONS_SECRET_FILE);
  const contents = ensureDataDirSecret(
    dataDir,
    NOTIFICATIONS_SECRET_FILE,
    "notifications secret file",
    () => `${randomBytes(SECRET_BYTES).toString("base64url")}\n`,
  );
  return checkedSecret(contents.toString("utf8"), path);
}

/** The operator's `notifications.secret_file`, checked; throws naming the file and the problem. */
function readSecretFile(secretFile: string): string {
  return checkedSecret(readFileSync(secretFile, "utf8"), secretFile);
}

function checkedSecret(contents: string, path: string): string {
  // One trailing newline (echo, an editor) is not part of the secret; nothing else is trimmed.
  const secret = contents.replace(/\r?\n$/, "");
  if (!SECRET_TEXT.test(secret))
    throw new Error(
      `${path}: the notifications secret must be 16 to 1024 printable ASCII characters without spaces (e.g. openssl rand -base64 32)`,
    );
  return secret;
}

/**
 * The config loader's check of `notifications.secret_file` (so that `regauth check-config` reports
 * what serve would refuse): the same read and message as loadNotificationSecret. Null: usable.
 */
export function notificationSecretFileProblem(secretFile: string): ConfigProblem | null {
  try {
    readSecretFile(secretFile);
    return null;
  } catch (error) {
    return {
      path: "notifications.secret_file",
      message: `notifications secret: ${(error as Error).message}`,
    };
  }
}

/** ensureNotificationSecret for serve and registry-config: a problem is a ConfigError naming the key. */
export function loadNotificationSecret(config: {
  dataDir: string;
  source: string;
  secretFile: string | undefined;
}): string {
  try {
    return ensureNotificationSecret(config.dataDir, config.secretFile);
  } catch (error) {
    throw new ConfigError(config.source, [
      {
        path: config.secretFile === undefined ? "data_dir" : "notifications.secret_file",
        message: `notifications secret: ${(error as Error).message}`,
      },
    ]);
  }
}
