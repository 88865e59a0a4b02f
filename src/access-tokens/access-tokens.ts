/**
 * Access tokens (issue 10 item 3; docs/access-tokens.md): named, revocable credentials of a
 * person or a robot, with scopes, repository patterns and an optional expiry. Plain functions
 * over a Database handle; the management layer (src/management/) decides who may call them.
 * Every field is validated here, whatever the caller checked before: this is the boundary the
 * API, the CLI and tests share.
 */
import type { Database, Statement } from "bun:sqlite";
import { checkPattern } from "../accounts/permissions.ts";
import type { AccountKind } from "../accounts/users.ts";
import { BadRequest, Conflict, NotFound } from "../errors.ts";
import type { AccessTokenKey } from "./key.ts";
import { closeScopes, isTokenScope, TOKEN_SCOPES, type TokenScope } from "./scopes.ts";
import { generateAccessTokenSecret } from "./secret.ts";

export type { TokenScope } from "./scopes.ts";

export interface AccessToken {
  id: number;
  owner: string;
  ownerKind: AccountKind;
  name: string;
  scopes: TokenScope[];
  repositoryPatterns: string[];
  createdAtUnix: number;
  /** Null: never expires. */
  expiresAtUnix: number | null;
  /** 0 when never used. */
  lastUsedAtUnix: number;
  lastUsedIp: string;
}

export interface NewAccessToken {
  /** The owner's account name (a person or a robot). */
  owner: string;
  name: string;
  scopes: TokenScope[];
  repositoryPatterns: string[];
  expiresAtUnix: number | null;
  nowUnix: number;
  /** `access_tokens.max_lifetime_days`: when set, an expiry is required and bounded by it. */
  maxLifetimeDays?: number | null;
}

export const MAX_TOKEN_NAME_LENGTH = 64;
export const MAX_REPOSITORY_PATTERNS = 32;
/** 9999-12-31T23:59:59Z: later expiries cannot be written as RFC 3339 and mean "never" anyway. */
export const LATEST_EXPIRY_UNIX = 253_402_300_799;
/** Printable ASCII, no leading or trailing space: "ci", "regauth-cli@laptop", "laptop (backup)". */
const TOKEN_NAME = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

interface TokenRow {
  id: number;
  owner: string;
  owner_kind: AccountKind;
  name: string;
  scopes: string;
  repository_patterns: string;
  created_at_unix: number;
  expires_at_unix: number | null;
  last_used_at_unix: number;
  last_used_ip: string;
}

const SELECT_TOKENS = `SELECT t.id, u.name AS owner, u.kind AS owner_kind, t.name, t.scopes, t.repository_patterns,
  t.created_at_unix, t.expires_at_unix, t.last_used_at_unix, t.last_used_ip
  FROM access_tokens t JOIN users u ON u.id = t.user_id`;

function toAccessToken(row: TokenRow): AccessToken {
  return {
    id: row.id,
    owner: row.owner,
    ownerKind: row.owner_kind,
    name: row.name,
    scopes: JSON.parse(row.scopes) as TokenScope[],
    repositoryPatterns: JSON.parse(row.repository_patterns) as string[],
    createdAtUnix: row.created_at_unix,
    expiresAtUnix: row.expires_at_unix,
    lastUsedAtUnix: row.last_used_at_unix,
    lastUsedIp: row.last_used_ip,
  };
}

export function tokenNameProblem(name: unknown): string | null {
  if (typeof name !== "string") return "the token name must be a string";
  if (name.length === 0) return "the token name is empty";
  if (name.length > MAX_TOKEN_NAME_LENGTH)
    return `the token name is longer than ${MAX_TOKEN_NAME_LENGTH} characters`;
  if (!TOKEN_NAME.test(name))
    return "the token name may contain printable ASCII characters only, and no leading or trailing space";
  return null;
}

/** The stored scopes: known ones only, at least one, closed under implication (push adds pull, ...). */
export function normaliseScopes(scopes: unknown): TokenScope[] {
  if (!Array.isArray(scopes)) throw new BadRequest("scopes must be a list");
  if (scopes.length === 0) throw new BadRequest(`give at least one scope: ${TOKEN_SCOPES.join(", ")}`);
  if (scopes.length > TOKEN_SCOPES.length * 2) throw new BadRequest("too many scopes");
  for (const scope of scopes) {
    if (!isTokenScope(scope))
      throw new BadRequest(
        `unknown scope ${JSON.stringify(String(scope)).slice(0, 80)}; scopes are ${TOKEN_SCOPES.join(", ")}`,
      );
  }
  return closeScopes(scopes as TokenScope[]);
}

