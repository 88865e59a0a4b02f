/**
 * The authorization chain, run once per requested resource (docker_auth server.go
 * authorizeScope): the first authorizer that does not answer null decides, even with an empty
 * list; when none decides, nothing is granted. Partial grants are not errors (token.md: "If the
 * client only has a subset of the requested access it must not be considered an error").
 */
import { type Acl, type AuthzRequest, authorizeByAcl, type ClientIp } from "../acl.ts";
import type { Principal } from "../authn/authenticator.ts";
import type { Scope } from "../scope.ts";
import type { Grant } from "../token/sign.ts";

export interface Authorizer {
  readonly name: string;
  /** The granted actions, or null for "no opinion, ask the next one". Throws only on failure. */
  authorize(request: AuthzRequest): Promise<string[] | null> | string[] | null;
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
    for (const authorizer of chain) {
      const answer = await authorizer.authorize(request);
      if (answer === null) continue;
      // Never more than was asked, whatever an authorizer (or a hook) answers.
      granted = scope.actions.filter((action) => answer.includes(action));
      break;
    }
    const grant: Grant = { type: scope.type, name: scope.name, actions: granted };
    if (scope.class !== undefined) grant.class = scope.class;
    grants.push(grant);
  }
  return grants;
}
