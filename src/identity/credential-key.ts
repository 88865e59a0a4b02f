/**
 * The providers' refresh tokens (and GitHub's access tokens) are kept for the re-checks, and a
 * refresh token is worth more than a password at the provider: so the database holds them sealed
 * (AES-256-GCM) under 32 random bytes in `<data_dir>/identity-credentials.key` (0600, like
 * access-token.key). A copy of the database alone (a backup, a stolen file) gives no provider
 * credential; it takes the key file too. The link's id is the additional data: a sealed value
 * moved to another row does not open.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { dataDirOwnerToChownTo } from "../db/data-dir.ts";
import { writePrivateFile } from "../fs/private-file.ts";
import { log } from "../log.ts";

export const IDENTITY_KEY_FILE = "identity-credentials.key";
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const PREFIX = "v1.";

export class CredentialKey {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length < KEY_BYTES) throw new Error(`an identity credential key needs ${KEY_BYTES} bytes`);
    this.#key = key.subarray(0, KEY_BYTES);
  }

  static random(): CredentialKey {
    return new CredentialKey(randomBytes(KEY_BYTES));
  }

  seal(linkId: number, plain: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.#key, iv);
    cipher.setAAD(Buffer.from(`identity_links:${linkId}`));
    const sealed = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
    return `${PREFIX}${Buffer.concat([iv, sealed, cipher.getAuthTag()]).toString("base64url")}`;
  }

  /** The plain value, or null when it does not open (another key, another row, tampered). */
  open(linkId: number, sealed: string): string | null {
    if (!sealed.startsWith(PREFIX)) return null;
    const bytes = Buffer.from(sealed.slice(PREFIX.length), "base64url");
    if (bytes.length < IV_BYTES + TAG_BYTES) return null;
    try {
      const decipher = createDecipheriv("aes-256-gcm", this.#key, bytes.subarray(0, IV_BYTES));
      decipher.setAAD(Buffer.from(`identity_links:${linkId}`));
      decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
      return Buffer.concat([
        decipher.update(bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES)),
        decipher.final(),
      ]).toString("utf8");
    } catch {
      return null;
    }
  }
}

/** Reads the key from the data directory, creating it on first use (as ensureWebhookKey). */
export function ensureCredentialKey(dataDir: string): CredentialKey {
  const path = join(dataDir, IDENTITY_KEY_FILE);
  if (!existsSync(path)) {
    try {
      writePrivateFile(path, randomBytes(KEY_BYTES), {
        exclusive: true,
        owner: dataDirOwnerToChownTo(dataDir),
      });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
  }
  if (statSync(path).mode & 0o077)
    log.warn("identity credential key file is readable by group or others; chmod 600 it", { path });
  const key = readFileSync(path);
  if (key.length < KEY_BYTES)
    throw new Error(
      `${path} holds ${key.length} bytes, fewer than ${KEY_BYTES}; delete it to generate a new one (every linked person then signs in again at the next re-check)`,
    );
  return new CredentialKey(key);
}
