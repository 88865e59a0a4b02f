/**
 * Go's path.Match as a RegExp, because docker_auth matches non-regex ACL patterns with it:
 * `*` is any run of non-'/' characters, `?` one non-'/' character, `[...]` a class (`^` negates),
 * `\` escapes the next character, and the pattern must match the whole string.
 * Returns null for a malformed pattern (Go's ErrBadPattern), which then never matches.
 */
export function compileGlob(pattern: string): RegExp | null {
  let source = "^";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === "*") {
      source += "[^/]*";
    } else if (c === "?") {
      source += "[^/]";
    } else if (c === "\\") {
      i++;
      if (i >= pattern.length) return null;
      source += escapeRegExp(pattern[i] as string);
    } else if (c === "[") {
      const end = parseClass(pattern, i + 1);
      if (!end) return null;
      source += end.source;
      i = end.index;
    } else {
      source += escapeRegExp(c);
    }
  }
  return new RegExp(`${source}$`, "u");
}

function parseClass(pattern: string, start: number): { source: string; index: number } | null {
  let i = start;
  let negated = false;
  if (pattern[i] === "^") {
    negated = true;
    i++;
  }
  let body = "";
  let ranges = 0;
  for (;;) {
    if (i >= pattern.length) return null;
    if (pattern[i] === "]" && ranges > 0) break;
    const lo = readClassChar(pattern, i);
    if (!lo) return null;
    i = lo.next;
    let item = escapeClassChar(lo.char);
    if (pattern[i] === "-") {
      const hi = readClassChar(pattern, i + 1);
      if (!hi) return null;
      if (hi.char < lo.char) return null;
      item = `${escapeClassChar(lo.char)}-${escapeClassChar(hi.char)}`;
      i = hi.next;
    }
    body += item;
    ranges++;
  }
  return { source: `[${negated ? "^" : ""}${body}]`, index: i };
}

function readClassChar(pattern: string, i: number): { char: string; next: number } | null {
  let c = pattern[i];
  if (c === undefined || c === "-" || c === "]") return null;
  if (c === "\\") {
    c = pattern[i + 1];
    if (c === undefined) return null;
    return { char: c, next: i + 2 };
  }
  return { char: c, next: i + 1 };
}

/** Escapes every character RegExp gives meaning to, so the text matches only itself. */
export function escapeRegExp(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/]/g, "\\$&");
}

function escapeClassChar(char: string): string {
  return char === "-" ? "\\-" : escapeRegExp(char);
}

/**
 * Go's regexp.QuoteMeta: what docker_auth wraps substituted values in, so a user named `.*`
 * cannot widen a pattern. The result is literal in both a regex and a glob.
 */
export function quoteMeta(text: string): string {
  return text.replace(/[\\.+*?()|[\]{}^$]/g, "\\$&");
}
