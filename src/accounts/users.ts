/**
 * Database users: names, password hashes, enabled and admin flags, login times. Plain functions
 * over a Database handle; failures are AppErrors whose messages are written for the person at
 * the CLI (or, for registration, for the `docker login` user).
 */
import type { Database } from "bun:sqlite";
import { BadRequest, Conflict, NotFound } from "../errors.ts";

export type AccountKind = "person" | "robot";

export interface User {
  id: number;
  name: string;
  /** Robots (src/robots/) have no password, only access tokens, and never a personal namespace. */
  kind: AccountKind;
  passwordHash: string;
  isAdmin: boolean;
  isEnabled: boolean;
  /** A registration in approval mode not yet approved (disabled, but not by an administrator). */
  isPendingApproval: boolean;
  /**
   * Moves on disable and password change; refresh tokens carry a MAC over it
   * (src/token/refresh-token.ts), so those changes revoke them for good.
   */
  credentialEpoch: number;
  createdAtUnix: number;
  /** 0 when the user never logged in. */
  lastLoginAtUnix: number;
}

interface UserRow {
  id: number;
  name: string;
  kind: AccountKind;
  password_hash: string;
  is_admin: number;
  is_enabled: number;
  is_pending_approval: number;
  credential_epoch: number;
  created_at_unix: number;
  last_login_at_unix: number;
}

export const MAX_USERNAME_LENGTH = 64;
export const MIN_PASSWORD_LENGTH = 8;
/** Longer passwords are refused: argon2 and bcrypt cost is per byte for the former, truncating for the latter. */
export const MAX_PASSWORD_LENGTH = 256;

/**
 * Account names as registries use them in repository paths (distribution's reference grammar,
 * path-component: lowercase alphanumerics and separators): ASCII only, so fullwidth or Cyrillic
 * look-alikes ("аdmin" with a Cyrillic а) can never pass for another user.
 */
const USERNAME = /^[a-z0-9][a-z0-9._-]*$/;

/** Null when `name` is a valid account name, else why not. */
export function usernameProblem(name: string): string | null {
  if (name === "") return "the name is empty";
  if (name.length > MAX_USERNAME_LENGTH) return `the name is longer than ${MAX_USERNAME_LENGTH} characters`;
  if (/[^\x21-\x7e]/.test(name))
    return "the name may contain only ASCII lowercase letters, digits, '.', '_' and '-' (no spaces, no look-alike Unicode)";
  if (!USERNAME.test(name))
    return "the name must start with a lowercase letter or digit and contain only lowercase letters, digits, '.', '_' and '-'";
  return null;
}

export function checkUsername(name: string): void {
  const problem = usernameProblem(name);
  if (problem) throw new BadRequest(`invalid user name ${JSON.stringify(name)}: ${problem}`);
}

const CONTROL_CHARACTER = /\p{Cc}/u;

export function passwordProblem(password: string): string | null {
  if (password.length < MIN_PASSWORD_LENGTH)
    return `the password must have at least ${MIN_PASSWORD_LENGTH} characters`;
  if (password.length > MAX_PASSWORD_LENGTH)
    return `the password must have at most ${MAX_PASSWORD_LENGTH} characters`;
  // Control characters cannot be typed at a `docker login` prompt, and ext_auth programs (`read
  // u p`) cannot receive them: such a password only ever comes from a script probing the chain.
  if (CONTROL_CHARACTER.test(password)) return "the password must not contain control characters";
  return null;
}

export function checkPassword(password: string): void {
  const problem = passwordProblem(password);
  if (problem) throw new BadRequest(problem);
}

/**
 * argon2id with one of OWASP's equivalent minimum settings (Password Storage Cheat Sheet: 19 MiB
 * and 2 passes, or 12 MiB and 3 passes, 1 lane). We take the smaller memory: a burst of logins
 * on a small home server measured ~14 MiB lower peak RSS, for the same resistance. The
 * PasswordVerifier's concurrency limit bounds how many run at once.
 */
export const ARGON2ID_OPTIONS = { algorithm: "argon2id", memoryCost: 12_288, timeCost: 3 } as const;

export function hashNewPassword(password: string): Promise<string> {
  return Bun.password.hash(password, ARGON2ID_OPTIONS);
}

let dummyHash: string | undefined;

/** An argon2id hash (same parameters as real ones) of a random password, made once per process. */
export function dummyArgon2idHash(): string {
  dummyHash ??= Bun.password.hashSync(crypto.randomUUID(), ARGON2ID_OPTIONS);
  return dummyHash;
}

function toUser(row: UserRow): User {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    passwordHash: row.password_hash,
    isAdmin: row.is_admin === 1,
    isEnabled: row.is_enabled === 1,
    isPendingApproval: row.is_pending_approval === 1,
    credentialEpoch: row.credential_epoch,
    createdAtUnix: row.created_at_unix,
    lastLoginAtUnix: row.last_login_at_unix,
  };
}

export function findUser(db: Database, name: string): User | null {
  const row = db.query<UserRow, [string]>("SELECT * FROM users WHERE name = ?").get(name);
  return row ? toUser(row) : null;
}

export function getUser(db: Database, name: string): User {
  const user = findUser(db, name);
  if (!user) throw new NotFound(`no user ${JSON.stringify(name)}`);
  return user;
}

/** People only: robot accounts are listed apart (src/robots/ listRobots). */
export function listUsers(db: Database): User[] {
  return db.query<UserRow, []>("SELECT * FROM users WHERE kind = 'person' ORDER BY name").all().map(toUser);
}

