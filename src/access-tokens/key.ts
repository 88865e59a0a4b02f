/**
 * The key access token secrets are hashed under: 32 random bytes in `<data_dir>/access-token.key`
 * (mode 0600, written atomically and exclusively, src/fs/private-file.ts). The database holds
 * only HMAC-SHA256(key, secret): a copy of the database alone (a backup, a stolen file) lets no
 * one test guesses offline, and a fast keyed hash is enough for 190-bit random secrets.
 * Serve and the offline CLI read the same file. Losing it makes every token unusable (they are
 * then deleted and created again); it never lets anyone in.
 */
import { createHmac, randomBytes } from "node:crypto";
import { join } from "node:path";
import { ensureDataDirSecret } from "../db/data-dir.ts";

export const ACCESS_TOKEN_KEY_FILE = "access-token.key";
const KEY_BYTES = 32;

export class AccessTokenKey {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length < KEY_BYTES) throw new Error(`an access token key needs ${KEY_BYTES} bytes`);
    this.#key = key;
  }

  /** What the database stores for `secret`. */
  digest(secret: string): Buffer {
    return createHmac("sha256", this.#key).update(secret).digest();
  }

  static random(): AccessTokenKey {
    return new AccessTokenKey(randomBytes(KEY_BYTES));
  }
}

/** Reads the key from the data directory, creating it on first use. */
export function ensureAccessTokenKey(dataDir: string): AccessTokenKey {
  const path = join(dataDir, ACCESS_TOKEN_KEY_FILE);
  const key = ensureDataDirSecret(dataDir, ACCESS_TOKEN_KEY_FILE, "access token key file", () =>
    randomBytes(KEY_BYTES),
  );
  if (key.length < KEY_BYTES)
    throw new Error(
      `${path} holds ${key.length} bytes, fewer than ${KEY_BYTES}; delete it to generate a new one (every access token then stops working)`,
    );
  return new AccessTokenKey(key);
}
