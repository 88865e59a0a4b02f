/** The data directory's first-run and trust rules (issue 9 item 3, issue 8 L4), table-driven. */
import { describe, expect, it } from "bun:test";
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  dataDirFileProblem,
  dataDirTrustProblem,
  inspectDataDir,
  previousRunProblems,
} from "../../src/db/data-dir.ts";
import { makeTempDir } from "../helpers.ts";

describe("previousRunProblems", () => {
  type Files = Record<string, string>;
  const cases: [string, Files, boolean, RegExp | null][] = [
    ["an empty directory is a first run", {}, true, null],
    [
      "a database alone (the CLI before the first start, configured keys)",
      { "regauth.db": "x" },
      false,
      null,
    ],
    ["a whole installation", { "regauth.db": "x", "token.key": "k", "token.crt": "c" }, true, null],
    ["a 0-byte database alone is a failed first run", { "regauth.db": "" }, true, null],
    ["refresh.key alone (registry-config of earlier versions)", { "refresh.key": "r" }, true, null],
    [
      "a 0-byte database next to the keys",
      { "regauth.db": "", "token.key": "k", "token.crt": "c" },
      true,
      /regauth\.db is empty \(0 bytes\), but token\.key, token\.crt .*--reinitialize/,
    ],
    ["a 0-byte database next to refresh.key", { "regauth.db": "", "refresh.key": "r" }, false, /is empty/],
    [
      "a missing database next to the keys",
      { "token.key": "k", "token.crt": "c" },
      true,
      /regauth\.db is missing/,
    ],
    [
      "both keys missing next to a database",
      { "regauth.db": "x", "refresh.key": "r" },
      true,
      /token\.key and token\.crt are missing .* --reinitialize/,
    ],
    [
      // The registry trusts token-bundle.crt (current, next and retired keys), not token.crt.
      "both keys missing next to a database: the registry is told to use token-bundle.crt",
      { "regauth.db": "x" },
      true,
      /give every registry the new token-bundle\.crt as rootcertbundle/,
    ],
    ["keys missing next to a database, keys configured elsewhere", { "regauth.db": "x" }, false, null],
    [
      "a whole installation after a rotation",
      {
        "regauth.db": "x",
        "token.key": "k",
        "token.crt": "c",
        "token-keys.json": "{}",
        "token-1.key": "k",
        "token-1.crt": "c",
      },
      true,
      null,
    ],
    [
      // The database and the first pair gone, a rotation's files left: not a first run.
      "a missing database next to a rotation's files only",
      { "token-keys.json": "{}", "token-1.key": "k", "token-1.crt": "c" },
      true,
      /regauth\.db is missing, but token-1\.crt, token-1\.key, token-keys\.json .*--reinitialize/,
    ],
    [
      "the first pair missing next to a database and a rotation: the rotated keys stay",
      { "regauth.db": "x", "token-keys.json": "{}", "token-1.key": "k", "token-1.crt": "c" },
      true,
      /token\.key and token\.crt are missing .*rotation state .*a current token-N key keeps signing/,
    ],
    [
      "names that only look like a rotation's are not one",
      { "token-01.key": "k", "token-keys.json.bak": "" },
      true,
      null,
    ],
  ];
  for (const [title, files, generatesKey, expected] of cases) {
    it(title, () => {
      const dir = makeTempDir();
      for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
      const problems = previousRunProblems(inspectDataDir(dir), dir, generatesKey);
      if (expected === null) expect(problems).toEqual([]);
      else {
        expect(problems.length).toBe(1);
        expect(problems[0]).toMatch(expected);
      }
    });
  }
});

describe("dataDirTrustProblem", () => {
  const cases: [number, RegExp | null][] = [
    [0o700, null],
    [0o750, null],
    [0o755, null],
    [0o770, /writable by its group \(mode 0770\).*chmod 700/],
    [0o777, /writable by everyone \(mode 0777\)/],
    [0o1777, /writable by everyone/],
  ];
  for (const [mode, expected] of cases) {
    it(`mode ${mode.toString(8)} of our own directory: ${expected ? "refused" : "accepted"}`, () => {
      const dir = join(makeTempDir(), "data");
      mkdirSync(dir);
      chmodSync(dir, mode);
      const problem = dataDirTrustProblem(dir);
      if (expected === null) expect(problem).toBeNull();
      else expect(problem).toMatch(expected);
    });
  }
});

describe("dataDirFileProblem (review finding 10)", () => {
  const dir = makeTempDir("dd-file-");
  writeFileSync(join(dir, "regular"), "x");
  symlinkSync(join(dir, "regular"), join(dir, "link"));
  symlinkSync(join(dir, "nowhere"), join(dir, "dangling"));
  mkdirSync(join(dir, "directory"));
  Bun.spawnSync(["mkfifo", join(dir, "fifo")]);
  const cases: [string, RegExp | null][] = [
    ["missing", null],
    ["regular", null],
    ["link", /link is a symbolic link \(to .*regular\); regauth does not follow links/],
    ["dangling", /dangling is a symbolic link \(to .*nowhere\)/],
    ["directory", /directory is not a regular file/],
    ["fifo", /fifo is not a regular file/],
  ];
  for (const [name, expected] of cases) {
    it(name, () => {
      const problem = dataDirFileProblem(join(dir, name));
      if (expected === null) expect(problem).toBeNull();
      else expect(problem).toMatch(expected);
    });
  }
});
