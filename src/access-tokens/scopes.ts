/**
 * What an access token may do (issue 10 item 3): its scopes and repository patterns, intersected
 * with what its owner may do now (src/authz/authorizer.ts applies this after the owner's rights
 * are computed, on every request, so a grant revoked from the owner is gone from the token too).
 *
 *   pull   → pull
 *   push   → pull, push          (push implies pull)
 *   delete → pull, push, delete, "*"   (delete implies push)
 *   api    → the management API (/api/v1) only; nothing at the registry
 */
import { patternMatches } from "../accounts/permissions.ts";

export const TOKEN_SCOPES = ["pull", "push", "delete", "api"] as const;
export type TokenScope = (typeof TOKEN_SCOPES)[number];

const IMPLIED: Readonly<Record<TokenScope, readonly TokenScope[]>> = {
  pull: ["pull"],
  push: ["pull", "push"],
  delete: ["pull", "push", "delete"],
  api: ["api"],
};

const REGISTRY_ACTIONS: Readonly<Record<TokenScope, readonly string[]>> = {
  pull: ["pull"],
  push: ["pull", "push"],
  delete: ["pull", "push", "delete", "*"],
  api: [],
};

export function isTokenScope(value: unknown): value is TokenScope {
  return typeof value === "string" && (TOKEN_SCOPES as readonly string[]).includes(value);
}

/** The closure of `scopes` (push adds pull, delete adds push and pull), in TOKEN_SCOPES order. */
export function closeScopes(scopes: readonly TokenScope[]): TokenScope[] {
  const closed = new Set(scopes.flatMap((s) => IMPLIED[s]));
  return TOKEN_SCOPES.filter((s) => closed.has(s));
}

/** The limits a token principal carries (src/authn/authenticator.ts Principal.accessToken). */
export interface TokenLimits {
  id: number;
  scopes: readonly TokenScope[];
  repositoryPatterns: readonly string[];
}

/**
 * Of the actions the owner was granted on one resource, those the token allows. Repositories:
 * the actions of its scopes, on repositories one of its patterns covers. `registry:catalog:*`
 * (every repository's name) only for a token with delete on `*`. Anything else: nothing.
 */
export function limitToToken(
  token: TokenLimits,
  resource: { type: string; name: string },
  ownerGranted: readonly string[],
): string[] {
  if (ownerGranted.length === 0) return [];
  const allowed = new Set(token.scopes.flatMap((s) => REGISTRY_ACTIONS[s]));
  if (resource.type === "repository") {
    if (!token.repositoryPatterns.some((p) => patternMatches(p, resource.name))) return [];
    return ownerGranted.filter((action) => allowed.has(action));
  }
  if (resource.type === "registry" && resource.name === "catalog") {
    return allowed.has("delete") && token.repositoryPatterns.includes("*")
      ? ownerGranted.filter((action) => action === "*")
      : [];
  }
  return [];
}
