/**
 * The database authenticator (accounts in SQLite, src/accounts/users.ts). The user's row is read
 * on every request (one indexed SELECT), so a disable or delete takes effect at once, also when
 * another process made it (the offline CLI); the PasswordVerifier's cache is keyed by the stored
 * hash, so a password change misses it at once.
 *
 * Anonymous clients (no credentials) are let through only when the database holds a public
 * grant: then they get a token with what the public grants allow; otherwise nothing changes for
 * configs that never mention anonymous users.
 */
import type { Database } from "bun:sqlite";
import { hasPublicGrants } from "../accounts/permissions.ts";
import { findUser, recordLogin } from "../accounts/users.ts";
import { BUSY_TIMEOUT_MS } from "../db/database.ts";
import { log } from "../log.ts";
import { type Authenticator, type AuthnOutcome, DENY, NO_MATCH } from "./authenticator.ts";
import type { PasswordVerifier } from "./password-verifier.ts";

/** last_login_at_unix is written at most this often per user: logins stay read-only in between. */
export const LAST_LOGIN_RESOLUTION_SECONDS = 60;

/**
 * Records logins in last_login_at_unix, at most once per LAST_LOGIN_RESOLUTION_SECONDS per user,
 * after the response. Also used by refresh-token redemption (src/token/refresh-token.ts): a
 * docker client that stored an identity token never sends the password again.
 */
export function lastLoginRecorder(
  db: Database,
  nowSeconds: () => number,
): (userId: number, storedUnix: number) => void {
  const lastWritten = new Map<number, number>(); // user id → unix seconds we last wrote
  return (userId, storedUnix) => {
    const now = nowSeconds();
    if (now - Math.max(storedUnix, lastWritten.get(userId) ?? 0) < LAST_LOGIN_RESOLUTION_SECONDS) return;
    lastWritten.set(userId, now);
    if (lastWritten.size > 100_000) lastWritten.clear();
    // After the response: never wait for a lock here (bun:sqlite is synchronous), skip instead.
    setTimeout(() => {
      try {
        db.run("PRAGMA busy_timeout = 0");
        recordLogin(db, userId, now);
      } catch (error) {
        log.debug("last login not recorded", { error: (error as Error).message });
      } finally {
        db.run(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
      }
    }, 0);
  };
}

export function databaseUsersAuthenticator(
  db: Database,
  verifier: PasswordVerifier,
  nowSeconds: () => number = () => Math.floor(Date.now() / 1000),
): Authenticator {
  const noteLogin = lastLoginRecorder(db, nowSeconds);

  return {
    name: "database",
    async authenticate({ username, password }, context): Promise<AuthnOutcome> {
      if (username === "") {
        return password === "" && hasPublicGrants(db) ? { kind: "allow", labels: {} } : NO_MATCH;
      }
      const user = findUser(db, username);
      if (!user) return NO_MATCH;
      // The same work for disabled users as for enabled ones; the reason is told only to a
      // client that proved the password.
      if (!(await verifier.verify(username, password, user.passwordHash, context))) return DENY;
      // Read again: the row may have changed while the hash was being checked.
      const current = findUser(db, username);
      if (!current || current.passwordHash !== user.passwordHash) return DENY;
      if (!current.isEnabled) {
        return {
          kind: "deny",
          reason: `account ${username} is disabled: it awaits approval by an administrator`,
        };
      }
      noteLogin(current.id, current.lastLoginAtUnix);
      return { kind: "allow", labels: {} };
    },
  };
}
