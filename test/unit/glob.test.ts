/**
 * Go path.Match semantics (what docker_auth uses for non-regex ACL patterns), Go regexp semantics
 * for `/regex/` patterns (re2js), and the quoting helper.
 */
import { describe, expect, it } from "bun:test";
import {
  ANY_SEGMENT,
  globMayMatch,
  globMayMatchPrefix,
  globUnits,
  matchGlob,
  parseGlob,
  parseGlobUnits,
  quoteMeta,
} from "../../src/glob.ts";
import {
  compileGoRegexp,
  goRegexpMayMatchPrefix,
  goRegexpSubmatches,
  regexLiteralPrefix,
  widenPlaceholders,
} from "../../src/go-regexp.ts";

function globMatches(pattern: string, text: string): boolean {
  const glob = parseGlob(pattern);
  if (!glob) throw new Error(`bad pattern ${pattern}`);
  return matchGlob(glob, text);
}

const compileGoRegex = (source: string) => compileGoRegexp(source);

describe("parseGlob and matchGlob match like path.Match", () => {
  // [pattern, text, matches] — many from Go's path/match_test.go semantics, restated.
  const cases: [string, string, boolean][] = [
    ["abc", "abc", true],
    ["abc", "abcd", false],
    ["abc", "xabc", false],
    ["abc", "ABC", false],
    ["*", "", true],
    ["*", "abc", true],
    ["*", "a/b", false],
    ["a*", "a", true],
    ["a*", "abc", true],
    ["a*", "ab/c", false],
    ["a*/b", "abc/b", true],
    ["a*/b", "a/c/b", false],
    ["*/*", "alice/app", true],
    ["*/*", "alice/team/app", false],
    ["a*b*c*d*e*/f", "axbxcxdxe/f", true],
    ["a*b*c*d*e*/f", "axbxcxdxexxx/f", true],
    ["a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false],
    ["a*b?c*x", "abxbbxdbxebxczzx", true],
    ["a*b?c*x", "abxbbxdbxebxczzy", false],
    ["?", "", false],
    ["?", "a", true],
    ["?", "/", false],
    ["?", "\u00e9", true],
    ["a?c", "abc", true],
    ["a?c", "ac", false],
    ["[abc]", "b", true],
    ["[abc]", "d", false],
    ["[a-c]", "b", true],
    ["[a-c]", "d", false],
    ["[^a-c]", "d", true],
    ["[^a-c]", "b", false],
    ["[^a]", "/", true],
    ["a[b-d]e", "ace", true],
    ["[\\]]", "]", true],
    ["[\\-]", "-", true],
    ["[x\\-]", "-", true],
    ["[x\\-]", "z", false],
    ["[\\^a]", "^", true],
    ["[a-\\z]", "m", true],
    ["\\*", "*", true],
    ["\\*", "a", false],
    ["\\?", "?", true],
    ["\\[", "[", true],
    ["\\a", "a", true],
    // Regular-expression metacharacters are plain characters in a glob.
    ["a.b", "a.b", true],
    ["a.b", "axb", false],
    ["a+", "aa", false],
    ["a+", "a+", true],
    ["(a|b)", "a", false],
    ["(a|b)", "(a|b)", true],
    ["x{2}", "xx", false],
    ["^a$", "^a$", true],
    ["a/b", "a/b", true],
    ["${account}", "${account}", true],
    // `*` crosses newlines (it is "any non-separator"); the whole string must still match.
    ["a*b", "a\nb", true],
    ["ab", "ab\n", false],
    // Go's path/match_test.go matchTests, restated.
    ["a*", "ab/c", false],
    ["a*/b", "abc/b", true],
    ["a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false],
    ["a*b*c*d*e*/f", "axbxcxdxexxx/fff", false],
    ["a*b?c*x", "abxbbxdbxebxczzx", true],
    ["ab[c]", "abc", true],
    ["ab[b-d]", "abc", true],
    ["ab[e-g]", "abc", false],
    ["ab[^c]", "abc", false],
    ["ab[^b-d]", "abc", false],
    ["ab[^e-g]", "abc", true],
    ["a\\*b", "a*b", true],
    ["a\\*b", "ab", false],
    ["a?b", "a\u263ab", true],
    ["a[^a]b", "a\u263ab", true],
    ["a???b", "a\u263ab", false],
    ["a[^a][^a][^a]b", "a\u263ab", false],
    ["[a-\u03b6]", "\u03bb", false],
    ["*[a-\u03b6]", "A", false],
    ["a?b", "a/b", false],
    ["a*b", "a/b", false],
    ["[\\]a]", "]", true],
    ["[\\-]", "-", true],
    ["[x\\-]", "x", true],
    ["[x\\-]", "-", true],
    ["[x\\-]", "z", false],
    ["[\\-x]", "x", true],
    ["[\\-x]", "-", true],
    ["[\\-x]", "a", false],
    ["*x", "xxx", true],
    // A star inside a class is a literal and does not start a new chunk.
    ["a[*]b", "a*b", true],
    ["a[*]b", "axb", false],
    // Code points, not UTF-16 units: `?` takes one astral character whole.
    ["a?b", "a\u{1f600}b", true],
    ["a??b", "a\u{1f600}b", false],
    ["[\u{1f600}]", "\u{1f600}", true],
    ["*\u{1f600}", "x\u{1f600}", true],
    ["", "", true],
    ["", "a", false],
  ];
  for (const [pattern, text, expected] of cases) {
    it(`${JSON.stringify(pattern)} vs ${JSON.stringify(text)} → ${expected}`, () => {
      expect(globMatches(pattern, text)).toBe(expected);
    });
  }
});

describe("bad glob patterns (Go's ErrBadPattern) parse to null", () => {
  const bad = [
    "[",
    "[]",
    "[^]",
    "[a",
    "a[",
    "[a-]",
    "[-a]",
    "[]a]",
    "[^]a]",
    "[a-b-c]",
    "\\",
    "a\\",
    "[\\",
    "[x-\\",
    // Go's match_test.go ErrBadPattern cases.
    "[]a]",
    "[-]",
    "[x-]",
    "[-x]",
    "\\",
    "[a-b-c]",
    "a[",
    "*x\\",
    "*x[",
    "a*[",
    "[\\]",
  ];
  for (const pattern of bad) {
    it(JSON.stringify(pattern), () => {
      expect(parseGlob(pattern)).toBeNull();
    });
  }
  it("a reversed range is refused (Go accepts it and never matches; we say so at load)", () => {
    expect(parseGlob("[z-a]")).toBeNull();
  });
});

describe("quoteMeta (Go regexp.QuoteMeta)", () => {
  const samples = [
    ".*",
    "a.b",
    "a+b",
    "(x)",
    "[a]",
    "{1,2}",
    "^$",
    "a|b",
    "back\\slash",
    "?",
    "*/*",
    "plain",
    "",
  ];
  for (const text of samples) {
    it(`${JSON.stringify(text)} is literal in a regex and in a glob`, () => {
      const quoted = quoteMeta(text);
      expect(compileGoRegexp(`^${quoted}$`)?.test(text)).toBe(true);
      expect(globMatches(quoted, text)).toBe(true);
    });
  }
  it("a quoted .* does not match other text", () => {
    expect(compileGoRegexp(`^${quoteMeta(".*")}$`)?.test("anything")).toBe(false);
    expect(globMatches(quoteMeta("*"), "anything")).toBe(false);
  });
  it("escapes exactly Go's set", () => {
    expect(quoteMeta("\\.+*?()|[]{}^$")).toBe("\\\\\\.\\+\\*\\?\\(\\)\\|\\[\\]\\{\\}\\^\\$");
    expect(quoteMeta("a-b/c_d:e@f")).toBe("a-b/c_d:e@f");
  });
});

describe("compileGoRegexp (RE2 syntax and semantics, as Go)", () => {
  it("knows (?P<name>…) named groups", () => {
    const match = compileGoRegex("^(?P<user>[a-z]+)@x$")?.exec("bob@x") as {
      groups?: Record<string, string>;
    };
    expect(match.groups?.user).toBe("bob");
  });
  it("honours a leading (?i) flag", () => {
    expect(compileGoRegex("(?i)^admin$")?.test("ADMIN")).toBe(true);
    expect(compileGoRegex("^admin$")?.test("ADMIN")).toBe(false);
  });
  it("is unanchored like regexp.Match", () => {
    expect(compileGoRegex("admin")?.test("notadmin")).toBe(true);
  });
  it("refuses what RE2 cannot express", () => {
    for (const source of ["(?=a)", "(?!a)", "(?<=a)b", "(?<!a)b", "(a)\\1"])
      expect(compileGoRegex(source)).toBeNull();
  });
  it("refuses malformed regexes", () => {
    for (const source of ["(", "[", "foo?*", "a**"]) expect(compileGoRegex(source)).toBeNull();
  });

  // Without translation these compiled to something else (`\z` a literal "z") and a deny rule
  // written with them silently stopped matching.
  const translated: [string, string, boolean][] = [
    ["\\Aadmin", "admin", true],
    ["\\Aadmin", "xadmin", false],
    ["admin\\z", "admin", true],
    ["admin\\z", "adminz", false],
    ["^[[:alpha:]]+$", "Admin", true],
    ["^[[:alpha:]]+$", "adm1n", false],
    ["^[[:digit:][:lower:]]+$", "team42", true],
    ["^[^[:space:]]+$", "a b", false],
    ["^\\Qa.b*\\E$", "a.b*", true],
    ["^\\Qa.b*\\E$", "axbbb", false],
    ["^a\\-b\\_c\\@d$", "a-b_c@d", true],
    ["^[a\\-z]$", "-", true],
    ["^[a\\-z]$", "m", false],
    ["^[]a]+$", "]a", true],
  ];
  // Review 2 (L2): RE2's Perl classes are ASCII and its `.` excludes only `\n`; JavaScript's `\s`
  // adds Unicode spaces and `\v`, its `.` also excludes `\r`, U+2028 and U+2029. Account names
  // and label values (LDAP, hooks) are not ASCII-only.
  translated.push(
    ["^\\S+$", "a\u00a0b", true],
    ["^\\s$", "\u00a0", false],
    ["^\\s$", "\u3000", false],
    ["^\\s$", "\v", false],
    ["^\\s+$", "\t\n\f\r ", true],
    ["^\\d$", "\u0663", false],
    ["^\\D$", "\u0663", true],
    ["^\\w+$", "\u00e9", false],
    ["^\\W$", "\u00e9", true],
    // Go folds Perl classes under (?i): its parse_test.go gives (?i)\w as
    // cc{0x30-0x39 0x41-0x5a 0x5f 0x61-0x7a 0x17f 0x212a}, so ſ and K (Kelvin) are word characters
    // there as in JavaScript's `iu`. The review expected false here; docker_auth (Go) says true.
    ["(?i)^\\w+$", "\u017f", true],
    ["(?i)^\\w+$", "\u212a", true],
    ["(?i)^\\W$", "\u212a", false],
    ["^\\w+$", "\u017f", false],
    ["^a.b$", "a\rb", true],
    ["^a.b$", "a\u2028b", true],
    ["^a.b$", "a\nb", false],
    ["(?s)^a.b$", "a\nb", true],
    ["^a(?s:.)b$", "a\nb", true],
    ["(?s)^a(?-s:.)b.$", "a\nb\n", false],
    ["(?s)^a(?-s:.)b.$", "axb\n", true],
    ["^[\\w.]+$", "a.b_1", true],
    ["^[\\w.]+$", "\u017f", false],
    ["^[\\d\\s]+$", "1 2\r", true],
    ["^[\\d\\s]+$", "1\u00a02", false],
    // A `-` next to a class is a literal in RE2, not a range from its last character.
    ["^[\\s-~]+$", "-~ ", true],
    ["^[\\s-~]+$", "a", false],
    ["^[[:digit:]-z]+$", "5-z", true],
    ["^[[:digit:]-z]+$", "a", false],
    ["^[-\\d]+$", "-1", true],
  );
  for (const [source, input, expected] of translated) {
    it(`RE2 ${source} ${expected ? "matches" : "does not match"} ${JSON.stringify(input)}`, () => {
      expect(compileGoRegex(source)?.test(input)).toBe(expected);
    });
  }

  it("refuses what Go's regexp/syntax refuses", () => {
    for (const source of ["[[:nosuch:]]", "\\C", "a\\", "[!-\\d]", "a{1001}", "(?P<x>a)(?P<x>b)"])
      expect(compileGoRegex(source)).toBeNull();
  });
  // The old translation to JavaScript had no spelling for these and refused them; RE2 has.
  const nowAccepted: [string, string, boolean][] = [
    ["^[^\\S\\n]$", " ", true],
    ["^[^\\S\\n]$", "\n", false],
    ["^[\\W]$", "-", true],
    ["^[a\\D]$", "x", true],
    ["^[a\\D]$", "1", false],
  ];
  for (const [source, input, expected] of nowAccepted) {
    it(`RE2 ${source} ${expected ? "matches" : "does not match"} ${JSON.stringify(input)}`, () => {
      expect(compileGoRegex(source)?.test(input)).toBe(expected);
    });
  }
  it("gives unmatched groups as empty strings, like FindStringSubmatch", () => {
    const regexp = compileGoRegexp("^(a)|(b)$");
    if (!regexp) throw new Error("did not compile");
    expect(goRegexpSubmatches(regexp, "b")).toEqual(["b", "", "b"]);
    expect(goRegexpSubmatches(regexp, "c")).toBeNull();
  });
});

describe("linear time on hostile input (issue 8 M2)", () => {
  // Each took seconds per request with backtracking engines; here one pass over a long name.
  const long = `${"a-".repeat(127)}a`;
  const globs = ["*/*-*-*-*-x", "*-*-*-*-*-prod", "a*a*a*a*a*a*a*a*b", "*?*?*?*?*?x"];
  for (const pattern of globs)
    it(`glob ${pattern} on 255 characters`, () => {
      expect(globMatches(pattern, long)).toBe(false);
      expect(globMatches(pattern, `x/${long}`)).toBe(false);
    });
  const regexes = [
    "[a-z0-9]*[a-z0-9]*[a-z0-9]*[a-z0-9]*x$",
    "^(a+)+$",
    "^([a-z0-9]+[-_.]?)+$",
    "^(a|a)+$",
    "^(?:[a-z]+\\.?){1,50}$",
  ];
  for (const source of regexes)
    it(`regex ${source} on 255 characters`, () => {
      expect(compileGoRegex(source)?.test(`${"a".repeat(254)}!`)).toBe(false);
    });
});

describe("globUnits cuts slots only outside classes and escapes", () => {
  const slotAt = (text: string, index: number) =>
    text.startsWith("${x}", index) ? { slot: 0, length: 4 } : null;
  it("a slot is a literal whatever its value", () => {
    const { units, slots } = globUnits("${x}/*", slotAt);
    expect(slots).toBe(1);
    const glob = parseGlobUnits(units);
    if (!glob) throw new Error("did not parse");
    expect(matchGlob(glob, "a*b/app", ["a*b"])).toBe(true);
    expect(matchGlob(glob, "axxb/app", ["a*b"])).toBe(false);
    expect(matchGlob(glob, "[ab]/app", ["[ab]"])).toBe(true);
    expect(matchGlob(glob, "a/app", ["[ab]"])).toBe(false);
  });
  it("no slot inside a class or after a backslash", () => {
    expect(globUnits("[${x}]", slotAt).slots).toBe(0);
    expect(globUnits("\\${x}", slotAt).slots).toBe(0);
    expect(globUnits("[a]${x}", slotAt).slots).toBe(1);
  });
});

describe("widenPlaceholders (the prefilter for regexes with placeholders)", () => {
  const spansOf = (body: string) =>
    [...body.matchAll(/\$\{[a-z]+(?::[^}]*)?\}/g)].map((m) => ({
      start: m.index,
      end: m.index + m[0].length,
    }));
  const widened: [string, string | null][] = [
    ["^${account}/.+$", "^(?s:.*)/.+$"],
    ["^(${account}|team)/app$", "^((?s:.*)|team)/app$"],
    ["^p1\\/${account}\\.x$", "^p1\\/(?s:.*)\\.x$"],
    // Refused: the substituted text would not be whole atoms, or an empty value would move a quantifier.
    ["^[${account}]$", null],
    ["^\\Q${account}\\E$", null],
    ["^a{1,${n}}$", null],
    ["^\\x${n}$", null],
    ["^\\0${n}$", null],
    ["^(?P<${n}>a)$", null],
    ["^(?${f}:a)$", null],
    ["^a${account}*$", null],
    ["^a${account}?$", null],
    ["^a${account}{2}$", null],
  ];
  for (const [body, expected] of widened)
    it(`${body} → ${expected}`, () => expect(widenPlaceholders(body, spansOf(body))).toBe(expected));

  // Whatever the value, what the substituted pattern matches the widened one matches too.
  const bodies = [
    "^${account}/.+$",
    "${account}",
    "^(?:${account}|x)+-(${name})$",
    "(?i)^team-${account}\\.[a-z]+$",
    "^a|${account}b$",
    "^(${account})(${account})$",
  ];
  const values = ["", "a", "A", "*", ".+", "a{2}", "(", "\\", "x|y", "ab/c", "\u{1f600}", "-", ",", "<n>"];
  const texts = ["", "a", "ab/c", "a/b", "team-a.b", "x", "b", "A/x", "aa", "-", "(", "*", "x-y", "a{2}/q"];
  for (const body of bodies)
    it(`is a superset for ${body}`, () => {
      const wide = widenPlaceholders(body, spansOf(body));
      if (wide === null) throw new Error("not widened");
      const prefilter = compileGoRegexp(wide);
      if (!prefilter) throw new Error("widened pattern did not compile");
      for (const value of values) {
        const exact = compileGoRegexp(body.replace(/\$\{[a-z]+\}/g, quoteMeta(value)));
        if (!exact) continue;
        for (const text of [...texts, value, `${value}/x`, `team-${value}.q`])
          if (exact.test(text)) expect(prefilter.test(text)).toBe(true);
      }
    });
});

describe("matchGlob agrees with a backtracking reference on random globs", () => {
  // Chunks between stars have a fixed length, so committing to the first fit (Go) finds a
  // match whenever trying every split (a RegExp) does. Seeded, so failures reproduce.
  const reference = (pattern: string) =>
    new RegExp(
      `^${[...pattern]
        .map((c) => (c === "*" ? "[^/]*" : c === "?" ? "[^/]" : c === "/" ? "\\/" : c))
        .join("")}$`,
      "u",
    );
  let state = 12345;
  const random = (bound: number) => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state % bound;
  };
  const pick = (alphabet: string, length: number) =>
    Array.from({ length }, () => alphabet[random(alphabet.length)]).join("");
  it("5,000 pattern and name pairs", () => {
    for (let n = 0; n < 5000; n++) {
      const pattern = pick("ab-/*?", 1 + random(8));
      const name = pick("ab-/", random(12));
      const glob = parseGlob(pattern);
      if (!glob) throw new Error(`did not parse ${pattern}`);
      expect([pattern, name, matchGlob(glob, name)]).toEqual([pattern, name, reference(pattern).test(name)]);
    }
  });
});

