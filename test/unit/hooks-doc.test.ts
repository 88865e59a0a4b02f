/**
 * The shell idiom docs/hooks.md recommends for reading ext_auth's stdin, run as it is written
 * (issue 8 M3: the earlier advice, `IFS= read -r u p`, splits nothing, so `p` was always empty
 * and a lookup-style hook let every password in). The snippet is taken from the document, so
 * the document cannot drift from what is tested.
 */
import { describe, expect, it } from "bun:test";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { ExtAuthAuthenticator } from "../../src/hooks/ext-auth.ts";
import { writeHook } from "../hook-fixtures.ts";

const HOOKS_MD = resolve(import.meta.dir, "../../docs/hooks.md");
const MARKER = "<!-- the test/unit/hooks-doc.test.ts snippet -->";

/** The ```sh block right after MARKER in docs/hooks.md. */
function documentedSnippet(): string {
  const text = readFileSync(HOOKS_MD, "utf8");
  const at = text.indexOf(MARKER);
  if (at === -1) throw new Error(`docs/hooks.md has no ${MARKER}`);
  const block = text.slice(at + MARKER.length).match(/^\s*```sh\n([\s\S]*?)\n```/);
  if (!block?.[1]) throw new Error("no ```sh block after the marker");
  return block[1];
}

/**
 * The snippet, then the shape of a lookup-style hook: the expected password comes from a store
 * that answers nothing for a name it does not know.
 */
function hookWith(reading: string, alicePassword: string): string {
  const quoted = `'${alicePassword.replaceAll("'", `'\\''`)}'`;
  return writeHook(
    [
      reading,
      `case "$u" in alice) expected=${quoted} ;; *) expected= ;; esac`,
      `[ "$p" = "$expected" ] && exit 0`,
      "exit 1",
    ].join("\n"),
  );
}

async function runDirectly(hook: string, stdin: string): Promise<number> {
  const proc = Bun.spawn([hook], { stdin: new Blob([stdin]), stdout: "ignore", stderr: "ignore" });
  return proc.exited;
}

describe("docs/hooks.md: the recommended way to read `<user> <password>`", () => {
  const snippet = documentedSnippet();

  it("is the line-then-split idiom, not `read u p` with an empty IFS", () => {
    expect(snippet).toContain("IFS= read -r line");
    expect(snippet).not.toMatch(/read -r u p/);
  });

  const password = "  sp ace\\back\\\\slash 'q' \"dq\" $HOME * ";
  const cases: [string, string, string][] = [
    ["the right password", password, "allow"],
    ["a wrong password", "wrong-password", "deny"],
    ["the right password without its leading spaces", password.trimStart(), "deny"],
    ["the right password without its trailing space", password.trimEnd(), "deny"],
    ["the right password with a space more", `${password} `, "deny"],
  ];
  for (const [title, sent, outcome] of cases) {
    it(`as an ext_auth hook: ${title} → ${outcome}`, async () => {
      const auth = new ExtAuthAuthenticator({
        command: hookWith(snippet, password),
        args: [],
        timeout_seconds: 5,
        cache_ttl_seconds: 0,
      });
      const result = await auth.authenticate({ username: "alice", password: sent }, { ip: null });
      expect(result.kind as string).toBe(outcome);
    });
  }

  it("an empty password is refused by the snippet itself (regauth never sends one; a hook must not rely on it)", async () => {
    const hook = hookWith(snippet, password);
    expect(await runDirectly(hook, "alice ")).toBe(1);
    expect(await runDirectly(hook, "stranger ")).toBe(1);
    expect(await runDirectly(hook, `alice ${password}`)).toBe(0);
  });

  it("works in a hook that runs under `set -e`", async () => {
    const hook = hookWith(`set -e\n${snippet}`, password);
    expect(await runDirectly(hook, `alice ${password}`)).toBe(0);
    expect(await runDirectly(hook, "alice wrong")).toBe(1);
  });

  it("the old advice `IFS= read -r u p` really was broken: with it, every password got in", async () => {
    // An empty IFS splits nothing: u is the whole line, p is empty, the store knows no user
    // "alice anything-at-all" and answers empty, and empty equals empty.
    const broken = hookWith("IFS= read -r u p", password);
    expect(await runDirectly(broken, "alice anything-at-all")).toBe(0);
    const fixed = hookWith(snippet, password);
    expect(await runDirectly(fixed, "alice anything-at-all")).toBe(1);
  });
});
