/**
 * Who is calling the management API (design §3): a person with `Authorization: Basic` (their
 * database password, checked by the same PasswordVerifier and charged to the same LoginThrottle
 * as token requests), or `Authorization: Bearer regauth_pat_...` (an access token with the `api`
 * scope; also accepted as the Basic password, as docker clients send it). The account row is read
 * on every request: a disabled or deleted account's password or token is a 401 at once.
 */
import type { Database } from "bun:sqlite";
import type { ClientIp } from "../../acl.ts";
import { findUser } from "../../accounts/users.ts";
import type { Authenticator } from "../../authn/authenticator.ts";
import { type AccessTokenKey, findTokenBySecret, looksLikeAccessToken } from "../../access-tokens/index.ts";
import type { PasswordVerifier } from "../../authn/password-verifier.ts";
import type { Throttle } from "../../authn/throttle.ts";
import { Forbidden, TooManyRequests, Unauthorized } from "../../errors.ts";
import type { Actor } from "../../management/context.ts";
import { parseBasicAuthorization } from "../request-parts.ts";

export interface ApiAuthentication {
  db: Database;
  verifier: PasswordVerifier;
  throttle?: Throttle;
  /** The HMAC key access tokens are stored under (src/access-tokens/key.ts). */
  accessTokenKey: AccessTokenKey;
  /**
   * The token path's access token authenticator (src/access-tokens/authenticator.ts), so that API
   * use records last-used time, address and an `access-token.used` event like registry use.
   * Absent: the token is looked up directly, without recording.
   */
  tokenAuthenticator?: Authenticator;
}

const NEEDS_CREDENTIALS =
  "authenticate with Basic (user name and password) or Bearer (an access token with the api scope)";

export async function authenticateApiCaller(
  auth: ApiAuthentication,
  request: Request,
  ip: ClientIp | null,
): Promise<Actor> {
  const header = request.headers.get("authorization");
  if (header === null) throw new Unauthorized(NEEDS_CREDENTIALS);
  const bearer = /^Bearer +(\S+)$/i.exec(header);
  let username: string;
  let secret: string;
  if (bearer?.[1] !== undefined) {
    username = "";
    secret = bearer[1];
  } else {
    const basic = parseBasicAuthorization(header);
    if (!basic || basic.username === "" || basic.password === "") throw new Unauthorized(NEEDS_CREDENTIALS);
    username = basic.username;
    secret = basic.password;
  }
  const admission = await auth.throttle?.admit(ip, username, secret);
  if (admission?.kind === "refused")
    throw new TooManyRequests(
      `too many failed logins; try again in ${admission.retryAfterSeconds} seconds`,
      admission.retryAfterSeconds,
    );
  using attempt = admission?.attempt;
  const actor = looksLikeAccessToken(secret)
    ? await byToken(auth, secret, username, ip)
    : bearer
      ? null
      : await byPassword(auth, username, secret);
  if (!actor) {
    attempt?.failed();
    throw new Unauthorized("authentication failed");
  }
  attempt?.succeeded();
  if (actor.kind === "account" && actor.via === "access-token" && !actor.tokenScopes?.includes("api"))
    throw new Forbidden('this access token has no api scope; create one with scopes ["api"]');
  return actor;
}

async function byPassword(
  auth: ApiAuthentication,
  username: string,
  password: string,
): Promise<Actor | null> {
  const user = findUser(auth.db, username);
  // Robots have no password ('!' never verifies); the dummy check keeps the timing alike.
  if (!user || username.includes("+")) {
    await auth.verifier.verifyDummy(password);
    return null;
  }
  if (!(await auth.verifier.verify(username, password, user.passwordHash))) return null;
  const current = findUser(auth.db, username);
  if (!current || current.passwordHash !== user.passwordHash || !current.isEnabled) return null;
  return {
    kind: "account",
    name: current.name,
    userId: current.id,
    isAdmin: current.isAdmin,
    via: "password",
  };
}

/** One HMAC and one indexed SELECT (src/access-tokens findTokenBySecret); no password hashing. */
async function byToken(
  auth: ApiAuthentication,
  secret: string,
  claimed: string,
  ip: ClientIp | null,
): Promise<Actor | null> {
  const token = findTokenBySecret(auth.db, auth.accessTokenKey, secret);
  if (!token || !token.ownerEnabled || token.ownerKind !== "person") return null;
  if (token.expiresAtUnix !== null && token.expiresAtUnix <= Math.floor(Date.now() / 1000)) return null;
  if (auth.tokenAuthenticator) {
    // Same decision, plus the use recorded as the token path records it.
    const outcome = await auth.tokenAuthenticator.authenticate(
      { username: claimed, password: secret },
      { ip },
    );
    if (outcome.kind !== "allow" || outcome.accessToken?.id !== token.id) return null;
  }
  const owner = findUser(auth.db, token.owner);
  if (!owner || !owner.isEnabled || owner.id !== token.ownerId) return null;
  return {
    kind: "account",
    name: owner.name,
    userId: owner.id,
    isAdmin: owner.isAdmin,
    via: "access-token",
    tokenScopes: token.scopes,
    tokenRepositoryPatterns: token.repositoryPatterns,
  };
}
