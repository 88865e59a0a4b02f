/**
 * Webhook signing secrets (docs/webhooks.md "Secrets"). A webhook made through the API or CLI has
 * secret = "whsec_" + base64url(HMAC-SHA256(key, nonce)), where the key is 32 random bytes in
 * `<data_dir>/webhook-secret.key` (0600, like access-token.key) and the nonce is random per
 * webhook, in the database. So the secret is shown once, at creation, yet serve can sign with it
 * for ever, and a copy of the database alone (a backup, a stolen file) reveals no secret: it
 * takes the key file too. A webhook declared in the config takes its secret from `secret_file`.
 */
import { createHmac, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ensureDataDirSecret } from "../db/data-dir.ts";

export const WEBHOOK_KEY_FILE = "webhook-secret.key";
const KEY_BYTES = 32;
export const NONCE_BYTES = 16;
/** Shortest secret a secret_file may hold. */
export const MIN_DECLARED_SECRET_BYTES = 16;

export class WebhookKey {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length < KEY_BYTES) throw new Error(`a webhook key needs ${KEY_BYTES} bytes`);
    this.#key = key;
  }

  /** The secret of the webhook whose nonce is `nonce`. */
  secretFor(nonce: Uint8Array): string {
    return `whsec_${createHmac("sha256", this.#key).update(nonce).digest("base64url")}`;
  }

  static random(): WebhookKey {
    return new WebhookKey(randomBytes(KEY_BYTES));
  }
}

export function newNonce(): Buffer {
  return randomBytes(NONCE_BYTES);
}

/** Reads the key from the data directory, creating it on first use (as ensureAccessTokenKey). */
export function ensureWebhookKey(dataDir: string): WebhookKey {
  const path = join(dataDir, WEBHOOK_KEY_FILE);
  const key = ensureDataDirSecret(dataDir, WEBHOOK_KEY_FILE, "webhook key file", () =>
    randomBytes(KEY_BYTES),
  );
  if (key.length < KEY_BYTES)
    throw new Error(
      `${path} holds ${key.length} bytes, fewer than ${KEY_BYTES}; delete it to generate a new one (every webhook's secret then changes)`,
    );
  return new WebhookKey(key);
}

/** A declared webhook's secret: the file's text less trailing whitespace; throws when too short. */
export function readDeclaredSecret(path: string): string {
  const secret = readFileSync(path, "utf8").replace(/\s+$/, "");
  if (Buffer.byteLength(secret) < MIN_DECLARED_SECRET_BYTES)
    throw new Error(`${path}: a webhook secret needs at least ${MIN_DECLARED_SECRET_BYTES} bytes`);
  return secret;
}
