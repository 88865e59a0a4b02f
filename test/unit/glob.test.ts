/** Go path.Match semantics (what docker_auth uses for non-regex ACL patterns) and the quoting helpers. */
import { describe, expect, it } from "bun:test";
import { compileGoRegex, hasNestedQuantifier } from "../../src/re2-compat.ts";
import { compileGlob, escapeRegExp, quoteMeta } from "../../src/glob.ts";

function globMatches(pattern: string, text: string): boolean {
  const compiled = compileGlob(pattern);
  if (!compiled) throw new Error(`bad pattern ${pattern}`);
  return compiled.test(text);
}

describe("compileGlob matches like path.Match", () => {
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
  ];
  for (const [pattern, text, expected] of cases) {
    it(`${JSON.stringify(pattern)} vs ${JSON.stringify(text)} → ${expected}`, () => {
      expect(globMatches(pattern, text)).toBe(expected);
    });
  }
});

describe("bad glob patterns (Go's ErrBadPattern) compile to null", () => {
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
  ];
  for (const pattern of bad) {
    it(JSON.stringify(pattern), () => {
      expect(compileGlob(pattern)).toBeNull();
    });
  }
  it("a reversed range is refused (Go accepts it and never matches; we say so at load)", () => {
    expect(compileGlob("[z-a]")).toBeNull();
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
      expect(new RegExp(`^${quoted}$`, "u").test(text)).toBe(true);
      expect(compileGlob(quoted)?.test(text)).toBe(true);
    });
  }
  it("a quoted .* does not match other text", () => {
    expect(new RegExp(`^${quoteMeta(".*")}$`, "u").test("anything")).toBe(false);
    expect(compileGlob(quoteMeta("*"))?.test("anything")).toBe(false);
  });
  it("escapes exactly Go's set", () => {
    expect(quoteMeta("\\.+*?()|[]{}^$")).toBe("\\\\\\.\\+\\*\\?\\(\\)\\|\\[\\]\\{\\}\\^\\$");
    expect(quoteMeta("a-b/c_d:e@f")).toBe("a-b/c_d:e@f");
  });
  it("escapeRegExp makes text literal", () => {
    const text = "a.b*c+d?e(f)g[h]i{j}k|l^m$n\\o/p";
    expect(new RegExp(`^${escapeRegExp(text)}$`, "u").test(text)).toBe(true);
  });
});

describe("compileGoRegex (RE2 spellings)", () => {
  it("translates (?P<name>…) named groups", () => {
    expect(compileGoRegex("^(?P<user>[a-z]+)@x$")?.exec("bob@x")?.groups?.user).toBe("bob");
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

  it("refuses RE2 syntax it cannot translate instead of changing its meaning", () => {
    for (const source of ["[[:nosuch:]]", "\\C", "a\\"]) expect(compileGoRegex(source)).toBeNull();
  });
  it("refuses a negated Perl class inside a class, and a range ending in a class", () => {
    // [^\S\n] has no ASCII spelling in `u` mode; [!-\d] would become the range !-0.
    for (const source of ["[^\\S\\n]", "[\\W]", "[a\\D]", "[!-\\d]", "[!-[:digit:]]"])
      expect(compileGoRegex(source)).toBeNull();
  });
});

describe("hasNestedQuantifier (catastrophic-backtracking shapes)", () => {
  const flagged = [
    "^(a+)+$",
    "^([a-z0-9]+[-_.]?)+$",
    "(x*)*",
    "((ab)+c)*",
    "(a{2,})+",
    "(?:a+b?)+",
    "(a|b+)*z",
    // Overlapping alternatives in a repeated group: ([a-z]|[a-z0-9])* is exponential on "aaa…!".
    "^([a-z]|[a-z0-9])*$",
    "^(a|a)+$",
    // A count above 1 repeats too: {20} took 800 ms on 31 characters.
    "^(?:[a-z]+\\.?){1,50}$",
    "^([a-z0-9]+[-.]?){2,64}$",
    "^(?:[a-z]+\\.?){20}$",
    "(a+){2}",
    // Non-overlapping alternatives are refused too: the rule does not compare alternatives.
    "^(foo|bar)+$",
    "^(x(a|b))*$",
    // An optional part is a choice too: (a?a)* took 110 ms on 35 characters (×1.6 per
    // character), (?:a?a?){30}b 1.2 s on 30.
    "^(a?a)*$",
    "^(?:a?a?){30}b$",
    "^(?:(a)?a)*$",
    "^(?:a{0,1}a)*$",
    "^(ab?)*$",
  ];
  const clean = [
    "^(.+)@test\\.com$",
    "^(foo|bar)/.+$",
    "[(+)]+",
    "\\(a+\\)+",
    "^(a+)$",
    "(a+){1}",
    "(a+){0,1}",
    "(a+)?",
    "^(a|b)$",
    "a|b+",
    "^(.+)@(.+?).test\\.com$",
    "z$",
    "[a-z]+/[a-z]+",
    "^(ab)*$",
    // A group's own `?` is no quantifier.
    "^(?:ab)+$",
    "^(?<name>ab)+$",
    "^(?:library/)?[a-z]+$",
    "(?<![\\s\\S])(?:ab)*(?![\\s\\S])",
  ];
  for (const body of flagged) it(`flags ${body}`, () => expect(hasNestedQuantifier(body)).toBe(true));
  for (const body of clean) it(`does not flag ${body}`, () => expect(hasNestedQuantifier(body)).toBe(false));
});