export interface NewUser {
  name: string;
  passwordHash: string;
  isAdmin?: boolean;
  isEnabled?: boolean;
  /** Registration in approval mode: disabled until `regauth user enable`, and told so. */
  isPendingApproval?: boolean;
  nowUnix: number;
}

/**
 * Creates a user; Conflict when the name is taken (also by a concurrent registration) or
 * retired (a deleted user's name, until `regauth user release NAME`). The check and the insert
 * are one statement, so a release or delete in another process cannot slip between them.
 */
export function createUser(db: Database, user: NewUser): User {
  checkUsername(user.name);
  const pending = user.isPendingApproval === true;
  const row = db
    .query<UserRow, Record<string, string | number>>(
      `INSERT INTO users (name, password_hash, is_admin, is_enabled, is_pending_approval, created_at_unix)
       SELECT $name, $hash, $admin, $enabled, $pending, $now
       WHERE NOT EXISTS (SELECT 1 FROM retired_names WHERE name = $name)
       ON CONFLICT (name) DO NOTHING RETURNING *`,
    )
    .get({
      name: user.name,
      hash: user.passwordHash,
      admin: user.isAdmin ? 1 : 0,
      enabled: user.isEnabled === false || pending ? 0 : 1,
      pending: pending ? 1 : 0,
      now: user.nowUnix,
    });
  if (row) return toUser(row);
  const retired = retiredName(db, user.name);
  if (retired) {
    throw new Conflict(
      `the name ${user.name} belonged to a deleted user (retired ${new Date(retired.retiredAtUnix * 1000).toISOString().replace(/\.000Z$/, "Z")}): ` +
        `whoever gets it also gets ${user.name}/* and every image the old account left there. ` +
        `If that is what you want, run \`regauth user release ${user.name}\` first`,
    );
  }
  throw new Conflict(`user ${JSON.stringify(user.name)} already exists`);
}

function updateOne(db: Database, name: string, sql: string, values: Record<string, string | number>): void {
  const result = db.query(sql).run({ ...values, name });
  if (result.changes === 0) throw new NotFound(`no user ${JSON.stringify(name)}`);
}

/** Also moves the credential epoch: every refresh token of the account stops working. */
export function setPasswordHash(db: Database, name: string, passwordHash: string): void {
  updateOne(
    db,
    name,
    "UPDATE users SET password_hash = $hash, credential_epoch = credential_epoch + 1 WHERE name = $name",
    { hash: passwordHash },
  );
}

/**
 * Enabling approves a pending registration. Disabling is an administrator's decision (the
 * account is told "disabled", not "awaits approval") and moves the credential epoch, so the
 * account's refresh tokens stay revoked when it is enabled again (docs/refresh-tokens.md).
 */
export function setEnabled(db: Database, name: string, enabled: boolean): void {
  updateOne(
    db,
    name,
    enabled
      ? "UPDATE users SET is_enabled = 1, is_pending_approval = 0 WHERE name = $name"
      : "UPDATE users SET is_enabled = 0, is_pending_approval = 0, credential_epoch = credential_epoch + 1 WHERE name = $name",
    {},
  );
}

/** Robots are never administrators: for them this is NotFound, as for any name that is no person. */
export function setAdmin(db: Database, name: string, admin: boolean): void {
  updateOne(db, name, "UPDATE users SET is_admin = $admin WHERE name = $name AND kind = 'person'", {
    admin: admin ? 1 : 0,
  });
}

/**
 * Deletes the user; their grants and group memberships go with them (ON DELETE CASCADE). The
 * name is retired in the same transaction (issue 8 M1): the registry still holds the images
 * under NAME/*, and whoever got the name next would own them. `releaseName` frees it.
 */
export function deleteUser(db: Database, name: string, nowUnix = Math.floor(Date.now() / 1000)): void {
  db.transaction(() => {
    updateOne(db, name, "DELETE FROM users WHERE name = $name", {});
    db.query(
      `INSERT INTO retired_names (name, retired_at_unix) VALUES ($name, $now)
       ON CONFLICT (name) DO UPDATE SET retired_at_unix = excluded.retired_at_unix`,
    ).run({ name, now: nowUnix });
  }).immediate();
}

export interface RetiredName {
  name: string;
  retiredAtUnix: number;
}

interface RetiredNameRow {
  name: string;
  retired_at_unix: number;
}

function toRetiredName(row: RetiredNameRow): RetiredName {
  return { name: row.name, retiredAtUnix: row.retired_at_unix };
}

/** The tombstone of a deleted user's name, or null when the name was never retired or is released. */
export function retiredName(db: Database, name: string): RetiredName | null {
  const row = db
    .query<RetiredNameRow, [string]>("SELECT name, retired_at_unix FROM retired_names WHERE name = ?")
    .get(name);
  return row ? toRetiredName(row) : null;
}

export function listRetiredNames(db: Database): RetiredName[] {
  return db
    .query<RetiredNameRow, []>("SELECT name, retired_at_unix FROM retired_names ORDER BY name")
    .all()
    .map(toRetiredName);
}

/** Makes a retired name available again, to registration and to `regauth user add`. */
export function releaseName(db: Database, name: string): void {
  const result = db.query("DELETE FROM retired_names WHERE name = $name").run({ name });
  if (result.changes === 0) throw new NotFound(`${JSON.stringify(name)} is not a retired name`);
}

export function recordLogin(db: Database, userId: number, nowUnix: number): void {
  db.query("UPDATE users SET last_login_at_unix = $now WHERE id = $id").run({ now: nowUnix, id: userId });
}
