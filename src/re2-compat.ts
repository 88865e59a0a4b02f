/**
 * docker_auth's ACL regexes are Go RE2; regauth runs them with JavaScript's engine. This module
 * makes the two agree or refuses the pattern: RE2 spellings JavaScript lacks are translated,
 * and what would silently change meaning, or backtrack exponentially on a client-chosen name, is
 * refused at config load instead of being guessed at.
 */
import { escapeRegExp } from "./glob.ts";

/** ASCII classes of RE2's `[[:name:]]` (re2/syntax: POSIX classes are ASCII-only). */
const POSIX_CLASSES: Record<string, string> = {
  alnum: "0-9A-Za-z",
  alpha: "A-Za-z",
  ascii: "\\x00-\\x7f",
  blank: "\\t ",
  cntrl: "\\x00-\\x1f\\x7f",
  digit: "0-9",
  graph: "!-~",
  lower: "a-z",
  print: " -~",
  punct: "!-\\/:-@\\[-`{-~",
  space: "\\t\\n\\v\\f\\r ",
  upper: "A-Z",
  word: "0-9A-Za-z_",
  xdigit: "0-9A-Fa-f",
};

/** Characters JavaScript's `u` mode accepts after a backslash as themselves. */
const SYNTAX_CHARACTERS = new Set("^$\\.*+?()[]{}|/");

/**
 * Compiles the inside of a `/.../` ACL pattern, or returns null when it cannot be run with the
 * meaning RE2 gives it. Handles `(?P<name>`, leading `(?ims)`, `\A`, `\z`, `\Q...\E`, POSIX
 * classes, and escaped punctuation; refuses lookaround and backreferences (RE2 has neither).
 */
export function compileGoRegex(inner: string): RegExp | null {
  let body = inner.replaceAll("(?P<", "(?<");
  let flags = "";
  const leading = /^\(\?([ims]+)\)/.exec(body);
  if (leading) {
    flags = [...new Set(leading[1])].join("");
    body = body.slice(leading[0].length);
  }
  if (/\(\?<?[=!]|\\[1-9]/.test(body)) return null;
  const translated = translateRe2(body);
  if (translated === null) return null;
  try {
    // Always `u`: without it, unknown escapes such as `\z` silently become literals.
    return new RegExp(translated, `${flags}u`);
  } catch {
    return null;
  }
}

function translateRe2(body: string): string | null {
  let out = "";
  let inClass = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i] as string;
    if (c === "\\") {
      const next = body[i + 1];
      if (next === undefined) return null;
      i++;
      if (next === "Q" && !inClass) {
        // \Q...\E: everything up to \E (or the end) is literal.
        const end = body.indexOf("\\E", i + 1);
        const literal = body.slice(i + 1, end === -1 ? body.length : end);
        out += escapeRegExp(literal);
        i = end === -1 ? body.length : end + 1;
      } else if (next === "A" && !inClass) {
        out += "(?<![\\s\\S])"; // start of text, whatever the m flag says
      } else if (next === "z" && !inClass) {
        out += "(?![\\s\\S])"; // end of text
      } else if (/[!-/:-@[-`{-~]/.test(next) && !SYNTAX_CHARACTERS.has(next) && !(inClass && next === "-")) {
        // RE2 lets any punctuation be escaped; `u` mode only syntax characters.
        out += `\\x${next.charCodeAt(0).toString(16).padStart(2, "0")}`;
      } else {
        out += `\\${next}`;
      }
    } else if (inClass && c === "[" && body[i + 1] === ":") {
      const end = body.indexOf(":]", i + 2);
      const ranges = end === -1 ? undefined : POSIX_CLASSES[body.slice(i + 2, end)];
      if (ranges === undefined) return null;
      out += ranges;
      i = end + 1;
    } else if (c === "[" && !inClass) {
      inClass = true;
      out += c;
      // A `]` right after `[` or `[^` is a literal in RE2.
      if (body[i + 1] === "^") {
        out += "^";
        i++;
      }
      if (body[i + 1] === "]") {
        out += "\\]";
        i++;
      }
    } else if (c === "]" && inClass) {
      inClass = false;
      out += c;
    } else {
      out += c;
    }
  }
  return out;
}

/**
 * Whether a regex has a group with an unbounded quantifier inside that is itself unboundedly
 * quantified, like `(a+)+` or `([a-z]+[-.]?)*`: the shape of most catastrophic-backtracking
 * patterns. RE2 runs them in linear time, JavaScript does not, and ACL patterns meet
 * client-chosen names. A heuristic: it also flags some harmless patterns such as `(\w+/)*`.
 */
export function hasNestedQuantifier(body: string): boolean {
  const isUnboundedAt = (i: number) =>
    body[i] === "*" || body[i] === "+" || (body[i] === "{" && /^\{\d*,\}/.test(body.slice(i)));
  // One flag per open group: does it contain an unbounded quantifier?
  const groups: boolean[] = [false];
  let i = 0;
  while (i < body.length) {
    const c = body[i];
    if (c === "\\") {
      i += 2;
    } else if (c === "[") {
      i++;
      if (body[i] === "^") i++;
      if (body[i] === "]") i++;
      while (i < body.length && body[i] !== "]") i += body[i] === "\\" ? 2 : 1;
      i++;
    } else if (c === "(") {
      groups.push(false);
      i++;
    } else if (c === ")") {
      const containsUnbounded = groups.length > 1 ? (groups.pop() as boolean) : false;
      i++;
      if (containsUnbounded && isUnboundedAt(i)) return true;
      if (containsUnbounded || isUnboundedAt(i)) groups[groups.length - 1] = true;
    } else {
      if (isUnboundedAt(i)) groups[groups.length - 1] = true;
      i++;
    }
  }
  return false;
}
