/**
 * Go's path.Match, because docker_auth matches non-regex ACL patterns with it: `*` is any run of
 * non-'/' characters, `?` one non-'/' character, `[...]` a class (`^` negates), `\` escapes the
 * next character, and the pattern must match the whole string.
 *
 * This is Go's algorithm (src/path/match.go: scanChunk, matchChunk, getEsc), not a RegExp: after
 * a star, Go tries the next chunk at each position and commits to the first that fits, so a
 * pattern of m characters costs O(m × n) on a name of n characters whatever its stars. A
 * backtracking RegExp for `*-*-*-*-x` costs O(n⁴) instead (issue 8 M2: 4.25 s for one request).
 * Like Go, it works on code points: `?` and a class consume one, whatever its UTF-16 length.
 */

/** One single-character operator of a chunk, or a slot: a literal string given at match time. */
type GlobItem =
  | { kind: "text"; text: string }
  | { kind: "any" }
  | { kind: "class"; negated: boolean; ranges: number[] }
  | { kind: "slot"; slot: number };

/** A run of single-character operators, possibly preceded by stars (Go's scanChunk). */
interface Chunk {
  star: boolean;
  items: GlobItem[];
}

export interface Glob {
  chunks: Chunk[];
}

/** A unit of pattern text: a code point, or a slot the caller cut out of it. */
export type GlobUnit = number | { slot: number };

const STAR = 0x2a;
const QUESTION = 0x3f;
const BACKSLASH = 0x5c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const CARET = 0x5e;
const HYPHEN = 0x2d;
const SLASH = 0x2f;

/**
 * Parses a glob, or returns null for a malformed one (Go's ErrBadPattern: an unterminated or
 * empty class, a trailing `\`, a range with a missing end), which then never matches. Stricter
 * than Go in one way: a reversed range such as `[z-a]`, which Go accepts and never matches, is
 * malformed here, so the config loader reports it.
 */
export function parseGlob(pattern: string): Glob | null {
  return parseGlobUnits(Array.from(pattern, (c) => c.codePointAt(0) as number));
}

/**
 * Splits a pattern into units, asking `slotAt` at every position outside a class and not after
 * a `\` (as Go's scanChunk reads them) whether a slot starts there; returns the units and how
 * many slots were cut. Used for `${account}` and friends, whose quoted values are literals.
 */
export function globUnits(
  pattern: string,
  slotAt: (pattern: string, index: number) => { slot: number; length: number } | null,
): { units: GlobUnit[]; slots: number } {
  const units: GlobUnit[] = [];
  let slots = 0;
  let inClass = false;
  let escaped = false;
  for (let i = 0; i < pattern.length; ) {
    const codePoint = pattern.codePointAt(i) as number;
    const width = codePoint > 0xffff ? 2 : 1;
    if (!escaped && !inClass) {
      const found = slotAt(pattern, i);
      if (found) {
        units.push({ slot: found.slot });
        slots++;
        i += found.length;
        continue;
      }
    }
    if (escaped) escaped = false;
    else if (codePoint === BACKSLASH) escaped = true;
    else if (codePoint === OPEN_BRACKET) inClass = true;
    else if (codePoint === CLOSE_BRACKET) inClass = false;
    units.push(codePoint);
    i += width;
  }
  return { units, slots };
}

export function parseGlobUnits(units: readonly GlobUnit[]): Glob | null {
  const chunks: Chunk[] = [];
  let i = 0;
  while (i < units.length) {
    let star = false;
    while (units[i] === STAR) {
      star = true;
      i++;
    }
    // scanChunk: the chunk ends at the next star outside a class.
    let end = i;
    let inRange = false;
    for (; end < units.length; end++) {
      const unit = units[end];
      if (unit === BACKSLASH) {
        if (end + 1 < units.length) end++;
      } else if (unit === OPEN_BRACKET) inRange = true;
      else if (unit === CLOSE_BRACKET) inRange = false;
      else if (unit === STAR && !inRange) break;
    }
    const items = parseChunk(units.slice(i, end));
    if (!items) return null;
    chunks.push({ star, items });
    i = end;
  }
  return { chunks };
}

/** matchChunk's syntax: literals, `?`, `\x`, and classes of ranges. */
function parseChunk(chunk: readonly GlobUnit[]): GlobItem[] | null {
  const items: ParsedItem[] = [];
  let k = 0;
  while (k < chunk.length) {
    const unit = chunk[k] as GlobUnit;
    if (typeof unit !== "number") {
      items.push({ kind: "slot", slot: unit.slot });
      k++;
    } else if (unit === OPEN_BRACKET) {
      k++;
      let negated = false;
      if (chunk[k] === CARET) {
        negated = true;
        k++;
      }
      const ranges: number[] = [];
      for (;;) {
        if (chunk[k] === CLOSE_BRACKET && ranges.length > 0) {
          k++;
          break;
        }
        const lo = getEsc(chunk, k);
        if (!lo) return null;
        k = lo.next;
        let hi = lo.codePoint;
        if (chunk[k] === HYPHEN) {
          const high = getEsc(chunk, k + 1);
          if (!high) return null;
          hi = high.codePoint;
          k = high.next;
        }
        if (hi < lo.codePoint) return null;
        ranges.push(lo.codePoint, hi);
      }
      items.push({ kind: "class", negated, ranges });
    } else if (unit === QUESTION) {
      items.push({ kind: "any" });
      k++;
    } else if (unit === BACKSLASH) {
      const next = chunk[k + 1];
      if (typeof next !== "number") return null;
      items.push({ kind: "char", codePoint: next });
      k += 2;
    } else {
      items.push({ kind: "char", codePoint: unit });
      k++;
    }
  }
  return mergeText(items);
}

