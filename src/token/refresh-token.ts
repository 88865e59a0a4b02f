/**
 * Refresh tokens (distribution docs/spec/auth token.md `offline_token`, oauth.md
 * `access_type=offline` and `grant_type=refresh_token`). `docker login` stores one as its
 * identity token instead of the password, and the docker daemon, containerd, containers/image,
 * go-containerregistry and regclient trade it for access tokens with a POST refresh grant.
 *
 * The format is opaque to clients and deliberately NOT a JWT signed with the registry key: a
 * refresh token must never verify at the registry as an access token.
 *
 *   rt1.<base64url(JSON payload)>.<base64url(HMAC-SHA256(secret, "rt1." + payload))>
 *
 * The payload names the account, the audience (scope.md: a refresh token is bound to one
 * service), where the account lives (`src`: config `users` or the `database`), the times, and
 * `cred`, a MAC of the account's current stored password hash and credential epoch (a counter
 * the database moves on every disable and password change, issue 8). A password change or a
 * disable therefore revokes every refresh token of the account at once, and enabling it again
 * does not bring them back; a deleted account fails the look-up. Nothing is stored per token, so there is nothing to clean up. Only accounts whose
 * password hash regauth holds get refresh tokens: LDAP, ext_auth and anonymous principals have
 * no stored hash to revoke against, and keep using their password (the spec makes the field
 * optional).
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Database } from "bun:sqlite";
import type { Labels } from "../acl.ts";
import { findUser } from "../accounts/users.ts";
import { lastLoginRecorder } from "../authn/database-users.ts";
import type { Principal } from "../authn/authenticator.ts";
import type { UserConfig } from "../config/schema.ts";
import { dataDirFileProblem, dataDirOwnerToChownTo } from "../db/data-dir.ts";
import { readPrivateFile, writePrivateFile } from "../fs/private-file.ts";
import { log } from "../log.ts";

export const REFRESH_KEY_FILE = "refresh.key";
const SECRET_BYTES = 32;
const VERSION_PREFIX = "rt1.";
/** Far longer than any token we issue (~250 characters); longer input is refused before any work. */
export const MAX_REFRESH_TOKEN_LENGTH = 2048;
/** 128 bits of the password-hash MAC: enough to tell hashes apart, short enough to keep tokens small. */
const CRED_BYTES = 16;

/** Where an account's password hash is kept; a token is redeemable only from the same place. */
export type CredentialSource = "users" | "database";

export interface StoredCredential {
  source: CredentialSource;
  passwordHash: string;
  /** 0 for config users and for database accounts never disabled or given a new password. */
  credentialEpoch: number;
  isEnabled: boolean;
  /** Config users' labels, given to the principal again on redemption. */
  labels: Labels;
  /** Called when a token is redeemed: database users' last login time. */
  noteUse?: () => void;
}

/** Finds an account where the authentication chain would: config `users` first, then the database. */
export type CredentialLookup = (account: string) => StoredCredential | null;

export interface RefreshTokenPayload {
  sub: string;
  aud: string;
  src: CredentialSource;
  iat: number;
  exp: number;
  cred: string;
}

/**
 * Reads the refresh-token secret from the data directory, creating 32 random bytes (mode 0600)
 * on first run, as the generated signing key is (src/token/keys.ts). A separate key from the
 * signing key: deleting the file revokes every refresh token and nothing else.
 */
