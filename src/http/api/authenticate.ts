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
import type { PasswordVerifier } from "../../authn/password-verifier.ts";
import type { LoginThrottle } from "../../authn/throttle.ts";
import { Forbidden, TooManyRequests, Unauthorized } from "../../errors.ts";
import type { Actor } from "../../management/context.ts";
import type { TokenScope } from "../../management/schemas.ts";
import { parseBasicAuthorization } from "../request-parts.ts";

export const ACCESS_TOKEN_PREFIX = "regauth_pat_";

export interface ApiAuthentication {
  db: Database;
  verifier: PasswordVerifier;
  throttle?: LoginThrottle;
  /**
   * src/access-tokens accessTokenAuthenticator: allow with `principal.accessToken` for a valid,
   * unexpired token of an enabled owner. Absent: tokens are refused.
   */
  tokenAuthenticator?: Authenticator;
}

const NEEDS_CREDENTIALS =
  "authenticate with Basic (user name and password) or Bearer (an access token with the api scope)";

interface TokenPrincipal {
  account: string;
  accessToken?: { id: number; scopes: readonly TokenScope[] };
}

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
  const admission = auth.throttle?.admit(ip, username, secret);
  if (admission?.kind === "refused")
    throw new TooManyRequests(
      `too many failed logins; try again in ${admission.retryAfterSeconds} seconds`,
      admission.retryAfterSeconds,
    );
  using attempt = admission?.attempt;
  const actor = secret.startsWith(ACCESS_TOKEN_PREFIX)
    ? await byToken(auth, secret, ip)
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

async function byToken(auth: ApiAuthentication, secret: string, ip: ClientIp | null): Promise<Actor | null> {
  if (!auth.tokenAuthenticator) return null;
  const outcome = await auth.tokenAuthenticator.authenticate({ username: "", password: secret }, { ip });
  if (outcome.kind !== "allow") return null;
  const principal = outcome as unknown as { principal?: TokenPrincipal } & TokenPrincipal;
  const token = principal.principal?.accessToken ?? principal.accessToken;
  const account = principal.principal?.account ?? principal.account ?? outcome.account;
  if (!token || account === undefined) return null;
  const owner = findUser(auth.db, account);
  if (!owner || !owner.isEnabled) return null;
  return {
    kind: "account",
    name: owner.name,
    userId: owner.id,
    isAdmin: owner.isAdmin,
    via: "access-token",
    tokenScopes: token.scopes,
  };
}
