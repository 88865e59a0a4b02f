/**
 * docker_auth's `/regex/` ACL patterns are Go regexps (RE2 syntax, linear-time matching). They
 * run here on re2js, a JavaScript port of RE2 with Go's syntax and semantics: `(?P<name>)`,
 * `\A`, `\z`, `\Q…\E`, ASCII Perl and POSIX classes, `.` excluding only `\n`, no lookaround or
 * backreferences, and matching in time linear in the input whatever the pattern's shape (issue
 * 8 M2: a backtracking engine spent 21.6 s on one request for `[a-z0-9]*[a-z0-9]*…x$`).
 *
 * re2js is loaded on first use (about 5 ms in the compiled binary, 10 ms under `bun`), so a
 * config without `/regex/` patterns, the CLI and `--version` do not pay for it.
 */
import type { RE2JS } from "re2js";

export type GoRegexp = RE2JS;

let engine: typeof RE2JS | undefined;

function re2(): typeof RE2JS {
  // A synchronous require keeps config loading synchronous; the bundler still includes re2js.
  engine ??= (require("re2js") as typeof import("re2js")).RE2JS;
  return engine;
}

/** Compiles the inside of a `/.../` pattern as Go's regexp.Compile does, or null when Go refuses it. */
export function compileGoRegexp(source: string): GoRegexp | null {
  try {
    return re2().compile(source);
  } catch {
    return null;
  }
}

/** Go's regexp.MatchString: unanchored, the pattern may match any part of the text. */
export function goRegexpMatches(regexp: GoRegexp, text: string): boolean {
  return regexp.test(text);
}

/**
 * Go's FindStringSubmatch: the whole match and each group ("" for a group that took no part),
 * or null when the pattern does not match.
 */
export function goRegexpSubmatches(regexp: GoRegexp, text: string): string[] | null {
  const match = regexp.exec(text);
  return match ? match.map((group: string | undefined) => group ?? "") : null;
}

/** Where a placeholder sits in a pattern: [start, end) of its text. */
export interface Span {
  start: number;
  end: number;
  /** What the span becomes; `(?s:.*)` (any text) when not given. */
  widenTo?: string;
}

/**
 * A pattern that matches at least everything `body` can match whatever literal text replaces
 * each placeholder span, or null when no such pattern is known. Each span becomes `(?s:.*)`.
 *
 * Used as a prefilter for rules with `${account}` and friends: one program compiled per rule
 * rejects most (rule, account) pairs without compiling the substituted pattern (issue 9 item 7).
 * Sound only when the substituted text is a run of whole atoms, whatever it is: QuoteMeta'd
 * text, or a placeholder's own plain text. So a span is refused inside a class, `\Q…\E`, a
 * group's `(?…` prefix or a `{…}`, right after an escape such as `\0`, `\x` or `\p` that reads
 * on, and right before a quantifier (an empty value would hand it to the atom before).
 */