export function ensureRefreshSecret(dataDir: string): Buffer {
  const path = join(dataDir, REFRESH_KEY_FILE);
  // Never through a planted symlink, nor another user's file (review finding 10).
  const problem = dataDirFileProblem(path);
  if (problem) throw new Error(problem);
  if (!existsSync(path)) {
    try {
      // Exclusive and atomic (src/fs/private-file.ts): of two servers starting on one data
      // directory the second reads the first's key, and a full disk leaves no short file.
      writePrivateFile(path, randomBytes(SECRET_BYTES), {
        exclusive: true,
        owner: dataDirOwnerToChownTo(dataDir),
      });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
  }
  // Like the signing key: a refresh secret others can read lets them mint identity tokens.
  if (statSync(path).mode & 0o077) {
    log.warn("refresh-token key file is readable by group or others; chmod 600 it", { path });
  }
  const secret = readPrivateFile(path);
  if (secret.length < SECRET_BYTES) {
    throw new Error(
      `${path} holds ${secret.length} bytes, fewer than ${SECRET_BYTES}; delete it to generate a new one (this logs out every docker client that stored a refresh token)`,
    );
  }
  return secret;
}

/** The look-up the authentication chain implies: config users shadow database users of the same name. */
export function credentialLookup(
  users: Record<string, UserConfig> | undefined,
  database: Database | undefined,
  nowSeconds: () => number = () => Math.floor(Date.now() / 1000),
): CredentialLookup {
  const noteLogin = database ? lastLoginRecorder(database, nowSeconds) : () => {};
  return (account) => {
    if (users && Object.hasOwn(users, account)) {
      const user = users[account] as UserConfig;
      if (user.password === undefined) return null;
      return {
        source: "users",
        passwordHash: user.password,
        credentialEpoch: 0,
        isEnabled: true,
        labels: user.labels ?? {},
      };
    }
    if (!database) return null;
    const user = findUser(database, account);
    if (!user) return null;
    return {
      source: "database",
      passwordHash: user.passwordHash,
      credentialEpoch: user.credentialEpoch,
      isEnabled: user.isEnabled,
      labels: {},
      noteUse: () => noteLogin(user.id, user.lastLoginAtUnix),
    };
  };
}

/** Which store a principal's password was checked against; null when regauth holds no hash for it. */
function sourceOf(principal: Principal): CredentialSource | null {
  if (principal.isAnonymous) return null;
  switch (principal.authenticator) {
    case "users":
      return "users";
    case "database":
    case "registration": // an account `docker login` just created in the database
      return "database";
    default:
      return null; // LDAP, ext_auth: no stored hash to revoke against
  }
}

/** Why a refresh token was refused; logged, never shown to the client beyond "log in again". */
export type RefreshRefusal =
  | "malformed"
  | "bad signature"
  | "expired"
  | "wrong service"
  | "unknown account"
  | "account disabled"
  /** The password hash or the credential epoch moved: a password change, or a disable since. */
  | "credentials changed";

export type RedeemResult = { kind: "allow"; principal: Principal } | { kind: "deny"; reason: RefreshRefusal };

export class RefreshTokens {
  constructor(
    private readonly secret: Buffer,
    /** Lifetime of new tokens, and the longest any token is honoured (lowering it applies at once). */
    readonly lifetimeSeconds: number,
    private readonly lookup: CredentialLookup,
  ) {}

  /** A refresh token for this principal and service, or null when it may not have one. */
  issue(principal: Principal, audience: string, nowSeconds: number): string | null {
    const source = sourceOf(principal);
    if (source === null || this.lifetimeSeconds <= 0) return null;
    const stored = this.lookup(principal.account);
    if (!stored || stored.source !== source || !stored.isEnabled) return null;
    const payload: RefreshTokenPayload = {
      sub: principal.account,
      aud: audience,
      src: source,
      iat: nowSeconds,
      exp: nowSeconds + this.lifetimeSeconds,
      cred: this.credentialMac(source, principal.account, stored),
    };
    const encoded = Buffer.from(JSON.stringify(payload)).toString("base64url");
    return `${VERSION_PREFIX}${encoded}.${this.mac(encoded).toString("base64url")}`;
  }

  /** Checks a refresh token for `audience` against the account as it is now. */
  redeem(token: string, audience: string, nowSeconds: number): RedeemResult {
    const parts = splitToken(token);
    if (!parts) return { kind: "deny", reason: "malformed" };
    const expected = this.mac(parts.payload);
    if (!timingSafeEqual(expected, parts.mac)) return { kind: "deny", reason: "bad signature" };
    const payload = decodePayload(parts.payload);
    if (!payload) return { kind: "deny", reason: "malformed" }; // only if our own secret signed junk
    if (
      this.lifetimeSeconds <= 0 ||
      payload.exp <= nowSeconds ||
      payload.iat + this.lifetimeSeconds <= nowSeconds
    )
      return { kind: "deny", reason: "expired" };
    if (payload.aud !== audience) return { kind: "deny", reason: "wrong service" };
    const stored = this.lookup(payload.sub);
    if (!stored || stored.source !== payload.src) return { kind: "deny", reason: "unknown account" };
    if (!stored.isEnabled) return { kind: "deny", reason: "account disabled" };
    const current = Buffer.from(this.credentialMac(stored.source, payload.sub, stored));
    const presented = Buffer.from(payload.cred);
    if (current.length !== presented.length || !timingSafeEqual(current, presented))
      return { kind: "deny", reason: "credentials changed" };
    stored.noteUse?.();
    const principal: Principal = {
      account: payload.sub,
      labels: stored.labels,
      isAnonymous: false,
      authenticator: stored.source,
    };
    return { kind: "allow", principal };
  }

  private mac(encodedPayload: string): Buffer {
    return createHmac("sha256", this.secret).update(VERSION_PREFIX).update(encodedPayload).digest();
  }

  /**
   * Domain-separated from token MACs by its prefix; NUL cannot occur in names or hashes. At
   * epoch 0 the input is schema v1's (no epoch), so tokens issued before the upgrade keep
   * working; any other epoch is appended, so a token from an earlier epoch never matches.
   */
  private credentialMac(
    source: CredentialSource,
    account: string,
    { passwordHash, credentialEpoch }: Pick<StoredCredential, "passwordHash" | "credentialEpoch">,
  ): string {
    const epoch = credentialEpoch === 0 ? "" : `\0epoch=${credentialEpoch}`;
    return createHmac("sha256", this.secret)
      .update(`cred\0${source}\0${account}\0${passwordHash}${epoch}`)
      .digest()
      .subarray(0, CRED_BYTES)
      .toString("base64url");
  }
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;
const MAC_BASE64URL_LENGTH = 43; // 32 bytes, unpadded

function splitToken(token: string): { payload: string; mac: Buffer } | null {
  if (token.length > MAX_REFRESH_TOKEN_LENGTH || !token.startsWith(VERSION_PREFIX)) return null;
  const parts = token.slice(VERSION_PREFIX.length).split(".");
  if (parts.length !== 2) return null;
  const [payload = "", mac = ""] = parts;
  if (!BASE64URL.test(payload) || !BASE64URL.test(mac) || mac.length !== MAC_BASE64URL_LENGTH) return null;
  const macBytes = Buffer.from(mac, "base64url");
  // Exactly one spelling per MAC: a token's last character has unused bits that must be zero.
  if (macBytes.toString("base64url") !== mac) return null;
  return { payload, mac: macBytes };
}

function decodePayload(encoded: string): RefreshTokenPayload | null {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(encoded, "base64url").toString("utf8"));
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  const p = value as Record<string, unknown>;
  const isValid =
    typeof p.sub === "string" &&
    p.sub !== "" &&
    typeof p.aud === "string" &&
    (p.src === "users" || p.src === "database") &&
    Number.isSafeInteger(p.iat) &&
    Number.isSafeInteger(p.exp) &&
    typeof p.cred === "string";
  return isValid ? (p as unknown as RefreshTokenPayload) : null;
}

/**
 * The account a refresh token claims, read WITHOUT checking the MAC: only the key for the
 * failed-login throttle, so that a stale token retried by a daemon slows down that account at
 * that address and not every refresh from the address. "" when unreadable.
 */
export function claimedSubject(token: string): string {
  const parts = splitToken(token);
  if (!parts) return "";
  const payload = decodePayload(parts.payload);
  return payload?.sub.slice(0, 256) ?? "";
}
