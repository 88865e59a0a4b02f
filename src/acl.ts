/**
 * The static ACL, evaluated exactly as cesanta/docker_auth does (auth_server/authz/acl.go):
 * rules in order, the first whose every given `match` field matches decides; `actions: ["*"]`
 * grants whatever was asked, otherwise the intersection of asked and listed; `[]` denies and stops.
 *
 * Patterns: `/.../` is an unanchored Go (RE2) regular expression, run by re2js; anything else a
 * Go path.Match glob over the whole string, run by Go's own algorithm (src/glob.ts). Both are
 * linear in the name, as in docker_auth (issue 8 M2; docs/acl-compatibility.md). `${account}`, `${type}`, `${name}`, `${service}` are replaced by the request's
 * values quoted with QuoteMeta; `${field:N}` by capture group N of that field's own regex;
 * `${labels:KEY}` is tried with every value of the user's label KEY once plain matching fails.
 * One deliberate difference: label values and capture groups are quoted too, so a label such as
 * `*` or `.+` coming from LDAP or a hook, or an account `*@corp` captured by `/^(.+)@corp$/`,
 * cannot widen a rule (docker_auth inserts both raw).
 */
import type { ConfigProblem } from "./errors.ts";
import {
  ANY_SEGMENT,
  type Glob,
  globMayMatch,
  globPrefix,
  globPrefixTest,
  globUnits,
  matchGlob,
  parseGlob,
  parseGlobUnits,
  quoteMeta,
} from "./glob.ts";
import {
  compileGoRegexp,
  type GoRegexp,
  goRegexpMatches,
  goRegexpPrefixTest,
  goRegexpSubmatches,
  regexLiteralPrefix,
  widenPlaceholders,
} from "./go-regexp.ts";
import { type IpRange, ipInRange, parseIpRange } from "./ip.ts";
import { log } from "./log.ts";

export type Labels = Record<string, string[]>;

export interface ClientIp {
  text: string;
  bytes: Uint8Array;
}

/** One resource of one token request, as the authorizers see it. */
export interface AuthzRequest {
  account: string;
  type: string;
  name: string;
  service: string;
  ip: ClientIp | null;
  /** Requested actions, sorted and de-duplicated. */
  actions: string[];
  labels: Labels;
}

/** An ACL rule as written in the config file (docker_auth's ACLEntry). */
export interface AclRuleConfig {
  match: {
    account?: string;
    type?: string;
    name?: string;
    service?: string;
    ip?: string;
    labels?: Record<string, string>;
  };
  actions: string[];
  comment?: string;
}

type Field = "account" | "type" | "name" | "service";
const FIELDS: readonly Field[] = ["account", "type", "name", "service"];

/** A glob or regex of one rule field; see compilePattern. */
type Pattern = GlobPattern | RegexPattern;

interface GlobPattern {
  kind: "glob";
  source: string;
  /** Literal text a match must start with: rules out most rules before any slot is filled. */
  prefix: string;
  /**
   * Parsed once, each placeholder a slot whose quoted value is a literal (what docker_auth's
   * QuoteMeta makes of it), so no per-account parsing or cache is needed (issue 9 item 7).
   * Null for the odd pattern with a placeholder inside a class or after a `\`: that one is
   * substituted as text and parsed per match, exactly as docker_auth does.
   */
  glob: Glob | null;
  slots: Placeholder[];
  labelKeys: string[];
  /** See kindMayChange: substituted and classified per match, as docker_auth does. */
  kindMayChange: boolean;
}

interface RegexPattern {
  kind: "regex";
  source: string;
  /** Literal text a match must start with (go-regexp.ts regexLiteralPrefix). */
  prefix: string;
  /** Compiled once when the pattern has no placeholder; null when it can never match. */
  fixed: GoRegexp | null | undefined;
  /**
   * With placeholders: the pattern with each one widened to `(?s:.*)`, compiled once. What it
   * rejects no substitution can match, so most rules are ruled out without compiling anything.
   */
  prefilter: GoRegexp | null;
  labelKeys: string[];
  /**
   * The body cut at its placeholders, when every label key appears once and each placeholder
   * is a whole atom (as for the prefilter): all of a user's values for a label are then tried
   * at once as one alternation, one program per (rule, label values), instead of one program
   * per value (review finding 8: 500 group labels × 10 rules cost 1.7 s per request). Null
   * otherwise: the values are then tried one combination at a time, as docker_auth does.
   */
  labelTemplate: (string | Placeholder)[] | null;
  /** See kindMayChange: substituted and classified per match, as docker_auth does. */
  kindMayChange: boolean;
}

