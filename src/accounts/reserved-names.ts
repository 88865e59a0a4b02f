/**
 * Names registration by `docker login` refuses because the account would own them as its
 * personal namespace (`<name>/*`, docs/accounts.md) while someone else already holds, or is
 * expected to hold, that namespace:
 *
 * - the literal first path component of every config ACL `name` pattern: `prod/*` for user ci
 *   makes `prod` unavailable, or a stranger registering `prod` would own ci's repositories
 *   (database grants are asked after the ACL, but the ACL decides only for the rules it has: any
 *   account, action or repository those rules leave open under prod/ would be the stranger's);
 * - a few names clients, registries and administrators give a meaning (`library` is Docker
 *   Hub's official-images namespace, which `docker pull ubuntu` means);
 * - namespaces database grants use (src/accounts/permissions.ts isNamespaceInUse, asked at
 *   registration time because grants change while the server runs).
 *
 * The refusal does not say which list a name is on.
 */
import type { AclRuleConfig } from "../acl.ts";

export const BUILT_IN_RESERVED_NAMES: ReadonlySet<string> = new Set([
  "library",
  "admin",
  "administrator",
  "root",
  "registry",
  "regauth",
  "docker",
  "v2",
  "_catalog",
  "catalog",
  "auth",
  "token",
  "api",
]);

/**
 * A first path component with any of these is not a literal: docker_auth glob (`*`, `?`, `[`),
 * placeholder (`${account}`), or regex syntax. Such patterns are skipped, not guessed at.
 */
const NOT_LITERAL = /[*?[\]{}$\\^|()+]/;

/** The literal first path components of the config ACL's repository name patterns. */
export function aclNamespaces(acl: readonly AclRuleConfig[]): Set<string> {
  const names = new Set<string>();
  for (const rule of acl) {
    const { name, type } = rule.match;
    if (name === undefined || name.startsWith("/")) continue; // absent, or a /regex/
    // A rule for registry:catalog or another non-repository type names no namespace.
    if (type !== undefined && type !== "repository" && !NOT_LITERAL.test(type)) continue;
    const first = name.split("/")[0] ?? "";
    if (first !== "" && !NOT_LITERAL.test(first)) names.add(first);
  }
  return names;
}

/** The names registration refuses besides those database grants use: built-in plus the ACL's. */
export function reservedNamesForRegistration(acl: readonly AclRuleConfig[]): ReadonlySet<string> {
  return new Set([...BUILT_IN_RESERVED_NAMES, ...aclNamespaces(acl)]);
}
