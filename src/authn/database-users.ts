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
import { findUser } from "../accounts/users.ts";
import { backgroundWriterFor } from "../db/background-writer.ts";
import { type Authenticator, type AuthnOutcome, DENY, NO_MATCH } from "./authenticator.ts";
import type { PasswordVerifier } from "./password-verifier.ts";

/** last_login_at_unix is written at most this often per user: logins stay read-only in between. */
export const LAST_LOGIN_RESOLUTION_SECONDS = 60;

/**
 * Records logins in last_login_at_unix, at most once per LAST_LOGIN_RESOLUTION_SECONDS per user,
 * through the database's background writer (src/db/background-writer.ts): a worker thread writes
 * them in batches, bounded, so that no token request waits for this write, not for a lock held
 * by another process nor for a frozen disk (issue 9, item 2).
 * Also used by refresh-token redemption (src/token/refresh-token.ts): a docker client that
 * stored an identity token never sends the password again.
 */
export function lastLoginRecorder(
  db: Database,
  nowSeconds: () => number,
): (userId: number, storedUnix: number) => void {
  const writer = backgroundWriterFor(db);
  const lastQueued = new Map<number, number>(); // user id → unix seconds we last queued
  return (userId, storedUnix) => {
    const now = nowSeconds();
    if (now - Math.max(storedUnix, lastQueued.get(userId) ?? 0) < LAST_LOGIN_RESOLUTION_SECONDS) return;
    if (lastQueued.size >= 100_000) lastQueued.clear();
    lastQueued.set(userId, now);
    // The statement of users.ts recordLogin, as data: it runs on the writer's thread.
    writer.enqueue({
      key: `last-login:${userId}`,
      sql: "UPDATE users SET last_login_at_unix = $now WHERE id = $id",
      params: { now, id: userId },
    });
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
    async authenticate({ username, password }): Promise<AuthnOutcome> {
      if (username === "") {
        return password === "" && hasPublicGrants(db) ? { kind: "allow", labels: {} } : NO_MATCH;
      }
      const user = findUser(db, username);
      if (!user) return NO_MATCH;
      if (user.kind === "robot") {
        // Robots have no password, only access tokens (issue 10 item 4): their hash '!' never
        // verifies, and no hash is checked; the dummy one keeps the answer as slow as a wrong
        // password's, so that robot names are not told apart by timing.
        await verifier.verifyDummy(password);
        return DENY;
      }
      // The same work for disabled users as for enabled ones; the reason is told only to a
      // client that proved the password.
      if (!(await verifier.verify(username, password, user.passwordHash))) return DENY;
      // Read again: the row may have changed while the hash was being checked.
      const current = findUser(db, username);
      if (!current || current.passwordHash !== user.passwordHash) return DENY;
      if (!current.isEnabled) {
        // Two states, two messages (issue 10): a registration waiting in approval mode, or an
        // account an administrator disabled (then nothing awaits approval).
        return {
          kind: "deny",
          reason: current.isPendingApproval
            ? `account ${username} is not active yet: it awaits approval by an administrator`
            : `account ${username} is disabled by an administrator`,
        };
      }
      noteLogin(current.id, current.lastLoginAtUnix);
      return { kind: "allow", labels: {} };
    },
  };
}
