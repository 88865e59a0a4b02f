/**
 * Scope parsing per distribution docs/spec/auth/scope.md.
 *
 *   scope         := resourcescope [ ' ' resourcescope ]*
 *   resourcescope := resourcetype ":" resourcename ":" action [ ',' action ]*
 *
 * A resource name may carry one ':' (a registry host with a port), so a scope has three or four
 * ':'-separated parts, as docker_auth accepts (server.go parseScope).
 */
import { BadRequest } from "./errors.ts";

export interface Scope {
  /** Resource type without the class: `repository`, `registry`. */
  type: string;
  /** Resource class from `repository(plugin)`; the registry ignores it (scope.md), we keep it. */
  class?: string;
  name: string;
  /** Requested actions, de-duplicated and sorted. */
  actions: string[];
}

/** More resources than this in one request is refused: each one grows the token (~90 bytes). */
export const MAX_SCOPES_PER_REQUEST = 64;

/** distribution reference: NameTotalLengthMax. */
const MAX_NAME_LENGTH = 255;

const RESOURCE_TYPE = /^([a-z0-9]+)(?:\(([a-z0-9]+)\))?$/;
// hostname [':' port] '/' then path components; the grammar of scope.md with `__` and `-*` separators.
const HOST_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const PATH_COMPONENT = "[a-z0-9]+(?:(?:[_.]|__|-+)[a-z0-9]+)*";
const RESOURCE_NAME = new RegExp(
  `^(?:${HOST_COMPONENT}(?:\\.${HOST_COMPONENT})*(?::[0-9]+)?/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`,
);
// scope.md says /[a-z]*/; `*` is what the registry itself asks for on the catalog, and
// Harbor-style hyphenated actions (scanner-pull) exist in the wild.
const ACTION = /^(?:\*|[a-z][a-z-]*)$/;
// NUL, CR, LF, TAB and other C0 controls never belong in a scope and would forge log lines.
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Parses every `scope` value of a request. GET repeats the parameter; POST and some clients
 * space-join several scopes in one value, so each value is split on spaces too (GitLab #425045).
 * Scopes naming the same resource are merged. Throws BadRequest on anything malformed.
 */
export function parseScopes(values: readonly string[]): Scope[] {
  if (values.length > MAX_SCOPES_PER_REQUEST) throw tooMany(values.length);
  const byResource = new Map<string, Scope>();
  for (const value of values) {
    if (value === "") continue; // `scope=` with nothing: an authentication-only request.
    if (CONTROL.test(value)) throw new BadRequest("scope contains a control character");
    for (const piece of value.split(" ")) {
      if (piece === "") throw new BadRequest(`malformed scope ${quoted(value)}: empty item`);
      const scope = parseOneScope(piece);
      const key = `${scope.type}\u0000${scope.name}`;
      const seen = byResource.get(key);
      if (seen) {
        seen.actions = sortedUnique([...seen.actions, ...scope.actions]);
        seen.class ??= scope.class;
      } else {
        byResource.set(key, scope);
        if (byResource.size > MAX_SCOPES_PER_REQUEST) throw tooMany(byResource.size);
      }
    }
  }
  return [...byResource.values()];
}

/**
 * Whether `name` is a repository name in the registry's own grammar (distribution
 * reference.NameRegexp, which its routes match): path components, optionally after a host
 * component such as `localhost:5000/` or `Team.example/`, at most 255 characters. Whatever this
 * accepts, a token may grant and the registry may then notify and list.
 */
export function isResourceName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_NAME_LENGTH && RESOURCE_NAME.test(name);
}

function parseOneScope(text: string): Scope {
  const parts = text.split(":");
  let typePart: string;
  let name: string;
  let actionsPart: string;
  if (parts.length === 3) {
    [typePart, name, actionsPart] = parts as [string, string, string];
  } else if (parts.length === 4) {
    typePart = parts[0] as string;
    name = `${parts[1]}:${parts[2]}`;
    actionsPart = parts[3] as string;
  } else {
    throw new BadRequest(`invalid scope ${quoted(text)}: expected type:name:actions`);
  }
  const type = RESOURCE_TYPE.exec(typePart);
  if (!type) throw new BadRequest(`invalid scope ${quoted(text)}: bad resource type`);
  if (!isResourceName(name)) {
    throw new BadRequest(`invalid scope ${quoted(text)}: bad resource name`);
  }
  const actions: string[] = [];
  for (const action of actionsPart.split(",")) {
    if (action === "") continue;
    if (!ACTION.test(action)) throw new BadRequest(`invalid scope ${quoted(text)}: bad action`);
    actions.push(action);
  }
  const scope: Scope = { type: type[1] as string, name, actions: sortedUnique(actions) };
  if (type[2] !== undefined) scope.class = type[2];
  return scope;
}

/** Sorted copy without duplicates; the token lists actions this way (docker_auth sorts too). */
export function sortedUnique(items: readonly string[]): string[] {
  return [...new Set(items)].sort();
}

/** Longest piece of a rejected scope echoed back in an error message. */
const MAX_ECHOED_CHARS = 80;

/** The scope as a JSON string, shortened: the client sent it, so it need not read it back whole. */
function quoted(text: string): string {
  return JSON.stringify(text.length > MAX_ECHOED_CHARS ? `${text.slice(0, MAX_ECHOED_CHARS)}…` : text);
}

function tooMany(count: number): BadRequest {
  return new BadRequest(
    `too many scopes (${count}); at most ${MAX_SCOPES_PER_REQUEST} per request`,
    "TOO_MANY_SCOPES",
  );
}