interface Placeholder {
  whole: string;
  name: string;
  arg: string | undefined;
}

interface Rule {
  fields: Partial<Record<Field, Pattern>>;
  /** The same, as a list in FIELDS order: what every request walks (one shape for all rules). */
  fieldPatterns: [Field, Pattern][];
  ip: IpRange | undefined;
  labels: [string, Pattern][];
  grantsRequested: boolean;
  actions: Set<string>;
  description: string;
}

export interface Acl {
  rules: Rule[];
}

const PLACEHOLDER = /\$\{([a-z]+)(?::([^}]*))?\}/g;
const PLACEHOLDER_TEST = new RegExp(PLACEHOLDER.source);
/** Cartesian products of label values larger than this are not tried (bounded work per request). */
const MAX_LABEL_COMBINATIONS = 10_000;

/** Compiles config rules; every invalid regex, glob or CIDR becomes a problem at its key path. */
export function compileAcl(
  rules: readonly AclRuleConfig[],
  path: string,
): { acl: Acl; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const compiled: Rule[] = [];
  rules.forEach((rule, index) => {
    const at = `${path}.${index}`;
    const fields: Partial<Record<Field, Pattern>> = {};
    for (const field of FIELDS) {
      const source = rule.match[field];
      if (source === undefined) continue;
      const pattern = compilePattern(source, `${at}.match.${field}`, problems);
      if (pattern) fields[field] = pattern;
    }
    const labels: [string, Pattern][] = [];
    for (const [key, source] of Object.entries(rule.match.labels ?? {})) {
      const pattern = compilePattern(source, `${at}.match.labels.${key}`, problems);
      if (pattern) labels.push([key, pattern]);
    }
    let ip: IpRange | undefined;
    if (rule.match.ip !== undefined) {
      const range = parseIpRange(rule.match.ip);
      if (range) ip = range;
      else
        problems.push({
          path: `${at}.match.ip`,
          message: `not an IP address or CIDR range: ${JSON.stringify(rule.match.ip)}`,
        });
    }
    const compiledRule: Rule = {
      fields,
      fieldPatterns: FIELDS.flatMap((field): [Field, Pattern][] => {
        const pattern = fields[field];
        return pattern ? [[field, pattern]] : [];
      }),
      ip,
      labels,
      grantsRequested: rule.actions.length === 1 && rule.actions[0] === "*",
      actions: new Set(rule.actions),
      description: rule.comment ?? `${path}[${index}]`,
    };
    compiled.push(compiledRule);
  });
  return { acl: { rules: compiled }, problems };
}

/** The actions the first matching rule grants, or null when no rule matches (try the next authorizer). */
export function authorizeByAcl(acl: Acl, request: AuthzRequest): string[] | null {
  for (const rule of acl.rules) {
    if (!ruleMatches(rule, request)) continue;
    if (rule.grantsRequested) return request.actions.slice();
    return request.actions.filter((action) => rule.actions.has(action));
  }
  return null;
}

/** Whether a rule matches; exported for `regauth check-config`-style explanations and tests. */
export function ruleMatches(rule: Rule, request: AuthzRequest): boolean {
  if (rule.ip && (!request.ip || !ipInRange(request.ip.bytes, rule.ip))) return false;
  const captures = new CaptureCache(rule, request);
  for (const [field, pattern] of rule.fieldPatterns)
    if (!matchFieldWithLabels(rule, pattern, request[field], request, captures)) return false;
  for (const [key, pattern] of rule.labels) {
    const values = labelValues(request.labels, key);
    if (!values.some((value) => matchPattern(pattern, value, request, captures, null))) return false;
  }
  return true;
}

/** What aclAccountClaims and aclNamespaceClaims answer: see there. */
export interface AccountClaims {
  /** Whether a rule's pattern, other than a catch-all, singles out this account name (or namespace). */
  claims(account: string): boolean;
  /** The claiming patterns that are not plain names (globs, regexes), for a start-up warning. */
  patterns: string[];
}