export function normalisePatterns(patterns: unknown): string[] {
  if (!Array.isArray(patterns)) throw new BadRequest("repository_patterns must be a list");
  if (patterns.length === 0)
    throw new BadRequest(
      "give at least one repository pattern (team/app, team/*, or * for every repository)",
    );
  if (patterns.length > MAX_REPOSITORY_PATTERNS)
    throw new BadRequest(`at most ${MAX_REPOSITORY_PATTERNS} repository patterns`);
  for (const pattern of patterns) {
    if (typeof pattern !== "string") throw new BadRequest("repository patterns must be strings");
    checkPattern(pattern);
  }
  return [...new Set(patterns as string[])];
}

export function checkExpiry(
  expiresAtUnix: unknown,
  nowUnix: number,
  maxLifetimeDays: number | null | undefined,
): number | null {
  const max = maxLifetimeDays ?? null;
  if (expiresAtUnix === null || expiresAtUnix === undefined) {
    if (max !== null)
      throw new BadRequest(
        `give the token an expiry: the server allows at most ${max} days (access_tokens.max_lifetime_days)`,
      );
    return null;
  }
  if (typeof expiresAtUnix !== "number" || !Number.isSafeInteger(expiresAtUnix))
    throw new BadRequest(
      "the expiry must be a whole number of seconds since 1970 (or an RFC 3339 time in the API)",
    );
  if (expiresAtUnix <= nowUnix) throw new BadRequest("the expiry is in the past");
  if (expiresAtUnix > LATEST_EXPIRY_UNIX)
    throw new BadRequest("the expiry is after the year 9999; leave it out for a token that never expires");
  if (max !== null && expiresAtUnix > nowUnix + max * 86_400)
    throw new BadRequest(`the expiry is more than ${max} days away (access_tokens.max_lifetime_days)`);
  return expiresAtUnix;
}

/** Creates a token; returns it and its secret, which is shown once and never stored. */
export function createAccessToken(
  db: Database,
  key: AccessTokenKey,
  input: NewAccessToken,
): { token: AccessToken; secret: string } {
  const nameProblem = tokenNameProblem(input.name);
  if (nameProblem) throw new BadRequest(nameProblem);
  const scopes = normaliseScopes(input.scopes);
  const patterns = normalisePatterns(input.repositoryPatterns);
  const expiresAtUnix = checkExpiry(input.expiresAtUnix, input.nowUnix, input.maxLifetimeDays);
  const owner = db
    .query<{ id: number; kind: AccountKind }, [string]>("SELECT id, kind FROM users WHERE name = ?")
    .get(String(input.owner));
  if (!owner) throw new NotFound(`no account ${JSON.stringify(String(input.owner)).slice(0, 100)}`);
  // Robots are CI credentials for the registry; the management API is for people (design §3).
  if (owner.kind === "robot" && scopes.includes("api"))
    throw new BadRequest("robot tokens cannot have the api scope");
  const secret = generateAccessTokenSecret();
  const row = db
    .query<{ id: number }, Record<string, string | number | null | Uint8Array>>(
      `INSERT INTO access_tokens (user_id, name, scopes, repository_patterns, secret_hmac, created_at_unix, expires_at_unix)
       VALUES ($userId, $name, $scopes, $patterns, $hmac, $now, $expires)
       ON CONFLICT (user_id, name) DO NOTHING RETURNING id`,
    )
    .get({
      userId: owner.id,
      name: input.name,
      scopes: JSON.stringify(scopes),
      patterns: JSON.stringify(patterns),
      hmac: key.digest(secret),
      now: input.nowUnix,
      expires: expiresAtUnix,
    });
  if (!row) throw new Conflict(`${input.owner} already has a token named ${JSON.stringify(input.name)}`);
  return { token: getAccessToken(db, row.id), secret };
}

