/**
 * The authentication chain, with docker_auth's semantics (server.go Authenticate): each
 * authenticator in turn either decides (allow or deny) or says it does not know the user
 * (no-match) and the next one is asked. An authenticator throws only when it could not answer
 * (LDAP down, a hook crashed); that fails the request instead of denying it.
 */
import type { ClientIp, Labels } from "../acl.ts";
import type { PasswordVerifier } from "./password-verifier.ts";

export interface Credentials {
  /** "" with an empty password means anonymous. */
  username: string;
  password: string;
}

export type AuthnOutcome =
  | { kind: "allow"; labels: Labels; account?: string }
  | { kind: "deny"; reason?: string }
  | { kind: "no-match" };

export interface AuthnContext {
  ip: ClientIp | null;
}

export interface Authenticator {
  readonly name: string;
  authenticate(credentials: Credentials, context: AuthnContext): Promise<AuthnOutcome> | AuthnOutcome;
}

/** Who a token is for. `account` becomes the token's `sub` and the ACL's `${account}`. */
export interface Principal {
  account: string;
  labels: Labels;
  isAnonymous: boolean;
  /** Which authenticator vouched for this principal, for logs. */
  authenticator: string;
}

export const NO_MATCH: AuthnOutcome = { kind: "no-match" };
export const DENY: AuthnOutcome = { kind: "deny" };

/**
 * Runs the chain. Returns the principal, or null when the credentials are wrong or nobody knows
 * the user. When no authenticator knew the user, a dummy hash is verified once so that unknown
 * and known names take the same time.
 */
export async function authenticate(
  chain: readonly Authenticator[],
  credentials: Credentials,
  context: AuthnContext,
  verifier: PasswordVerifier,
): Promise<Principal | null> {
  for (const authenticator of chain) {
    const outcome = await authenticator.authenticate(credentials, context);
    if (outcome.kind === "no-match") continue;
    if (outcome.kind === "deny") return null;
    const account = outcome.account ?? credentials.username;
    return {
      account,
      labels: outcome.labels,
      isAnonymous: account === "",
      authenticator: authenticator.name,
    };
  }
  await verifier.verifyDummy(credentials.password);
  return null;
}
