/**
 * The authentication chain, with docker_auth's semantics (server.go Authenticate): each
 * authenticator in turn either decides (allow or deny) or says it does not know the user
 * (no-match) and the next one is asked. An authenticator throws only when it could not answer
 * (LDAP down, a hook crashed); that fails the request instead of denying it.
 */
import type { ClientIp, Labels } from "../acl.ts";
import type { TokenLimits } from "../access-tokens/scopes.ts";

export interface Credentials {
  /** "" with an empty password means anonymous. */
  username: string;
  password: string;
}

export type AuthnOutcome =
  | { kind: "allow"; labels: Labels; account?: string; accessToken?: TokenLimits }
  /** `reason` is shown to the client: give one only to a client that proved the password. */
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
  /**
   * Set when the password was an access token (src/access-tokens/): the principal is the token's
   * owner, and what it is granted is the owner's current rights cut down to the token's scopes
   * and repository patterns (src/authz/authorizer.ts).
   */
  accessToken?: TokenLimits;
}

export const NO_MATCH: AuthnOutcome = { kind: "no-match" };
export const DENY: AuthnOutcome = { kind: "deny" };

/** What the chain decided: a principal, wrong credentials, or a user no authenticator knows. */
export type AuthnDecision =
  | { kind: "allow"; principal: Principal }
  /** `authenticator`: the back-end that decided, for the audit log. */
  | { kind: "deny"; reason?: string; authenticator?: string }
  | { kind: "unknown" };

/**
 * Runs the chain. "unknown" means every authenticator said no-match; the caller decides what
 * that means (401, or registration by `docker login`). Callers answering 401 for "unknown" first
 * spend `verifier.verifyDummy`, so that unknown and known names take the same time.
 */
export async function authenticate(
  chain: readonly Authenticator[],
  credentials: Credentials,
  context: AuthnContext,
): Promise<AuthnDecision> {
  for (const authenticator of chain) {
    const outcome = await authenticator.authenticate(credentials, context);
    if (outcome.kind === "no-match") continue;
    if (outcome.kind === "deny")
      return outcome.reason === undefined
        ? { kind: "deny", authenticator: authenticator.name }
        : { kind: "deny", reason: outcome.reason, authenticator: authenticator.name };
    const account = outcome.account ?? credentials.username;
    const principal: Principal = {
      account,
      labels: outcome.labels,
      isAnonymous: account === "",
      authenticator: authenticator.name,
    };
    if (outcome.accessToken) principal.accessToken = outcome.accessToken;
    return { kind: "allow", principal };
  }
  return { kind: "unknown" };
}