describe("regexLiteralPrefix (text every match starts with)", () => {
  const cases: [string, string][] = [
    ["^team17\\/(?s:.*)\\/", "team17/"],
    ["^library/[a-z]+$", "library/"],
    ["^a\\.b-c:d@e", "a.b-c:d@e"],
    ["^abc?", "ab"],
    ["^abc*", "ab"],
    ["^abc{2}", "ab"],
    ["^ab|cd", ""],
    ["^(ab|cd)", ""],
    ["^ab(c|d)", "ab"],
    ["team", ""],
    ["(?i)^team", ""],
    ["^\\Qa.b\\E", ""],
    ["^a[|]b", "a"],
    ["^\\d+", ""],
    ["^.", ""],
  ];
  for (const [body, expected] of cases)
    it(`${body} → ${JSON.stringify(expected)}`, () => expect(regexLiteralPrefix(body)).toBe(expected));
  it("holds for every match on sample texts", () => {
    const texts = ["", "a", "ab", "abc", "abcc", "team17/x/", "library/alpine", "cd", "a|b", "a.b-c:d@e!"];
    for (const [body] of cases) {
      const regexp = compileGoRegexp(body);
      if (!regexp) continue;
      const prefix = regexLiteralPrefix(body);
      for (const text of texts) if (regexp.test(text)) expect(text.startsWith(prefix)).toBe(true);
    }
  });
});

