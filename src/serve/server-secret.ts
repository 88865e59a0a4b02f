/**
 * Keys that must be the same in every worker (issue 17): what one process seals in a cookie or a
 * cursor, the next request's process, any of them, must open. Each is derived from one random
 * secret per server start, which the supervisor hands its workers over IPC (never argv or the
 * environment, which other tools print). A restart still makes a new one, as before.
 */
import { createHmac, randomBytes } from "node:crypto";

let secret: Buffer | null = null;
const derived = new Map<string, Buffer>();

/** This server's secret, made on first use: the supervisor's, which its workers are given. */
export function serverSecret(): Buffer {
  secret ??= randomBytes(32);
  return secret;
}

/** A worker takes the supervisor's secret, before anything derives a key. */
export function useServerSecret(given: Buffer): void {
  if (given.length !== 32) throw new Error("the server secret is 32 bytes");
  secret = given;
  derived.clear();
}

/** A 32-byte key for `purpose`, the same in every process of this server. */
export function serverKey(purpose: string): Buffer {
  let key = derived.get(purpose);
  if (key === undefined) {
    key = createHmac("sha256", serverSecret()).update(`regauth ${purpose}`).digest();
    derived.set(purpose, key);
  }
  return key;
}