/** Single characters, kept as the text they spell: compared with one startsWith. */
type ParsedItem = GlobItem | { kind: "char"; codePoint: number };

function mergeText(items: ParsedItem[]): GlobItem[] {
  const merged: GlobItem[] = [];
  let run: number[] = [];
  const endRun = () => {
    // One flat string (fromCodePoint, not `+=`, whose ropes JavaScriptCore resolves per use).
    if (run.length > 0) merged.push({ kind: "text", text: String.fromCodePoint(...run) });
    run = [];
  };
  for (const item of items) {
    if (item.kind === "char") run.push(item.codePoint);
    else {
      endRun();
      merged.push(item);
    }
  }
  endRun();
  return merged;
}

/** A possibly escaped class character, which must be followed by more of the class. */
function getEsc(chunk: readonly GlobUnit[], k: number): { codePoint: number; next: number } | null {
  let unit = chunk[k];
  if (typeof unit !== "number" || unit === HYPHEN || unit === CLOSE_BRACKET) return null;
  if (unit === BACKSLASH) {
    unit = chunk[++k];
    if (typeof unit !== "number") return null;
  }
  if (k + 1 >= chunk.length) return null;
  return { codePoint: unit, next: k + 1 };
}

/** The literal text every match must start with ("" when the glob starts with a star, a class or a slot). */
export function globPrefix(glob: Glob): string {
  const first = glob.chunks[0];
  const item = first?.items[0];
  return first && !first.star && item?.kind === "text" ? item.text : "";
}

const NO_SLOTS: readonly string[] = [];

/**
 * Whether `glob` matches all of `name` (Go's Match); `slotValues[n]` is the literal text of
 * slot n. Linear in the name for a given pattern: each chunk is tried at most once per position.
 */