describe("globMayMatchPrefix and goRegexpMayMatchPrefix (registration's namespace test, review finding 1)", () => {
  const globCases: [string, string, boolean][] = [
    ["prod/*", "prod/", true],
    ["prod/*", "prods/", false],
    ["team-*/*", "team-a/", true],
    ["team-*/*", "team/", false],
    ["*/*", "anyone/", true],
    ["*", "x/", false],
    ["?/x", "a/", true],
    ["[a-c]*/x", "d/", false],
    ["[^a-c]*/x", "d/", true],
    ["a\\*/x", "a*/", true],
    ["a\\*/x", "ab/", false],
    ["solo", "solo/", false],
  ];
  for (const [pattern, prefix, expected] of globCases)
    it(`glob ${pattern} under ${prefix}: ${expected}`, () => {
      expect(
        globMayMatchPrefix(parseGlob(pattern) as NonNullable<ReturnType<typeof parseGlob>>, prefix, []),
      ).toBe(expected);
    });

  it("slots: any text, any text without '/', or a literal", () => {
    const { units } = globUnits("${x}-cache/*", (text, index) =>
      text.startsWith("${x}", index) ? { slot: 0, length: 4 } : null,
    );
    const glob = parseGlobUnits(units) as NonNullable<ReturnType<typeof parseGlobUnits>>;
    expect(globMayMatchPrefix(glob, "a/", [null])).toBe(true); // a/ + -cache/…
    expect(globMayMatchPrefix(glob, "a/", [ANY_SEGMENT])).toBe(false);
    expect(globMayMatchPrefix(glob, "ci-cache/", [ANY_SEGMENT])).toBe(true);
    expect(globMayMatchPrefix(glob, "ci-cache/", ["ci"])).toBe(true);
    expect(globMayMatchPrefix(glob, "cd-cache/", ["ci"])).toBe(false);
    expect(globMayMatch(glob, "ci-cache/x", ["ci"])).toBe(true);
    expect(globMayMatch(glob, "ci-cache", [ANY_SEGMENT])).toBe(false);
  });

  it("never says no when some completion matches (5,000 random globs, completions up to 3 characters)", () => {
    let state = 777;
    const random = (bound: number) => {
      state = (state * 1103515245 + 12345) & 0x7fffffff;
      return state % bound;
    };
    const pick = (alphabet: string, length: number) =>
      Array.from({ length }, () => alphabet[random(alphabet.length)]).join("");
    const completions = [""];
    for (let length = 1; length <= 3; length++)
      for (let n = 0; n < 4 ** length; n++)
        completions.push(Array.from({ length }, (_, i) => "ab-/"[Math.floor(n / 4 ** i) % 4]).join(""));
    for (let n = 0; n < 5000; n++) {
      const pattern = pick("ab-/*?", 1 + random(7));
      const prefix = pick("ab-/", random(5));
      const glob = parseGlob(pattern) as NonNullable<ReturnType<typeof parseGlob>>;
      const some = completions.some((rest) => matchGlob(glob, prefix + rest));
      if (some)
        expect([pattern, prefix, globMayMatchPrefix(glob, prefix, [])]).toEqual([pattern, prefix, true]);
    }
  });

  const regexCases: [string, string, boolean][] = [
    ["^prod\\/.+$", "prod/", true],
    ["^prod\\/.+$", "pro/", false],
    ["^prod\\/[0-9]+$", "prod/", true],
    ["^prod\\/[0-9]+$", "prodx/", false],
    ["prod", "x/", true], // unanchored: x/prod
    ["^x$", "x/", false],
    ["(?i)^PROD/", "prod/", true],
    ["^a\\b", "a/", true],
    ["^a\\B/", "a/", false],
    ["^a$", "a/", false],
    ["^team-[a-z]+/", "team-a/", true],
    ["^team-[a-z]+/", "team-/", false],
    ["^(?:a|b)c/", "bc/", true],
    ["^(?:a|b)c/", "cc/", false],
    ["\\Aq/", "q/", true],
    ["^$", "q/", false],
  ];
  for (const [source, prefix, expected] of regexCases)
    it(`regex /${source}/ under ${prefix}: ${expected}`, () => {
      expect(
        goRegexpMayMatchPrefix(
          compileGoRegexp(source) as NonNullable<ReturnType<typeof compileGoRegexp>>,
          prefix,
        ),
      ).toBe(expected);
    });
});