export function widenPlaceholders(body: string, spans: readonly Span[]): string | null {
  const spanAt = (index: number) => spans.find((span) => span.start === index);
  const overlaps = (start: number, end: number) => spans.some((s) => s.start < end && start < s.end);
  let out = "";
  let afterWordEscape = false;
  let inBraces = false;
  for (let i = 0; i < body.length; ) {
    const span = spanAt(i);
    if (span) {
      if (afterWordEscape || inBraces || /^[*+?{]/.test(body.slice(span.end, span.end + 1))) return null;
      out += span.widenTo ?? "(?s:.*)";
      i = span.end;
      afterWordEscape = false;
      continue;
    }
    const c = body[i] as string;
    let end = i + 1;
    if (c === "\\") {
      const escaped = body[i + 1];
      if (escaped === undefined) return null;
      end = escaped === "Q" ? body.indexOf("\\E", i + 2) : i + 2;
      if (end === -1) end = body.length;
      else if (escaped === "Q") end += 2;
    } else if (c === "[") {
      end = classEnd(body, i);
    } else if (c === "(" && body[i + 1] === "?") {
      const named = /^\(\?P?</.test(body.slice(i, i + 4));
      const stop = named ? body.indexOf(">", i) : body.slice(i).search(/[:)]/) + i;
      end = stop < i ? body.length : stop + 1;
    } else if (c === "{") {
      inBraces = true;
    } else if (c === "}") {
      inBraces = false;
    }
    if (overlaps(i, end)) return null;
    afterWordEscape = c === "\\" && /^[A-Za-z0-9]$/.test(body[i + 1] ?? "");
    out += body.slice(i, end);
    i = end;
  }
  return out;
}

/** The index after the `]` closing the class that opens at `start` (RE2: a leading `]` is literal). */
function classEnd(body: string, start: number): number {
  let j = start + 1;
  if (body[j] === "^") j++;
  if (body[j] === "]") j++;
  while (j < body.length && body[j] !== "]") {
    if (body[j] === "\\") j += 2;
    else if (body.startsWith("[:", j)) {
      const close = body.indexOf(":]", j + 2);
      j = close === -1 ? j + 1 : close + 2;
    } else j++;
  }
  return Math.min(j + 1, body.length);
}

/**
 * Literal text every match of `body` starts with at the start of the text, or "": the run of
 * plain characters after a leading `^` (escaped punctuation included). Conservative: nothing
 * when a top-level `|` could offer another start, when `\Q` appears, or for a character a
 * quantifier makes optional. Lets a rule be ruled out with one startsWith before the regex
 * engine runs (5,000 rules at ~1 µs per re2js call add up).
 */
export function regexLiteralPrefix(body: string): string {
  if (!body.startsWith("^") || body.includes("\\Q") || hasTopLevelAlternation(body)) return "";
  const characters: string[] = [];
  let i = 1;
  while (i < body.length) {
    const c = body[i] as string;
    let literal: string | undefined;
    let width = 1;
    if (c === "\\") {
      const next = body[i + 1] ?? "";
      if (/^[!-/:-@[-`{-~]$/.test(next)) {
        literal = next;
        width = 2;
      }
    } else if (/^[A-Za-z0-9_:@,;<>=!%&'"~#/ -]$/.test(c)) literal = c;
    if (literal === undefined) break;
    characters.push(literal);
    i += width;
  }
  // `^ab?` or `^ab*`: the quantifier applies to the last character.
  if (/^[*+?{]/.test(body.slice(i, i + 1))) characters.pop();
  // One flat string: JavaScriptCore keeps `+=` results as ropes, which made every startsWith
  // against them cost a microsecond.
  return characters.join("");
}

function hasTopLevelAlternation(body: string): boolean {
  let depth = 0;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === "\\") i++;
    else if (c === "[") i = classEnd(body, i) - 1;
    else if (c === "(") depth++;
    else if (c === ")") depth--;
    else if (c === "|" && depth <= 0) return true;
  }
  return false;
}

/** The parts of re2js's compiled program (RE2's Prog) goRegexpMayMatchPrefix walks. */
interface ProgInst {
  op: number;
  out: number;
  arg: number;
  matchRune(codePoint: number): boolean;
}
interface Prog {
  inst: ProgInst[];
  start: number;
  numLb?: number;
}

// RE2's instruction codes and empty-width conditions (re2js Inst, Utils.EMPTY_*; Go's syntax.InstOp).
const ALT = 1;
const ALT_MATCH = 2;
const CAPTURE = 3;
const EMPTY_WIDTH = 4;
const MATCH = 6;
const NOP = 7;
const RUNE = 8;
const RUNE1 = 9;
const RUNE_ANY = 10;
const RUNE_ANY_NOT_NL = 11;
const BEGIN_LINE = 1;
const END_LINE = 2;
const BEGIN_TEXT = 4;
const END_TEXT = 8;
const WORD_BOUNDARY = 16;
const NO_WORD_BOUNDARY = 32;
const NEWLINE = 10;

function isWordCharacter(codePoint: number): boolean {
  return (
    (codePoint >= 0x30 && codePoint <= 0x39) ||
    (codePoint >= 0x41 && codePoint <= 0x5a) ||
    (codePoint >= 0x61 && codePoint <= 0x7a) ||
    codePoint === 0x5f
  );
}

/** The empty-width conditions that hold between `before` and `after` (-1: the text's edge; null: unknown). */
function emptyFlags(before: number, after: number | null): number {
  let flags = 0;
  if (before < 0) flags |= BEGIN_TEXT | BEGIN_LINE;
  else if (before === NEWLINE) flags |= BEGIN_LINE;
  if (after === null) return flags | END_TEXT | END_LINE | WORD_BOUNDARY | NO_WORD_BOUNDARY;
  if (after < 0) flags |= END_TEXT | END_LINE;
  else if (after === NEWLINE) flags |= END_LINE;
  const boundary = (before >= 0 && isWordCharacter(before)) !== (after >= 0 && isWordCharacter(after));
  return flags | (boundary ? WORD_BOUNDARY : NO_WORD_BOUNDARY);
}

/**
 * Whether Go's MatchString could be true for some text that starts with `prefix`: a Pike NFA
 * over the program, started at every position as an unanchored match is, that reads `prefix`
 * and answers yes when a thread matched inside it or is still alive at its end (what follows is
 * free). May say yes when no completion exists (a live thread can still die), never the
 * reverse, so registration errs on refusing (src/acl.ts aclNamespaceClaims). O(|program| × |prefix|).
 */
export function goRegexpMayMatchPrefix(regexp: GoRegexp, prefix: string): boolean {
  return goRegexpPrefixTest(regexp)(prefix);
}

/** goRegexpMayMatchPrefix for one program, prepared once (its buffers reused): asked once per registration attempt. */
export function goRegexpPrefixTest(regexp: GoRegexp): (prefix: string) => boolean {
  const prog = (regexp as unknown as { re2Input?: { prog?: Prog } }).re2Input?.prog;
  if (!prog || !Array.isArray(prog.inst) || (prog.numLb ?? 0) > 0) return () => true; // not understood: refuse
  const { inst, start } = prog;
  const size = inst.length;
  // Which pc was reached at which step (a generation number instead of clearing a set).
  const seenAt = new Uint32Array(size);
  let generation = 0;
  const stack = new Int32Array(size * 2 + 2);
  let threads = new Int32Array(size);
  let nextThreads = new Int32Array(size);
  const runes = new Int32Array(size);
  return (prefix) => {
    const codePoints = Array.from(prefix, (c) => c.codePointAt(0) as number);
    let threadCount = 0;
    for (let at = 0; at <= codePoints.length; at++) {
      const before = at === 0 ? -1 : (codePoints[at - 1] as number);
      const after = at === codePoints.length ? null : (codePoints[at] as number);
      const flags = emptyFlags(before, after);
      // Follow empty transitions from the threads that read up to here and a new one (unanchored).
      generation++;
      if (generation === 0xffffffff) {
        seenAt.fill(0);
        generation = 1;
      }
      let depth = 0;
      for (let t = 0; t < threadCount; t++) stack[depth++] = threads[t] as number;
      stack[depth++] = start;
      let runeCount = 0;
      while (depth > 0) {
        const pc = stack[--depth] as number;
        if (pc < 0 || pc >= size) return true;
        if (seenAt[pc] === generation) continue;
        seenAt[pc] = generation;
        const instruction = inst[pc] as ProgInst;
        switch (instruction.op) {
          case MATCH:
            return true;
          case ALT:
          case ALT_MATCH:
            stack[depth++] = instruction.out;
            stack[depth++] = instruction.arg;
            break;
          case CAPTURE:
          case NOP:
            stack[depth++] = instruction.out;
            break;
          case EMPTY_WIDTH:
            if ((instruction.arg & ~flags) === 0) stack[depth++] = instruction.out;
            break;
          case RUNE:
          case RUNE1:
          case RUNE_ANY:
          case RUNE_ANY_NOT_NL:
            runes[runeCount++] = pc;
            break;
          default: // FAIL
            break;
        }
      }
      if (after === null) return runeCount > 0;
      let nextCount = 0;
      for (let r = 0; r < runeCount; r++) {
        const instruction = inst[runes[r] as number] as ProgInst;
        const fits =
          instruction.op === RUNE_ANY ||
          (instruction.op === RUNE_ANY_NOT_NL ? after !== NEWLINE : instruction.matchRune(after));
        if (fits) nextThreads[nextCount++] = instruction.out;
      }
      [threads, nextThreads] = [nextThreads, threads];
      threadCount = nextCount;
    }
    return false;
  };
}
