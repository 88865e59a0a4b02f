/**
 * The authorization chain, run once per requested resource (docker_auth server.go
 * authorizeScope): the first authorizer that does not answer null decides, even with an empty
 * list; when none decides, nothing is granted. Partial grants are not errors (token.md: "If the
 * client only has a subset of the requested access it must not be considered an error").
 *
 * An access token's principal is authorized as its owner, and what the owner is granted is then
 * cut down to the token's scopes and repository patterns (src/access-tokens/scopes.ts): computed
 * from the owner's current grants on every request, so a grant revoked from the owner is gone
 * from their tokens at once (issue 10 item 3).
 *
 * Anonymous access the database admitted (its authenticator lets anonymous clients in only when
 * it holds a public grant) is authorized by the database's public grants alone: the config ACL
 * and ext_authz are not asked. Their rules were written for the users the config knows, and
 * docker_auth shows a config ACL anonymous clients only when the config defines the "" user. A
 * rule such as reference.yml's `ip: 127.0.0.0/8 → ["*"]` would otherwise hand every loopback
 * client push and delete everywhere the moment one repository is made public.
 */
import { type Acl, type AuthzRequest, authorizeByAcl, type ClientIp } from "../acl.ts";
import { limitToToken } from "../access-tokens/scopes.ts";
import type { Principal } from "../authn/authenticator.ts";
import type { Scope } from "../scope.ts";
import type { Grant } from "../token/sign.ts";

export interface Authorizer {
  readonly name: string;
  /**
   * The granted actions, or null for "no opinion, ask the next one". Throws only on failure.
   * `principal` says which authenticator vouched for the account (the database authorizer
   * applies database-derived rights only to principals the database authenticated).
   */
  authorize(request: AuthzRequest, principal: Principal): Promise<string[] | null> | string[] | null;
  /**
   * The authorizer to use for one token request, when it keeps per-request state (ext_authz
   * folds identical questions and caps its program runs per request, src/hooks/ext-authz.ts).
   */
  forRequest?(): Authorizer;
}

/** The name of the database authorizer (src/authz/database-permissions.ts) in the chain. */
export const DATABASE_AUTHORIZER = "database";

/** An anonymous principal the database authenticator admitted because it holds public grants. */
export function isDatabasePublicAccess(principal: Principal): boolean {
  return principal.isAnonymous && principal.authenticator === "database";
}

/** The authorizers that apply to `principal` (see the header: database public access). */
export function authorizersFor(chain: readonly Authorizer[], principal: Principal): readonly Authorizer[] {
  return isDatabasePublicAccess(principal) ? chain.filter((a) => a.name === DATABASE_AUTHORIZER) : chain;
}

export function aclAuthorizer(acl: Acl): Authorizer {
  return { name: "acl", authorize: (request) => authorizeByAcl(acl, request) };
}

export async function authorize(
  chain: readonly Authorizer[],
  principal: Principal,
  scopes: readonly Scope[],
  service: string,
  ip: ClientIp | null,
): Promise<Grant[]> {
  const grants: Grant[] = [];
  const applicable = authorizersFor(chain, principal).map((a) => a.forRequest?.() ?? a);
  for (const scope of scopes) {
    const request: AuthzRequest = {
      account: principal.account,
      type: scope.type,
      name: scope.name,
      service,
      ip,
      actions: scope.actions,
      labels: principal.labels,
    };
    let granted: string[] = [];
    for (const authorizer of applicable) {
      const answer = await authorizer.authorize(request, principal);
      if (answer === null) continue;
      // Never more than was asked, whatever an authorizer (or a hook) answers.
      granted = scope.actions.filter((action) => answer.includes(action));
      break;
    }
    // An access token gets its owner's current rights, cut down to its scopes and patterns.
    if (principal.accessToken) granted = limitToToken(principal.accessToken, scope, granted);
    const grant: Grant = { type: scope.type, name: scope.name, actions: granted };
    if (scope.class !== undefined) grant.class = scope.class;
    grants.push(grant);
  }
  return grants;
}
