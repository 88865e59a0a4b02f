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

/**
 * RE2's Perl classes, which are ASCII (re2/syntax: `\s` is `[\t\n\f\r ]`, no `\v`). JavaScript's
 * `\s` adds Unicode spaces such as U+00A0, so they are spelled out.
 */
const PERL_CLASSES: Record<string, string> = { d: "0-9", s: "\\t\\n\\f\\r ", w: "0-9A-Za-z_" };

/** Characters JavaScript's `u` mode accepts after a backslash as themselves. */
const SYNTAX_CHARACTERS = new Set("^$\\.*+?()[]{}|/");

/**
 * Compiles the inside of a `/.../` ACL pattern, or returns null when it cannot be run with the
 * meaning RE2 gives it. Handles `(?P<name>`, leading `(?ims)`, `\A`, `\z`, `\Q...\E`, POSIX
 * classes, and escaped punctuation; refuses lookaround and backreferences (RE2 has neither).
 */
export function compileGoRegex(inner: string): RegExp | null {
  const translated = translateGoRegex(inner);
  if (translated === null) return null;
  try {
    // Always `u`: without it, unknown escapes such as `\z` silently become literals.
    return new RegExp(translated.source, `${translated.flags}u`);
  } catch {
    return null;
  }
}

/**
 * The JavaScript source and flags (without `u`) that keep the meaning RE2 gives `inner`, or null
 * when there is none. Exported so the backtracking check looks at what JavaScript will run,
 * not at RE2 text whose `\Q)\E` would fool a parenthesis count.
 */
export function translateGoRegex(inner: string): { source: string; flags: string } | null {
  let body = inner.replaceAll("(?P<", "(?<");
  let flags = "";
  const leading = /^\(\?([ims]+)\)/.exec(body);
  if (leading) {
    flags = [...new Set(leading[1])].join("");
    body = body.slice(leading[0].length);
  }
  if (/\(\?<?[=!]|\\[1-9]/.test(body)) return null;
  const source = translateRe2(body, flags.includes("s"));
  return source === null ? null : { source, flags };
}

function translateRe2(body: string, dotAllAtStart: boolean): string | null {
  let out = "";
  let inClass = false;
  // Where the current class's members start in `out`, to tell a range's `-` from a leading one.
  let classStart = 0;
  // Whether `.` matches `\n`, per open group: `(?s:...)` and `(?-s:...)` change it inside.
  let dotAll = dotAllAtStart;
  const dotAllOfOpenGroups: boolean[] = [];
  // Class ranges (from `\d` or `[:digit:]`) put into a class: a `-` before them would make a
  // range with their first character, and one after them a range from their last (`[\s-~]`
  // would become ` -~`, every printable character). RE2 reads that `-` as a literal.
  const appendClassRanges = (ranges: string): boolean => {
    if (out.length > classStart + 1 && out.endsWith("-") && !out.endsWith("\\-")) return false;
    out += ranges;
    if (body[i + 1] === "-" && body[i + 2] !== "]") {
      out += "\\-";
      i++;
    }
    return true;
  };
  let i = 0;
  for (; i < body.length; i++) {
    const c = body[i] as string;
    if (c === "\\") {
      const next = body[i + 1];
      if (next === undefined) return null;
      i++;
      const perlClass = PERL_CLASSES[next.toLowerCase()];
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
      } else if (perlClass !== undefined) {
        const negated = next !== next.toLowerCase();
        if (!inClass) out += `[${negated ? "^" : ""}${perlClass}]`;
        // A negated class inside a class (`[^\S\n]`) has no ASCII spelling in `u` mode: refuse.
        else if (negated || !appendClassRanges(perlClass)) return null;
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
      i = end + 1;
      if (!appendClassRanges(ranges)) return null;
    } else if (c === "[" && !inClass) {
      inClass = true;
      out += c;
      // A `]` right after `[` or `[^` is a literal in RE2.
      if (body[i + 1] === "^") {
        out += "^";
        i++;
      }
      classStart = out.length;
      if (body[i + 1] === "]") {
        out += "\\]";
        i++;
      }
    } else if (c === "]" && inClass) {
      inClass = false;
      out += c;
    } else if (c === "." && !inClass) {
      // RE2's `.` excludes only `\n`; JavaScript's also excludes `\r`, U+2028 and U+2029.
      out += dotAll ? "[\\s\\S]" : "[^\\n]";
    } else if (c === "(" && !inClass) {
      dotAllOfOpenGroups.push(dotAll);
      const modifiers = /^\(\?([a-z]*)(?:-([a-z]*))?:/.exec(body.slice(i));
      if (modifiers?.[1]?.includes("s")) dotAll = true;
      else if (modifiers?.[2]?.includes("s")) dotAll = false;
      out += c;
    } else if (c === ")" && !inClass) {
      dotAll = dotAllOfOpenGroups.pop() ?? dotAll;
      out += c;
    } else {
      out += c;
    }
  }
  return out;
}

/**
 * Whether a regex repeats a group that contains a choice, like `(a+)+`, `([a-z]+[-.]?){1,50}`,
 * `([a-z]|[a-z0-9])*` or `(a?a)*`: the shapes of catastrophic backtracking, where one input can
 * be split among the iterations in exponentially many ways. RE2 runs them in linear time,
 * JavaScript does not, and ACL patterns meet client-chosen names. A choice is a quantifier
 * (`?` too: `x?` is `(x|)`) or an alternation. A repeat is `*`, `+`, or a count whose upper bound
 * is above 1 (`{2}` and `{1,50}` too: a fixed count of 20 took 800 ms on 31 characters). Pass the
 * translated source (translateGoRegex), not RE2 text. A heuristic that errs on refusing: it also
 * flags harmless shapes such as `(\w+/)*`, `(ab?)*` and `(foo|bar)+`, whose choices cannot
 * overlap.
 */
export function hasNestedQuantifier(body: string): boolean {
  const countAt = (i: number) => (body[i] === "{" ? /^\{(\d*)(?:(,)(\d*))?\}/.exec(body.slice(i)) : null);
  const isRepeatAt = (i: number) => {
    if (body[i] === "*" || body[i] === "+") return true;
    const count = countAt(i);
    if (!count) return false;
    const upper = count[2] === undefined ? count[1] : count[3];
    return upper === "" || upper === undefined || Number(upper) > 1;
  };
  const isQuantifierAt = (i: number) => {
    if (body[i] === "?" || isRepeatAt(i)) return true;
    const count = countAt(i);
    return count !== null && !(count[1] === "1" && (count[2] === undefined || count[3] === "1"));
  };
  // One flag per open group: does it contain a choice?
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
      // The group's own syntax, whose `?` is no quantifier: (?:, (?<name>, (?=, (?<!, (?s:.
      const prefix = /^\?(?:<[^>=!]*>|<?[=!]|[a-z]*(?:-[a-z]*)?:)/.exec(body.slice(i));
      if (prefix) i += prefix[0].length;
    } else if (c === ")") {
      const containsChoice = groups.length > 1 ? (groups.pop() as boolean) : false;
      i++;
      if (containsChoice && isRepeatAt(i)) return true;
      if (containsChoice || isQuantifierAt(i)) groups[groups.length - 1] = true;
    } else {
      if (c === "|" || isQuantifierAt(i)) groups[groups.length - 1] = true;
      i++;
    }
  }
  return false;
}
