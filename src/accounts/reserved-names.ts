/**
 * Names registration by `docker login` refuses because the account would own them as its
 * personal namespace (`<name>/*`, docs/accounts.md) while someone else already holds, or is
 * expected to hold, that namespace:
 *
 * - every namespace a config ACL (or acl_xorm row) `name` pattern could match under: `prod/*`,
 *   `/^prod\/.+$/` or `prod-*` + `/app` for user ci make `prod` unavailable, or a stranger
 *   registering `prod` would own ci's repositories (database grants are asked after the ACL, but
 *   the ACL decides only for the rules it has: any account, action or repository those rules
 *   leave open under prod/ would be the stranger's); src/acl.ts aclNamespaceClaims says how
 *   placeholders and catch-alls count (review finding 1);
 * - a few names clients, registries and administrators give a meaning (`library` is Docker
 *   Hub's official-images namespace, which `docker pull ubuntu` means);
 * - names a config ACL rule's (or acl_xorm row's) `account` pattern matches (literal, glob or regex), other than a
 *   catch-all such as `/.+/` or `*`: a stranger registering `deploy` would receive the rights a
 *   rule wrote for the deploy account an administrator means to create (issue 8 H1; src/acl.ts
 *   aclAccountClaims says what a catch-all is, validAccountNameSample is the sample it uses);
 * - namespaces database grants use (src/accounts/permissions.ts isNamespaceInUse, asked at
 *   registration time because grants change while the server runs).
 *
 * The refusal does not say which list a name is on.
 */
import {
  type AccountClaims,
  type Acl,
  type AclRuleConfig,
  aclAccountClaims,
  aclNamespaceClaims,
  compileAcl,
} from "../acl.ts";
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

/** Names registration refuses; `has` is asked once per registration attempt. */
export interface ReservedNames {
  has(name: string): boolean;
}

export interface ReservationSources {
  /** token.services: what `${service}` in an account pattern can be (null: anything). */
  services?: readonly string[] | null;
  /**
   * ACLs that change while the server runs (the acl_xorm table), asked at each attempt; null
   * while one has not been read yet, which refuses every name until it has.
   */
  liveAcls?: () => readonly (Acl | null)[];
  /**
   * Account names other back-ends know (the config's `users`). One with a `/` (`team/ci`) owns
   * repositories under its first component through `${account}/*`, which the namespace test
   * takes for the registrant's own (database names hold no `/`), so that component is reserved.
   */
  knownAccounts?: readonly string[];
}

/**
 * The names registration refuses besides those database grants use: built-in, the namespaces
 * the ACL's `name` patterns single out, and the names its account patterns single out. `acl` is
 * the compiled form of `rules` (compiled here when not given).
 */
export function reservedNamesForRegistration(
  rules: readonly AclRuleConfig[],
  acl: Acl = compileAcl(rules, "acl").acl,
  { services = null, liveAcls = () => [], knownAccounts = [] }: ReservationSources = {},
): ReservedNames {
  const ownersOfSlashNames = new Set(
    knownAccounts.filter((name) => name.includes("/")).map((name) => name.split("/")[0] as string),
  );
  const claimed = (name: string, from: Acl) => {
    const { namespaces, accounts } = aclClaims(from, services);
    return namespaces.claims(name) || accounts.claims(name);
  };
  return {
    has: (name) =>
      BUILT_IN_RESERVED_NAMES.has(name) ||
      ownersOfSlashNames.has(name) ||
      claimed(name, acl) ||
      liveAcls().some((live) => live === null || claimed(name, live)),
  };
}

/** The ACL's patterns (globs and regexes) registration refuses names for; see the warning in src/server.ts. */
export function aclClaimingPatterns(
  acl: Acl,
  services: readonly string[] | null = null,
): { accounts: string[]; namespaces: string[] } {
  const { namespaces, accounts } = aclClaims(acl, services);
  return { accounts: accounts.patterns, namespaces: namespaces.patterns };
}

/** Whether the ACL's patterns refuse every valid name (a label placeholder in a namespace, say). */
export function aclRefusesEveryName(acl: Acl, services: readonly string[] | null = null): boolean {
  const { namespaces, accounts } = aclClaims(acl, services);
  return validAccountNameSample().every((name) => namespaces.claims(name) || accounts.claims(name));
}

interface Claims {
  namespaces: AccountClaims;
  accounts: AccountClaims;
}

/**
 * Computed once per ACL (an acl_xorm reload makes a new one): the catch-all test tries every
 * rule's patterns on the whole sample, so an attempt then costs one test per remaining rule.
 */
const claimsByAcl = new WeakMap<Acl, Map<string, Claims>>();

function aclClaims(acl: Acl, services: readonly string[] | null): Claims {
  const key = services === null ? "" : JSON.stringify(services);
  let byServices = claimsByAcl.get(acl);
  if (!byServices) {
    byServices = new Map();
    claimsByAcl.set(acl, byServices);
  }
  let claims = byServices.get(key);
  if (!claims) {
    const everyone = validAccountNameSample();
    claims = {
      namespaces: aclNamespaceClaims(acl, everyone),
      accounts: aclAccountClaims(acl, everyone, services),
    };
    byServices.set(key, claims);
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
