/**
 * The static ACL, evaluated exactly as cesanta/docker_auth does (auth_server/authz/acl.go):
 * rules in order, the first whose every given `match` field matches decides; `actions: ["*"]`
 * grants whatever was asked, otherwise the intersection of asked and listed; `[]` denies and stops.
 *
 * Patterns: `/.../` is an unanchored regular expression, anything else a Go path.Match glob over
 * the whole string. `${account}`, `${type}`, `${name}`, `${service}` are replaced by the request's
 * values quoted with QuoteMeta; `${field:N}` by capture group N of that field's own regex;
 * `${labels:KEY}` is tried with every value of the user's label KEY once plain matching fails.
 * One deliberate difference: label values and capture groups are quoted too, so a label such as
 * `*` or `.+` coming from LDAP or a hook, or an account `*@corp` captured by `/^(.+)@corp$/`,
 * cannot widen a rule (docker_auth inserts both raw).
 */
import type { ConfigProblem } from "./errors.ts";
import { compileGlob, quoteMeta } from "./glob.ts";
import { compileGoRegex, hasNestedQuantifier, translateGoRegex } from "./re2-compat.ts";
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

interface Pattern {
  source: string;
  isRegex: boolean;
  /** Compiled once when the pattern has no placeholder; null when it can never match. */
  fixed: RegExp | null | undefined;
  labelKeys: string[];
}

interface Rule {
  fields: Partial<Record<Field, Pattern>>;
  ip?: IpRange;
  labels: [string, Pattern][];
  grantsRequested: boolean;
  actions: Set<string>;
  description: string;
}

export interface Acl {
  rules: Rule[];
}

const PLACEHOLDER = /\$\{([a-z]+)(?::([^}]*))?\}/g;
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
      labels,
      grantsRequested: rule.actions.length === 1 && rule.actions[0] === "*",
      actions: new Set(rule.actions),
      description: rule.comment ?? `${path}[${index}]`,
    };
    if (ip) compiledRule.ip = ip;
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
  for (const field of FIELDS) {
    const pattern = rule.fields[field];
    if (pattern && !matchFieldWithLabels(rule, pattern, request[field], request, captures)) return false;
  }
  for (const [key, pattern] of rule.labels) {
    const values = labelValues(request.labels, key);
    if (!values.some((value) => matchPattern(pattern, value, request, captures, null))) return false;
  }
  return true;
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
  if (pattern.fixed !== undefined) return pattern.fixed !== null && pattern.fixed.test(value);
  const source = pattern.source.replace(PLACEHOLDER, (whole, name: string, arg: string | undefined) => {
    if (arg === undefined) return FIELDS.includes(name as Field) ? quoteMeta(request[name as Field]) : whole;
    if (name === "labels") {
      const chosen = labelChoice?.get(arg);
      return chosen === undefined ? whole : quoteMeta(chosen);
    }
    if (FIELDS.includes(name as Field) && /^[0-9]+$/.test(arg)) {
      const group = captures.get(name as Field, Number(arg));
      return group === undefined ? whole : quoteMeta(group);
    }
    return whole;
  });
  const compiled = cachedCompile(source, pattern.isRegex);
  return compiled !== null && compiled.test(value);
}

/** Capture groups of a field's own /regex/ against the request's value, computed once per request. */
class CaptureCache {
  private readonly groups = new Map<Field, string[] | null>();
  constructor(
    private readonly rule: Rule,
    private readonly request: AuthzRequest,
  ) {}

  get(field: Field, index: number): string | undefined {
    let groups = this.groups.get(field);
    if (groups === undefined) {
      groups = null;
      const pattern = this.rule.fields[field];
      if (pattern?.isRegex) {
        const source = pattern.source.replace(PLACEHOLDER, (whole, name: string, arg: string | undefined) =>
          arg === undefined && FIELDS.includes(name as Field)
            ? quoteMeta(this.request[name as Field])
            : whole,
        );
        const match = cachedCompile(source, true)?.exec(this.request[field]);
        if (match) groups = match.map((g) => g ?? "");
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

function compilePattern(source: string, path: string, problems: ConfigProblem[]): Pattern | null {
  const isRegex = source.length > 2 && source.startsWith("/") && source.endsWith("/");
  const labelKeys = [
    ...new Set(
      [...source.matchAll(PLACEHOLDER)].filter((m) => m[1] === "labels" && m[2]).map((m) => m[2] as string),
    ),
  ];
  const hasPlaceholder = PLACEHOLDER.test(source);
  PLACEHOLDER.lastIndex = 0;
  // Validate with placeholders replaced by a plain word, which is how they look after quoting.
  const probeSource = source.replace(PLACEHOLDER, "x");
  const probe = compile(probeSource, isRegex);
  if (probe === null) {
    problems.push({
      path,
      message: isRegex
        ? `invalid regular expression ${source}`
        : `invalid glob pattern ${JSON.stringify(source)}`,
    });
    return null;
  }
  // Checked on the translation, which is what JavaScript runs: in RE2 text a `\Q)\E` looks like
  // the end of a group.
  if (isRegex && hasNestedQuantifier(translateGoRegex(probeSource.slice(1, -1))?.source ?? "")) {
    // A warning is not enough: one crafted repository name of ~50 characters would stall the
    // server for minutes (docker_auth's RE2 runs the same pattern in linear time).
    problems.push({
      path,
      message: `regular expression ${source} repeats a group that contains a repeat, an optional part or an alternative (like (a+)+, (x+){1,50}, (a?a)* or (a|ab)*); JavaScript can take exponential time on a crafted name. Rewrite it without the nesting, e.g. ^[a-z0-9][-_.a-z0-9]*$ for ([a-z0-9]+[-_.]?)+, or [ab]* for (a|b)*`,
    });
    return null;
  }
  return { source, isRegex, fixed: hasPlaceholder ? undefined : probe, labelKeys };
}

const dynamicCache = new Map<string, RegExp | null>();
const MAX_DYNAMIC_CACHE = 4096;

function cachedCompile(source: string, isRegex: boolean): RegExp | null {
  const key = (isRegex ? "r" : "g") + source;
  let compiled = dynamicCache.get(key);
  if (compiled === undefined) {
    compiled = compile(source, isRegex);
    if (dynamicCache.size >= MAX_DYNAMIC_CACHE) dynamicCache.clear();
    dynamicCache.set(key, compiled);
  }
  return compiled;
}

function compile(source: string, isRegex: boolean): RegExp | null {
  if (!isRegex) return compileGlob(source);
  return compileGoRegex(source.slice(1, -1));
}