export function matchGlob(glob: Glob, name: string, slotValues: readonly string[] = NO_SLOTS): boolean {
  const { chunks } = glob;
  let position = 0;
  for (let c = 0; c < chunks.length; c++) {
    const { star, items } = chunks[c] as Chunk;
    const isLast = c === chunks.length - 1;
    if (star && items.length === 0) return name.indexOf("/", position) < 0; // trailing star
    // Look for a match at the current position; the last chunk must also exhaust the name.
    let rest = matchChunk(items, name, position, slotValues);
    if (rest >= 0 && (!isLast || rest === name.length)) {
      position = rest;
      continue;
    }
    if (!star) return false;
    // Let the star take one more character at a time, never a '/'; commit to the first fit.
    // The star can end at most at the next '/'. When the chunk starts with text, only the
    // places where that text occurs are worth trying (same order, same first fit).
    const slash = name.indexOf("/", position);
    const limit = slash < 0 ? name.length : slash;
    const first = items[0];
    const lead =
      first?.kind === "text" ? first.text : first?.kind === "slot" ? (slotValues[first.slot] ?? "") : "";
    let found = false;
    for (let i = nextStart(name, position, lead); i >= 0 && i <= limit; i = nextStart(name, i, lead)) {
      rest = matchChunk(items, name, i, slotValues);
      if (rest >= 0 && (!isLast || rest === name.length)) {
        position = rest;
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  return position === name.length;
}

/** Where the chunk's match starting at `position` ends, or -1 when it does not match there. */
function matchChunk(
  items: readonly GlobItem[],
  name: string,
  position: number,
  slotValues: readonly string[],
): number {
  let at = position;
  for (const item of items) {
    if (item.kind === "text" || item.kind === "slot") {
      const text = item.kind === "text" ? item.text : (slotValues[item.slot] ?? "");
      if (!name.startsWith(text, at)) return -1;
      at += text.length;
      // Code points, not code units: a text ending in half a surrogate pair matches no whole one.
      if (
        at < name.length &&
        isHighSurrogate(text.charCodeAt(text.length - 1)) &&
        isLowSurrogate(name.charCodeAt(at))
      )
        return -1;
      continue;
    }
    if (at >= name.length) return -1;
    const codePoint = name.codePointAt(at) as number;
    at += codePoint > 0xffff ? 2 : 1;
    if (item.kind === "any") {
      if (codePoint === SLASH) return -1;
    } else {
      let inClass = false;
      for (let r = 0; r < item.ranges.length; r += 2)
        if ((item.ranges[r] as number) <= codePoint && codePoint <= (item.ranges[r + 1] as number)) {
          inClass = true;
          break;
        }
      if (inClass === item.negated) return -1;
    }
  }
  return at;
}

/** The next position after `from` (a code point later) where `lead` occurs, or -1. */
function nextStart(name: string, from: number, lead: string): number {
  if (from >= name.length) return -1;
  const next = from + codePointWidth(name, from);
  return lead === "" ? next : name.indexOf(lead, next);
}

function isHighSurrogate(unit: number): boolean {
  return unit >= 0xd800 && unit <= 0xdbff;
}

function isLowSurrogate(unit: number): boolean {
  return unit >= 0xdc00 && unit <= 0xdfff;
}

function codePointWidth(text: string, index: number): number {
  return (text.codePointAt(index) as number) > 0xffff ? 2 : 1;
}

/**
 * Go's regexp.QuoteMeta: what docker_auth wraps substituted values in, so a user named `.*`
 * cannot widen a pattern. The result is literal in both a regex and a glob.
 */
export function quoteMeta(text: string): string {
  return text.replace(/[\\.+*?()|[\]{}^$]/g, "\\$&");
}

/** A slot that stands for any text without a `/`: an account name (they hold none). */
export const ANY_SEGMENT = Object.freeze({ anySegment: true });

/**
 * What a slot may stand for when a glob is asked what it could match: a known literal,
 * ANY_SEGMENT, or (null) any text at all, `/` included: a label value or capture group whose
 * value is unknown.
 */
export type SlotValue = string | null | typeof ANY_SEGMENT;

type Atom =
  | { kind: "char"; codePoint: number }
  | { kind: "any" }
  | { kind: "class"; negated: boolean; ranges: number[] }
  | { kind: "star" }
  | { kind: "anything" };

function atomsOf(glob: Glob, slotValues: readonly SlotValue[]): Atom[] {
  const atoms: Atom[] = [];
  const text = (value: string) => {
    for (const c of value) atoms.push({ kind: "char", codePoint: c.codePointAt(0) as number });
  };
  for (const { star, items } of glob.chunks) {
    if (star) atoms.push({ kind: "star" });
    for (const item of items) {
      if (item.kind === "text") text(item.text);
      else if (item.kind === "slot") {
        const value = slotValues[item.slot];
        if (value === ANY_SEGMENT) atoms.push({ kind: "star" });
        else if (typeof value === "string") text(value);
        else atoms.push({ kind: "anything" });
      } else atoms.push(item);
    }
  }
  return atoms;
}

/**
 * The positions in the glob's atoms reachable after reading `text`, by a plain NFA that tries
 * every way a star could split (path.Match commits to the first fit, so it matches a subset of
 * this: what this says "cannot" Go cannot either). O(|atoms| × |text|).
 */
function reachable(atoms: readonly Atom[], text: string): Set<number> {
  const close = (states: Set<number>) => {
    for (const state of states) {
      const atom = atoms[state];
      if (atom && (atom.kind === "star" || atom.kind === "anything")) states.add(state + 1);
    }
    return states;
  };
  let states = close(new Set([0]));
  for (const c of text) {
    const codePoint = c.codePointAt(0) as number;
    const next = new Set<number>();
    for (const state of states) {
      const atom = atoms[state];
      if (!atom) continue;
      if (atom.kind === "anything" || (atom.kind === "star" && codePoint !== SLASH)) next.add(state);
      else if (atom.kind === "char" ? atom.codePoint === codePoint : atomMatches(atom, codePoint))
        next.add(state + 1);
    }
    states = close(next);
    if (states.size === 0) break;
  }
  return states;
}

function atomMatches(atom: Atom, codePoint: number): boolean {
  if (atom.kind === "any") return codePoint !== SLASH;
  if (atom.kind !== "class") return false;
  let inClass = false;
  for (let r = 0; r < atom.ranges.length; r += 2)
    if ((atom.ranges[r] as number) <= codePoint && codePoint <= (atom.ranges[r + 1] as number))
      inClass = true;
  return inClass !== atom.negated;
}

/**
 * Whether the glob could match some string that starts with `prefix`, slots standing for
 * `slotValues`. May say yes when Go's Match would not (see reachable), never the reverse.
 * Registration asks it of `NAME/` (src/acl.ts aclNamespaceClaims).
 */
export function globMayMatchPrefix(glob: Glob, prefix: string, slotValues: readonly SlotValue[]): boolean {
  return globPrefixTest(glob, slotValues)(prefix);
}

/** globMayMatchPrefix with the glob and slots fixed, prepared once: asked once per registration attempt. */
export function globPrefixTest(glob: Glob, slotValues: readonly SlotValue[]): (prefix: string) => boolean {
  const atoms = atomsOf(glob, slotValues);
  return (prefix) => reachable(atoms, prefix).size > 0;
}

/** Whether the glob could match all of `name`, slots standing for `slotValues` (as globMayMatchPrefix). */
export function globMayMatch(glob: Glob, name: string, slotValues: readonly SlotValue[]): boolean {
  const atoms = atomsOf(glob, slotValues);
  return reachable(atoms, name).has(atoms.length);
}
