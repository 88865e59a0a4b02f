/**
 * Web interface sessions (issue 14 item 4; docs/web.md "Security model"). Plain functions over
 * the database: the id is 32 random bytes (256 bits, base64url) given to the browser once, and
 * only its SHA-256 is stored. A session ends at sign-out, after `idleSeconds` unused, after
 * `maxSeconds` from sign-in, and at once when its database account is deleted, disabled or gets
 * a new password (users.credential_epoch moves; src/accounts/users.ts).
 */
import type { Database } from "bun:sqlite";
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";

export interface SessionLimits {
  idleSeconds: number;
  maxSeconds: number;
}

export interface Session {
  account: string;
  authenticator: string;
  /** The database account, or null for config users, LDAP and the other back-ends. */
  userId: number | null;
  createdAtUnix: number;
  /** Proves a form came from a page of this session (synchronizer token); derived, never stored. */
  csrfToken: string;
}

interface SessionRow {
  account: string;
  authenticator: string;
  user_id: number | null;
  credential_epoch: number;
  created_at_unix: number;
  last_seen_at_unix: number;
  current_epoch: number | null;
  is_enabled: number | null;
}

/** A session id never touches a write more than once a minute (last_seen): reads stay reads. */
const TOUCH_INTERVAL_SECONDS = 60;
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;

/**
 * Live sessions one account may hold (browsers, devices); a sign-in beyond it ends the oldest.
 * Without a bound, a script with a valid password fills web_sessions with rows that live
 * session_max_hours (each sign-in only prunes expired ones): the table grows with the rate of
 * sign-ins, not with people (review of issue 14, "resource use").
 */
export const MAX_SESSIONS_PER_ACCOUNT = 20;

function hashOf(id: string): string {
  return createHash("sha256").update(id).digest("hex");
}

/** HMAC keyed by the session id itself: only the holder of the cookie can compute it. */
export function csrfTokenOf(sessionId: string): string {
  return createHmac("sha256", sessionId).update("regauth web csrf").digest("base64url");
}

/** Constant-time comparison of a submitted token with the expected one. */
export function csrfTokenMatches(expected: string, submitted: string | null): boolean {
  if (submitted === null) return false;
  const a = createHash("sha256").update(expected).digest();
  const b = createHash("sha256").update(submitted).digest();
  return timingSafeEqual(a, b) && expected.length === submitted.length;
}

export interface NewSession {
  account: string;
  authenticator: string;
  userId: number | null;
  credentialEpoch: number;
  nowUnix: number;
  ip: string;
}

/** Stores a new session and returns its id, for the cookie only. */
export function createSession(db: Database, input: NewSession): string {
  const id = randomBytes(32).toString("base64url");
  db.query(
    `INSERT INTO web_sessions (id_hash, account, authenticator, user_id, credential_epoch,
       created_at_unix, last_seen_at_unix, ip)
     VALUES ($idHash, $account, $authenticator, $userId, $epoch, $now, $now, $ip)`,
  ).run({
    idHash: hashOf(id),
    account: input.account,
    authenticator: input.authenticator,
    userId: input.userId,
    epoch: input.credentialEpoch,
    now: input.nowUnix,
    ip: input.ip,
  });
  // The newest row has the highest rowid (SQLite gives a new row max(rowid) + 1).
  db.query(
    `DELETE FROM web_sessions WHERE account = $account AND authenticator = $authenticator
       AND rowid <= (SELECT rowid FROM web_sessions WHERE account = $account AND authenticator = $authenticator
                     ORDER BY rowid DESC LIMIT 1 OFFSET $keep)`,
  ).run({ account: input.account, authenticator: input.authenticator, keep: MAX_SESSIONS_PER_ACCOUNT });
  return id;
}

/**
 * The live session with this id, or null (unknown, malformed, expired, or its account deleted,
 * disabled or its password changed; such a row is deleted on the way).
 */
export function findSession(
  db: Database,
  id: string,
  nowUnix: number,
  limits: SessionLimits,
): Session | null {
  if (!SESSION_ID.test(id)) return null;
  const idHash = hashOf(id);
  const row = db
    .query<SessionRow, [string]>(
      `SELECT s.account, s.authenticator, s.user_id, s.credential_epoch, s.created_at_unix,
              s.last_seen_at_unix, u.credential_epoch AS current_epoch, u.is_enabled
       FROM web_sessions s LEFT JOIN users u ON u.id = s.user_id
       WHERE s.id_hash = ?`,
    )
    .get(idHash);
  if (!row) return null;
  const ended =
    nowUnix - row.last_seen_at_unix >= limits.idleSeconds ||
    nowUnix - row.created_at_unix >= limits.maxSeconds ||
    (row.user_id !== null &&
      (row.current_epoch === null || row.current_epoch !== row.credential_epoch || row.is_enabled !== 1));
  if (ended) {
    db.query("DELETE FROM web_sessions WHERE id_hash = ?").run(idHash);
    return null;
  }
  if (nowUnix - row.last_seen_at_unix >= TOUCH_INTERVAL_SECONDS)
    db.query("UPDATE web_sessions SET last_seen_at_unix = ? WHERE id_hash = ?").run(nowUnix, idHash);
  return {
    account: row.account,
    authenticator: row.authenticator,
    userId: row.user_id,
    createdAtUnix: row.created_at_unix,
    csrfToken: csrfTokenOf(id),
  };
}

/** Ends one session (sign-out); an unknown id is no error. */
export function deleteSession(db: Database, id: string): void {
  if (SESSION_ID.test(id)) db.query("DELETE FROM web_sessions WHERE id_hash = ?").run(hashOf(id));
}

/** Deletes sessions past either limit; returns how many. */
export function pruneSessions(db: Database, nowUnix: number, limits: SessionLimits): number {
  return db
    .query("DELETE FROM web_sessions WHERE last_seen_at_unix <= ? OR created_at_unix <= ?")
    .run(nowUnix - limits.idleSeconds, nowUnix - limits.maxSeconds).changes;
}