/** A pattern's test for one candidate name, and whether a catch-all may be dropped (see below). */
interface Claimer {
  source: string;
  claims: (name: string) => boolean;
  /**
   * False when the test is a guess on the safe side (a label value or capture in a namespace,
   * a pattern the analysis does not understand): that it holds for every name then proves
   * nothing, and the claim stays (registration refuses every name, and the start-up warning
   * says why). True when every name it holds for is a real possibility: then holding for all of
   * them makes it a catch-all (a client-picked `${name}` in an account pattern is any text).
   */
  exact: boolean;
  /** Set when the answer depends on the pattern's source alone: equal keys are asked once. */
  key?: string;
}

/**
 * Drops exact catch-alls: a pattern that singles out every name of `everyone` singles out none.
 * Claimers with the same `key` (the same pattern, when the answer depends on nothing else) are
 * asked once: an acl_xorm table of 10,000 rows repeats a few account patterns (`/.+/`) many times.
 */
function claimsOf(claimers: Claimer[], everyone: readonly string[]): AccountClaims {
  const seen = new Set<string>();
  const unique = claimers.filter((c) => {
    if (c.key === undefined) return true;
    if (seen.has(c.key)) return false;
    seen.add(c.key);
    return true;
  });
  const kept = unique.filter((c) => !c.exact || !everyone.every((name) => c.claims(name)));
  return {
    claims: (name) => kept.some((c) => c.claims(name)),
    patterns: kept.map((c) => c.source).filter((source) => source.startsWith("/") || /[*?[\\$]/.test(source)),
  };
}

/** Placeholders whose value the client picks (the scope it asks for), or the config does not fix. */
function clientPicked(source: string, services: readonly string[] | null): boolean {
  return [...source.matchAll(PLACEHOLDER)].some(
    ([, name, arg]) =>
      (arg !== undefined && name !== "labels") ||
      (arg === undefined &&
        (name === "type" || name === "name" || (name === "service" && services === null))),
  );
}

/**
 * The account names the ACL singles out (issue 8 H1): registration must not let a stranger
 * create `deploy` when a rule gives `deploy` push, or `ci-evil` when `/^ci-/` gives pull. Every
 * rule's `account` pattern claims the names it matches, whatever the rule's other fields and
 * actions, unless it is a catch-all: a pattern that matches every name of `everyone` (a sample
 * of valid account names, src/accounts/reserved-names.ts) gives a new account nothing any
 * other account does not get. Matched as for a request by that account with no labels, for
 * every service of `services` (token.services) when the pattern has `${service}`; a placeholder
 * the client picks (`${type}`, `${name}`, a capture group, `${service}` when `services` is null)
 * stands for any text (review finding 3: `${service}-deploy` judged with service "" claimed
 * only `-deploy`, and a stranger registered `registry-deploy`).
 */
export function aclAccountClaims(
  acl: Acl,
  everyone: readonly string[],
  services: readonly string[] | null = null,
): AccountClaims {
  const accountMatches = (rule: Rule, pattern: Pattern, account: string, service: string) => {
    const request: AuthzRequest = { account, type: "", name: "", service, ip: null, actions: [], labels: {} };
    return matchFieldWithLabels(rule, pattern, account, request, new CaptureCache(rule, request));
  };
  const claimers: Claimer[] = [];
  for (const rule of acl.rules) {
    const pattern = rule.fields.account;
    if (!pattern) continue;
    const { source } = pattern;
    if (clientPicked(source, services)) {
      claimers.push(widenedAccountClaimer(pattern));
    } else if (services !== null && /\$\{service\}/.test(source)) {
      claimers.push({
        source,
        exact: true,
        claims: (account) => services.some((service) => accountMatches(rule, pattern, account, service)),
      });
    } else
      claimers.push({
        source,
        exact: true,
        claims: (account) => accountMatches(rule, pattern, account, ""),
        ...(PLACEHOLDER_TEST.test(source) ? {} : { key: source }),
      });
  }
  return claimsOf(claimers, everyone);
}

/** An account pattern with client-picked placeholders: `${account}` is the name, the others any text. */
function widenedAccountClaimer(pattern: Pattern): Claimer {
  const { source } = pattern;
  if (pattern.kindMayChange) return { source, exact: false, claims: () => true };
  if (pattern.kind === "glob") {
    const { glob, slots } = pattern;
    if (!glob) return { source, exact: false, claims: () => true };
    return {
      source,
      exact: true,
      claims: (account) =>
        globMayMatch(
          glob,
          account,
          slots.map((slot) => (slot.name === "account" && slot.arg === undefined ? account : null)),
        ),
    };
  }
  const { prefilter } = pattern;
  if (!prefilter) return { source, exact: false, claims: () => true };
  return { source, exact: true, claims: (account) => goRegexpMatches(prefilter, account) };
}

/**
 * The namespaces the ACL singles out (review finding 1): registering NAME makes its holder
 * admin of `NAME/*`, so NAME is refused whenever a rule's `name` pattern could match a
 * repository under `NAME/`, whatever the rule's account and actions; a rule for another type
 * (`registry:catalog`) names no namespace. Literal first components (`prod/*`) were all the
 * check knew before; a stranger could take `prod` for `/^prod\/.+$/`, `team-a` for
 * the glob `team-*` as first component, `ci-cache` for `${account}-cache/*` and `blue` for `${labels:team}/*`.
 *
 * Decided on the compiled pattern, as a prefix question (globMayMatchPrefix,
 * goRegexpMayMatchPrefix on `NAME/`), with every placeholder standing for any text, with one
 * exception: `${account}` as the whole first component (`${account}/*`, `/^${account}\/…/`)
 * can only stand for NAME itself (account names hold no `/`), the registrant's own namespace.
 * A pattern without placeholders that matches under every name of `everyone` (the glob star-slash-star,
 * `/.+/`, an unanchored `/prod/`) singles out none and is dropped, as for account patterns; one
 * with a label or capture placeholder that does so stays, and registration refuses every name
 * (a label value can be any namespace; the start-up warning names the rule).
 */
export function aclNamespaceClaims(acl: Acl, everyone: readonly string[]): AccountClaims {
  const claimers: Claimer[] = [];
  for (const rule of acl.rules) {
    const pattern = rule.fields.name;
    if (!pattern || !mayBeRepositoryRule(rule)) continue;
    const claimer = namespaceClaimer(pattern);
    if (claimer) claimers.push({ ...claimer, key: pattern.source });
  }
  return claimsOf(claimers, everyone);
}

/** False for a rule whose `type` (without placeholders) does not match `repository`. */
function mayBeRepositoryRule(rule: Rule): boolean {
  const type = rule.fields.type;
  if (!type) return true;
  if (type.kind === "glob") return !type.glob || type.slots.length > 0 || matchGlob(type.glob, "repository");
  return type.fixed === undefined || (type.fixed !== null && goRegexpMatches(type.fixed, "repository"));
}

const SELF_ACCOUNT_REGEX = /^(?:\^|\\A)\$\{account\}(?:\/|\\\/)/;

function namespaceClaimer(pattern: Pattern): Claimer | null {
  const { source, prefix } = pattern;
  // The literal start of every match rules out most names with two startsWith.
  const fits = (start: string) => start.startsWith(prefix) || prefix.startsWith(start);
  if (pattern.kindMayChange) return { source, exact: false, claims: () => true };
  if (pattern.kind === "glob") {
    const { glob, slots } = pattern;
    if (!glob) return { source, exact: false, claims: () => true };
    const [first, second] = glob.chunks[0]?.items ?? [];
    if (
      glob.chunks[0]?.star === false &&
      first?.kind === "slot" &&
      slots[first.slot]?.name === "account" &&
      slots[first.slot]?.arg === undefined &&
      second?.kind === "text" &&
      second.text.startsWith("/")
    )
      return null; // ${account}/…: the registrant's own namespace
    const isAccount = (slot: Placeholder) => slot.name === "account" && slot.arg === undefined;
    const test = globPrefixTest(
      glob,
      slots.map((slot) => (isAccount(slot) ? ANY_SEGMENT : null)),
    );
    return {
      source,
      // Any account name is a real value of `${account}`; other placeholders are guesses.
      exact: slots.every(isAccount),
      claims: (name) => fits(`${name}/`) && test(`${name}/`),
    };
  }
  if (pattern.fixed !== undefined) {
    const fixed = pattern.fixed;
    if (fixed === null) return null; // never matches
    const test = goRegexpPrefixTest(fixed);
    return { source, exact: true, claims: (name) => fits(`${name}/`) && test(`${name}/`) };
  }
  const body = regexBody(source);
  if (SELF_ACCOUNT_REGEX.test(body)) return null;
  // The prefilter with `${account}` as any run without `/` (account names hold none): widened
  // to any text, `${account}-cache/*` would claim every name (`a/` + `-cache/`).
  const placeholders = [...body.matchAll(PLACEHOLDER)];
  const widened = widenPlaceholders(
    body,
    placeholders.map((m) => ({
      start: m.index,
      end: m.index + m[0].length,
      ...(m[0] === "${account}" ? { widenTo: "[^/]*" } : {}),
    })),
  );
  const probe = pattern.prefilter && widened !== null ? compileGoRegexp(widened) : null;
  if (!probe) return { source, exact: false, claims: () => true };
  const test = goRegexpPrefixTest(probe);
  return {
    source,
    exact: placeholders.every((m) => m[0] === "${account}"),
    claims: (name) => fits(`${name}/`) && test(`${name}/`),
  };
}

/**
 * One field's pattern, as docker_auth's matchStringWithLabelPermutations: plain first, then the
 * cartesian product of the values of the label placeholders in this pattern. Each field picks
 * its own combination: `${labels:team}` may stand for one team in `account` and another in `name`.
 */
function matchFieldWithLabels(
  rule: Rule,
  pattern: Pattern,
  value: string,
  request: AuthzRequest,
  captures: CaptureCache,
): boolean {
  if (matchPattern(pattern, value, request, captures, null)) return true;
  if (pattern.labelKeys.length === 0) return false;
  const valueLists = pattern.labelKeys.map((key) => labelValues(request.labels, key));
  if (valueLists.some((values) => values.length === 0)) return false;
  if (pattern.kind === "regex" && pattern.labelTemplate)
    return matchLabelAlternation(rule, pattern, pattern.labelTemplate, value, request, captures);
  const total = valueLists.reduce((n, values) => n * values.length, 1);
  if (total > MAX_LABEL_COMBINATIONS) {
    log.warn("acl label placeholders expand to too many combinations; rule skipped", {
      rule: rule.description,
      combinations: total,
    });
    return false;
  }
  const choice = new Map<string, string>();
  for (let n = 0; n < total; n++) {
    let rest = n;
    pattern.labelKeys.forEach((key, i) => {
      const values = valueLists[i] as readonly string[];
      choice.set(key, values[rest % values.length] as string);
      rest = Math.floor(rest / values.length);
    });
    if (matchPattern(pattern, value, request, captures, choice)) return true;
  }
  return false;
}

/**
 * Every combination of label values at once: each `${labels:KEY}` (one per key, see
 * labelTemplate) becomes `(?:v1|v2|…)` of the quoted values, which matches exactly when some
 * value does, since no value is tied to another occurrence. One program per (rule, values),
 * kept in a small cache of its own (these programs are large); the quoted alternation is kept
 * per values array, so the 64 scopes of one request build it once.
 */
function matchLabelAlternation(
  rule: Rule,
  pattern: RegexPattern,
  template: readonly (string | Placeholder)[],
  value: string,
  request: AuthzRequest,
  captures: CaptureCache,
): boolean {
  if (pattern.prefilter && !goRegexpMatches(pattern.prefilter, value)) return false;
  let body = "";
  for (const part of template) {
    if (typeof part === "string") body += part;
    else if (part.name === "labels" && part.arg !== undefined) {
      const alternation = quotedAlternation(labelValues(request.labels, part.arg));
      if (alternation === null) {
        log.warn("acl label placeholder has too many values; rule skipped", {
          rule: rule.description,
          label: part.arg,
        });
        return false;
      }
      body += alternation;
    } else {
      const resolved = resolvePlaceholder(part, request, captures, null);
      body += resolved === undefined ? part.whole : quoteMeta(resolved);
    }
  }
  const compiled = labelRegexpCache.get(body);
  return compiled !== null && goRegexpMatches(compiled, value);
}

/** Bounds on one label's alternation: what one request may make the server compile. */
const MAX_LABEL_VALUES = MAX_LABEL_COMBINATIONS;
const MAX_ALTERNATION_LENGTH = 256 * 1024;
const alternations = new WeakMap<readonly string[], string | null>();

function quotedAlternation(values: readonly string[]): string | null {
  let alternation = alternations.get(values);
  if (alternation === undefined) {
    alternation = null;
    if (values.length <= MAX_LABEL_VALUES) {
      const text = `(?:${values.map(quoteMeta).join("|")})`;
      if (text.length <= MAX_ALTERNATION_LENGTH) alternation = text;
    }
    alternations.set(values, alternation);
  }
  return alternation;
}

/**
 * A user's values for one label. Own properties only: a rule on a label named `constructor` or
 * `toString` must see "no such label", not Object.prototype's function (which threw → 500).
 */
function labelValues(labels: Labels, key: string): readonly string[] {
  const values = Object.hasOwn(labels, key) ? labels[key] : undefined;
  return Array.isArray(values) ? values : [];
}

function matchPattern(
  pattern: Pattern,
  value: string,
  request: AuthzRequest,
  captures: CaptureCache,
  labelChoice: Map<string, string> | null,
): boolean {
  // Literal text every match starts with ("" when unknown): most rules end here.
  if (!value.startsWith(pattern.prefix)) return false;
  if (pattern.kindMayChange) return matchSubstituted(pattern, value, request, captures, labelChoice);
  return pattern.kind === "glob"
    ? matchGlobPattern(pattern, value, request, captures, labelChoice)
    : matchRegexPattern(pattern, value, request, captures, labelChoice);
}

/**
 * docker_auth's matchString: substitute, then `/…/` (longer than 2) is a regex, anything else
 * a glob. For the few patterns whose kind depends on the values (kindMayChange) that decision
 * is made here per match (review finding 5: `/${labels:project}/` with an empty value is the
 * glob `//` in docker_auth, which matches nothing, not the empty regex, which matches all).
 */
function matchSubstituted(
  pattern: Pattern,
  value: string,
  request: AuthzRequest,
  captures: CaptureCache,
  labelChoice: Map<string, string> | null,
): boolean {
  const source = substitute(pattern.source, (placeholder) =>
    resolvePlaceholder(placeholder, request, captures, labelChoice),
  );
  if (isRegexSource(source)) {
    const compiled = regexpCache.get(regexBody(source));
    return compiled !== null && goRegexpMatches(compiled, value);
  }
  const glob = parseGlob(source);
  return glob !== null && matchGlob(glob, value);
}

function isRegexSource(source: string): boolean {
  return source.length > 2 && source.startsWith("/") && source.endsWith("/");
}

/**
 * Whether substituting placeholders can turn a regex source into a glob or back (docker_auth
 * decides after substituting): a `/…/` whose body is nothing but placeholders becomes `//` when
 * they are all empty; a glob that starts with `/` or a placeholder and ends with `/` or a
 * placeholder can become `/…/` (a label value or capture may hold a `/`).
 */
function kindMayChange(source: string, placeholders: readonly RegExpMatchArray[]): boolean {
  if (placeholders.length === 0) return false;
  if (isRegexSource(source)) return regexBody(source).replace(PLACEHOLDER, "") === "";
  const first = placeholders[0] as RegExpMatchArray;
  const last = placeholders[placeholders.length - 1] as RegExpMatchArray;
  const startsOpen = source.startsWith("/") || first.index === 0;
  const endsOpen = source.endsWith("/") || (last.index as number) + last[0].length === source.length;
  return startsOpen && endsOpen;
}

function matchGlobPattern(
  pattern: GlobPattern,
  value: string,
  request: AuthzRequest,
  captures: CaptureCache,
  labelChoice: Map<string, string> | null,
): boolean {
  if (!pattern.glob) {
    const glob = parseGlob(
      substitute(pattern.source, (placeholder) =>
        resolvePlaceholder(placeholder, request, captures, labelChoice),
      ),
    );
    return glob !== null && matchGlob(glob, value);
  }
  if (pattern.slots.length === 0) return matchGlob(pattern.glob, value);
  // An unresolved placeholder stays as its own text, which has no glob syntax (compilePattern).
  const values: string[] = [];
  for (const slot of pattern.slots)
    values.push(resolvePlaceholder(slot, request, captures, labelChoice) ?? slot.whole);
  return matchGlob(pattern.glob, value, values);
}

function matchRegexPattern(
  pattern: RegexPattern,
  value: string,
  request: AuthzRequest,
  captures: CaptureCache,
  labelChoice: Map<string, string> | null,
): boolean {
  if (pattern.fixed !== undefined) return pattern.fixed !== null && goRegexpMatches(pattern.fixed, value);
  if (pattern.prefilter && !goRegexpMatches(pattern.prefilter, value)) return false;
  const source = substitute(pattern.source, (placeholder) =>
    resolvePlaceholder(placeholder, request, captures, labelChoice),
  );
  const compiled = regexpCache.get(regexBody(source));
  return compiled !== null && goRegexpMatches(compiled, value);
}

/** A placeholder's value for this request (unquoted), or undefined when it stays literal text. */
function resolvePlaceholder(
  { name, arg }: Placeholder,
  request: AuthzRequest,
  captures: CaptureCache,
  labelChoice: Map<string, string> | null,
): string | undefined {
  if (arg === undefined) return isField(name) ? request[name] : undefined;
  if (name === "labels") return labelChoice?.get(arg);
  if (isField(name) && /^[0-9]+$/.test(arg)) return captures.get(name, Number(arg));
  return undefined;
}

function isField(name: string): name is Field {
  return (FIELDS as readonly string[]).includes(name);
}

/** docker_auth's text substitution: each resolved placeholder replaced by its QuoteMeta'd value. */
function substitute(source: string, resolve: (placeholder: Placeholder) => string | undefined): string {
  return source.replace(PLACEHOLDER, (whole: string, name: string, arg: string | undefined) => {
    const value = resolve({ whole, name, arg });
    return value === undefined ? whole : quoteMeta(value);
  });
}

/** Capture groups of a field's own /regex/ against the request's value, computed once per request. */
class CaptureCache {
  // Made on first use: most rules never ask, and one is made per rule per request.
  private groups: Map<Field, string[] | null> | undefined;
  constructor(
    private readonly rule: Rule,
    private readonly request: AuthzRequest,
  ) {}

  get(field: Field, index: number): string | undefined {
    this.groups ??= new Map();
    let groups = this.groups.get(field);
    if (groups === undefined) {
      groups = null;
      const pattern = this.rule.fields[field];
      if (pattern?.kind === "regex") {
        // The field's own pattern with its plain placeholders filled in (not labels or captures).
        const compiled =
          pattern.fixed !== undefined
            ? pattern.fixed
            : regexpCache.get(
                regexBody(
                  substitute(pattern.source, ({ name, arg }) =>
                    arg === undefined && isField(name) ? this.request[name] : undefined,
                  ),
                ),
              );
        if (compiled) groups = goRegexpSubmatches(compiled, this.request[field]);
      }
      this.groups.set(field, groups);
    }
    // Group 0 (the whole match) is out of range too, as in docker_auth (index < 1).
    if (!groups || index < 1 || index >= groups.length) {
      if (groups) log.warn("acl capture group out of range", { field, index });
      return undefined;
    }
    return groups[index];
  }
}

/** Glob syntax a placeholder's own text must not contain to be a literal slot: see GlobPattern. */
const GLOB_SYNTAX = /[*?[\\]/;
const PLACEHOLDER_AT = new RegExp(PLACEHOLDER.source, "y");

function compilePattern(source: string, path: string, problems: ConfigProblem[]): Pattern | null {
  const isRegex = isRegexSource(source);
  const placeholders = [...source.matchAll(PLACEHOLDER)];
  const mayChange = kindMayChange(source, placeholders);
  const labelKeys = [
    ...new Set(placeholders.filter((m) => m[1] === "labels" && m[2]).map((m) => m[2] as string)),
  ];
  const invalid = () => {
    problems.push({
      path,
      message: isRegex
        ? `invalid regular expression ${source}`
        : `invalid glob pattern ${JSON.stringify(source)}`,
    });
    return null;
  };
  // Placeholders are validated as a plain word, which is how they look after quoting.
  const probeSource = source.replace(PLACEHOLDER, "x");
  if (isRegex) {
    const probe = compileGoRegexp(regexBody(probeSource));
    if (probe === null) return invalid();
    if (placeholders.length === 0)
      return {
        kind: "regex",
        source,
        fixed: probe,
        prefilter: null,
        prefix: regexLiteralPrefix(regexBody(source)),
        labelKeys,
        labelTemplate: null,
        kindMayChange: false,
      };
    // An unresolved placeholder stays as its own text, which must be plain for the widening.
    const plain = placeholders.every((m) => /^\$\{[a-z]+(?::[A-Za-z0-9_.-]*)?\}$/.test(m[0]));
    const widened = plain
      ? widenPlaceholders(
          regexBody(source),
          placeholders.map((m) => ({ start: m.index - 1, end: m.index - 1 + m[0].length })),
        )
      : null;
    const prefilter = widened === null ? null : compileGoRegexp(widened);
    // The prefix of the widened pattern holds for every substitution (a placeholder ends it).
    const prefix = widened === null ? "" : regexLiteralPrefix(widened);
    const labelNames = placeholders.filter((m) => m[1] === "labels").map((m) => m[2]);
    const labelTemplate =
      prefilter !== null &&
      !mayChange &&
      labelKeys.length > 0 &&
      new Set(labelNames).size === labelNames.length
        ? templateOf(regexBody(source))
        : null;
    return {
      kind: "regex",
      source,
      prefix: mayChange ? "" : prefix,
      fixed: undefined,
      prefilter,
      labelKeys,
      labelTemplate,
      kindMayChange: mayChange,
    };
  }
  const slots: Placeholder[] = [];
  const slotStarts: number[] = [];
  const { units } = globUnits(source, (text, index) => {
    PLACEHOLDER_AT.lastIndex = index;
    const found = PLACEHOLDER_AT.exec(text);
    if (!found || GLOB_SYNTAX.test(found[0])) return null;
    slotStarts.push(index);
    slots.push({ whole: found[0], name: found[1] as string, arg: found[2] });
    return { slot: slots.length - 1, length: found[0].length };
  });
  // Slots only when they are exactly the placeholders docker_auth's text substitution replaces.
  const asSlots = slotStarts.join() === placeholders.map((m) => m.index).join();
  const glob = asSlots ? parseGlobUnits(units) : null;
  if (asSlots ? glob === null : parseGlob(probeSource) === null) return invalid();
  // A glob that may turn into an unanchored regex has no literal start.
  const prefix = glob && !mayChange ? globPrefix(glob) : "";
  return {
    kind: "glob",
    source,
    prefix,
    glob,
    slots: asSlots ? slots : [],
    labelKeys,
    kindMayChange: mayChange,
  };
}

/** A body cut at its placeholders: literal text and placeholders, in order. */
function templateOf(body: string): (string | Placeholder)[] {
  const parts: (string | Placeholder)[] = [];
  let at = 0;
  for (const m of body.matchAll(PLACEHOLDER)) {
    parts.push(body.slice(at, m.index));
    parts.push({ whole: m[0], name: m[1] as string, arg: m[2] });
    at = m.index + m[0].length;
  }
  parts.push(body.slice(at));
  return parts.filter((part) => part !== "");
}

function regexBody(source: string): string {
  return source.slice(1, -1);
}

/**
 * Compiled regexes of patterns with placeholders, keyed by their substituted text. Two
 * generations: a hit in the old one moves the entry to the new one, and a full new generation
 * becomes the old one (the oldest is dropped whole), so lookups and eviction are O(1) and the
 * working set of recent (rule, values) pairs stays compiled. Clearing everything when full, as
 * before, made 5,000 such rules with a few accounts recompile on every request (issue 9 item 7).
 * At most 2 × 2,048 programs of a few KiB each.
 */
class RegexpCache {
  private current = new Map<string, GoRegexp | null>();
  private previous = new Map<string, GoRegexp | null>();
  constructor(private readonly generationSize: number) {}

  get(body: string): GoRegexp | null {
    let compiled = this.current.get(body);
    if (compiled !== undefined) return compiled;
    compiled = this.previous.get(body);
    if (compiled === undefined) compiled = compileGoRegexp(body);
    if (this.current.size >= this.generationSize) {
      this.previous = this.current;
      this.current = new Map();
    }
    this.current.set(body, compiled);
    return compiled;
  }
}

const regexpCache = new RegexpCache(2048);
/** Label alternations (labelTemplate): up to 2 × 64 programs, each up to MAX_ALTERNATION_LENGTH of source. */
const labelRegexpCache = new RegexpCache(64);
