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
 * - names a config ACL rule's `account` pattern matches (literal, glob or regex), other than a
 *   catch-all such as `/.+/` or `*`: a stranger registering `deploy` would receive the rights a
 *   rule wrote for the deploy account an administrator means to create (issue 8 H1; src/acl.ts
 *   aclAccountClaims says what a catch-all is, validAccountNameSample is the sample it uses);
 * - namespaces database grants use (src/accounts/permissions.ts isNamespaceInUse, asked at
 *   registration time because grants change while the server runs).
 *
 * The refusal does not say which list a name is on.
 */
import { type AccountClaims, type Acl, type AclRuleConfig, aclAccountClaims, compileAcl } from "../acl.ts";
import { MAX_USERNAME_LENGTH } from "./users.ts";

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

/** Names registration refuses; `has` is asked once per registration attempt. */
export interface ReservedNames {
  has(name: string): boolean;
}

/**
 * The names registration refuses besides those database grants use: built-in, the ACL's
 * namespaces, and the names its account patterns single out. `acl` is the compiled form of
 * `rules` (compiled here when not given).
 */
export function reservedNamesForRegistration(
  rules: readonly AclRuleConfig[],
  acl: Acl = compileAcl(rules, "acl").acl,
): ReservedNames {
  const names = new Set([...BUILT_IN_RESERVED_NAMES, ...aclNamespaces(rules)]);
  const accounts = accountClaims(acl);
  return { has: (name) => names.has(name) || accounts.claims(name) };
}

/** The ACL's account patterns (globs and regexes) registration refuses names for; see the warning in src/server.ts. */
export function aclAccountPatterns(acl: Acl): string[] {
  return accountClaims(acl).patterns;
}

/** Computed once per ACL: the catch-all test tries every rule's account pattern on the whole sample. */
const claimsByAcl = new WeakMap<Acl, AccountClaims>();

function accountClaims(acl: Acl): AccountClaims {
  let claims = claimsByAcl.get(acl);
  if (!claims) {
    claims = aclAccountClaims(acl, validAccountNameSample());
    claimsByAcl.set(acl, claims);
  }
  return claims;
}

const FIRST_CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789";
const LATER_CHARACTERS = `${FIRST_CHARACTERS}._-`;

/**
 * Valid account names (src/accounts/users.ts usernameProblem) that a catch-all account pattern
 * must all match: every allowed first character alone, every allowed later character after
 * each first character's class, the longest allowed name, and 256 pseudo-random names of every
 * length. A pattern that leaves out a character, a position or a length is therefore not a
 * catch-all, and registration refuses the names it matches. Fixed (a seeded generator), so
 * every start decides the same.
 */
export function validAccountNameSample(): string[] {
  const names = [...FIRST_CHARACTERS];
  for (const c of LATER_CHARACTERS) names.push(`a${c}`, `0${c}`, `z${c}z`);
  names.push("a".repeat(MAX_USERNAME_LENGTH), `9${"-".repeat(MAX_USERNAME_LENGTH - 1)}`);
  let state = 0x2545f491;
  const next = (bound: number) => {
    // xorshift32: small, deterministic, good enough to spread characters and lengths.
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) % bound;
  };
  for (let i = 0; i < 256; i++) {
    const length = 1 + (i % 4 === 0 ? next(MAX_USERNAME_LENGTH) : next(16));
    let name = FIRST_CHARACTERS[next(FIRST_CHARACTERS.length)] as string;
    while (name.length < length) name += LATER_CHARACTERS[next(LATER_CHARACTERS.length)];
    names.push(name);
  }
  return names;
}
