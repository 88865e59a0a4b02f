/**
 * Identical logins in flight share one answer. The login throttle admits a copy of an attempt
 * still being answered without charging it (a CI fan-out with one credential must not hit 429),
 * so the copy must not cost a back-end anything either: the password verifier and the hook cache
 * already merge identical work, but an LDAP bind does not, and 200 copies of one wrong password
 * would otherwise be 200 binds (and 200 strikes on the directory's own lockout counter).
 * Keys are HMACs under a per-process key; no password is kept.
 */
import { createHmac, randomBytes } from "node:crypto";
import type { Credentials } from "./authenticator.ts";

export class InFlightLogins<T> {
  private readonly hmacKey = randomBytes(32);
  private readonly pending = new Map<string, Promise<T>>();

  /** Runs `work` for these credentials, or joins the run already under way for the same ones. */
  run(credentials: Credentials, work: () => Promise<T>): Promise<T> {
    const key = createHmac("sha256", this.hmacKey)
      .update(`${Buffer.byteLength(credentials.username)}:${credentials.username}`)
      .update(credentials.password)
      .digest("base64");
    let answer = this.pending.get(key);
    if (!answer) {
      answer = work().finally(() => this.pending.delete(key));
      this.pending.set(key, answer);
    }
    return answer;
  }

  get size(): number {
    return this.pending.size;
  }
}