export function listAccessTokens(
  db: Database,
  filter: { owner?: string; ownerId?: number } = {},
): AccessToken[] {
  const where: string[] = [];
  const params: Record<string, string | number> = {};
  if (filter.owner !== undefined) {
    where.push("u.name = $owner");
    params.owner = filter.owner;
  }
  if (filter.ownerId !== undefined) {
    where.push("u.id = $ownerId");
    params.ownerId = filter.ownerId;
  }
  return db
    .query<TokenRow, Record<string, string | number>>(
      `${SELECT_TOKENS} ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY u.name, t.name`,
    )
    .all(params)
    .map(toAccessToken);
}

export function findAccessToken(db: Database, id: number): AccessToken | null {
  if (!Number.isSafeInteger(id)) return null;
  const row = db.query<TokenRow, [number]>(`${SELECT_TOKENS} WHERE t.id = ?`).get(id);
  return row ? toAccessToken(row) : null;
}

export function getAccessToken(db: Database, id: number): AccessToken {
  const token = findAccessToken(db, id);
  if (!token) throw new NotFound(`no access token ${JSON.stringify(id)}`);
  return token;
}

/** Revokes a token at once: the next request with its secret is a 401. Returns what was deleted. */
export function deleteAccessToken(db: Database, id: number): AccessToken {
  return db
    .transaction(() => {
      const token = getAccessToken(db, id);
      db.query("DELETE FROM access_tokens WHERE id = ?").run(id);
      return token;
    })
    .immediate();
}

/** The hot path's look-up: one indexed SELECT by the secret's HMAC, with the owner's state. */
export interface TokenCredential {
  id: number;
  scopes: TokenScope[];
  repositoryPatterns: string[];
  expiresAtUnix: number | null;
  lastUsedAtUnix: number;
  ownerId: number;
  owner: string;
  ownerKind: AccountKind;
  ownerEnabled: boolean;
  ownerPendingApproval: boolean;
  ownerLastLoginAtUnix: number;
}

/**
 * Two primary-key probes rather than one JOIN: measured on bun:sqlite, the JOIN costs several
 * times the two look-ups (scripts/bench.ts "access token, one client repeating"). A token
 * whose owner was deleted in between is not found, as after the delete.
 */
interface TokenLookupRow {
  id: number;
  user_id: number;
  scopes: string;
  repository_patterns: string;
  expires_at_unix: number | null;
  last_used_at_unix: number;
}
interface OwnerLookupRow {
  name: string;
  kind: AccountKind;
  is_enabled: number;
  is_pending_approval: number;
  last_login_at_unix: number;
}

/** Prepared once per handle: on the hot path, db.query's cache look-up costs more than the probe. */
const lookups = new WeakMap<
  Database,
  { token: Statement<TokenLookupRow, [Uint8Array]>; owner: Statement<OwnerLookupRow, [number]> }
>();

function lookupStatements(db: Database) {
  let statements = lookups.get(db);
  if (!statements) {
    statements = {
      token: db.prepare<TokenLookupRow, [Uint8Array]>(
        "SELECT id, user_id, scopes, repository_patterns, expires_at_unix, last_used_at_unix FROM access_tokens WHERE secret_hmac = ?",
      ),
      owner: db.prepare<OwnerLookupRow, [number]>(
        "SELECT name, kind, is_enabled, is_pending_approval, last_login_at_unix FROM users WHERE id = ?",
      ),
    };
    lookups.set(db, statements);
  }
  return statements;
}

/**
 * Two primary-key probes rather than one JOIN: measured on bun:sqlite, the JOIN costs several
 * times the two look-ups (scripts/bench.ts "access token, one client repeating"). A token
 * whose owner was deleted in between is not found, as after the delete.
 */
export function findTokenBySecret(db: Database, key: AccessTokenKey, secret: string): TokenCredential | null {
  const statements = lookupStatements(db);
  const token = statements.token.get(key.digest(secret));
  if (!token) return null;
  const owner = statements.owner.get(token.user_id);
  if (!owner) return null;
  return {
    id: token.id,
    scopes: JSON.parse(token.scopes) as TokenScope[],
    repositoryPatterns: JSON.parse(token.repository_patterns) as string[],
    expiresAtUnix: token.expires_at_unix,
    lastUsedAtUnix: token.last_used_at_unix,
    ownerId: token.user_id,
    owner: owner.name,
    ownerKind: owner.kind,
    ownerEnabled: owner.is_enabled === 1,
    ownerPendingApproval: owner.is_pending_approval === 1,
    ownerLastLoginAtUnix: owner.last_login_at_unix,
  };
}
