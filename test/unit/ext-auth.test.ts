import { afterEach, describe, expect, it } from "bun:test";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Unavailable } from "../../src/errors.ts";
import { ExtAuthAuthenticator } from "../../src/hooks/ext-auth.ts";
import type { ExtAuthConfig } from "../../src/hooks/hook-config.ts";
import { log } from "../../src/log.ts";
import { makeTempDir } from "../helpers.ts";
import { writeHook } from "../hook-fixtures.ts";

const CONTEXT = { ip: null };

function hookConfig(command: string, extra: Partial<ExtAuthConfig> = {}): ExtAuthConfig {
  return { command, args: [], timeout_seconds: 5, cache_ttl_seconds: 0, ...extra };
}

function authenticator(command: string, extra: Partial<ExtAuthConfig> = {}) {
  return new ExtAuthAuthenticator(hookConfig(command, extra));
}

async function expectUnavailable(promise: Promise<unknown>): Promise<void> {
  await expect(promise).rejects.toBeInstanceOf(Unavailable);
}

const logLines: string[] = [];
let restoreLog: (() => void) | null = null;
function captureLog(): string[] {
  logLines.length = 0;
  restoreLog = log.capture(logLines);
  return logLines;
}
afterEach(() => {
  restoreLog?.();
  restoreLog = null;
});

describe("ext_auth: docker_auth compatibility", () => {
  // Written in the style of docker_auth's examples/ext_auth.sh: bash, plain `read u p`, `==`, `-a`.
  const dockerAuthStyle = (() => {
    const path = join(makeTempDir(), "docker_auth_style.sh");
    writeFileSync(
      path,
      [
        "#!/bin/bash",
        "read u p",
        'if [ "$u" == "plain" -a "$p" == "secret" ]; then',
        "  exit 0",
        "fi",
        'if [ "$u" == "boss" -a "$p" == "with spaces inside" ]; then',
        '  echo \'{"labels": {"level": ["max"], "groups": ["VIP", "ATeam"]}}\'',
        "  exit 0",
        "fi",
        "exit 1",
        "",
      ].join("\n"),
    );
    chmodSync(path, 0o755);
    return path;
  })();

  it.each([
    ["plain", "secret", { kind: "allow", labels: {} }],
    ["boss", "with spaces inside", { kind: "allow", labels: { level: ["max"], groups: ["VIP", "ATeam"] } }],
    ["plain", "wrong", { kind: "deny" }],
    ["nobody", "secret", { kind: "deny" }],
  ])("a `read u p` hook: %s / %s", async (username, password, expected) => {
    expect(await authenticator(dockerAuthStyle).authenticate({ username, password }, CONTEXT)).toEqual(
      expected as never,
    );
  });

  const example = resolve(import.meta.dir, "../../docs/examples/ext_auth.sh");
  it.each([
    ["builder", "let-me-build", { kind: "allow", labels: { group: ["builders"], level: ["max"] } }],
    ["viewer", "just-looking", { kind: "allow", labels: {} }],
    ["builder", "guess", { kind: "deny" }],
    // The password byte for byte (issue 8 M3): `read -r u p` trimmed these into a match.
    ["builder", " let-me-build", { kind: "deny" }],
    ["viewer", "just-looking  ", { kind: "deny" }],
    ["stranger", "whatever", { kind: "no-match" }],
  ])("docs/examples/ext_auth.sh: %s / %j", async (username, password, expected) => {
    expect(await authenticator(example).authenticate({ username, password }, CONTEXT)).toEqual(
      expected as never,
    );
  });

  it("sends exactly `user password`: one space, no newline", async () => {
    const dir = makeTempDir();
    const hook = writeHook('cat > "$1"; exit 1');
    const auth = new ExtAuthAuthenticator({ ...hookConfig(hook), args: [join(dir, "stdin")] });
    await auth.authenticate({ username: "alice", password: " pass word " }, CONTEXT);
    expect(readFileSync(join(dir, "stdin"), "utf8")).toBe("alice  pass word ");
  });
});

describe("ext_auth: exit codes and output", () => {
  it.each([
    ["exit 0", { kind: "allow", labels: {} }],
    ["echo; exit 0", { kind: "allow", labels: {} }],
    [
      'echo \'{"labels": {"g": ["a", "b"]}, "ignored": 1}\'; exit 0',
      { kind: "allow", labels: { g: ["a", "b"] } },
    ],
    ["echo '{\"other\": true}'", { kind: "allow", labels: {} }],
    [
      `echo '{"labels": {"__proto__": ["x"], "constructor": ["y"]}}'`,
      { kind: "allow", labels: JSON.parse('{"__proto__": ["x"], "constructor": ["y"]}') },
    ],
    ["exit 1", { kind: "deny" }],
    ["exit 2", { kind: "no-match" }],
  ])("%s", async (body, expected) => {
    const outcome = await authenticator(writeHook(body)).authenticate(
      { username: "u", password: "p" },
      CONTEXT,
    );
    expect(outcome).toEqual(expected as never);
  });

  it.each([
    ["OK"],
    ["[]"],
    ["null"],
    ['"labels"'],
    ['{"labels": ["g"]}'],
    ['{"labels": {"g": "not-a-list"}}'],
    ['{"labels": {"g": [1]}}'],
    ['{"labels": {"g": ["a"]}'],
  ])("denies on exit 0 with unusable stdout %s, and says why in the log", async (stdout) => {
    const lines = captureLog();
    const hook = writeHook(`cat <<'EOF'\n${stdout}\nEOF\nexit 0`);
    expect(await authenticator(hook).authenticate({ username: "u", password: "p" }, CONTEXT)).toEqual({
      kind: "deny",
    });
    expect(lines.some((line) => line.includes("unusable output") && line.includes("problem="))).toBe(true);
  });

  it("denies on exit 0 with stdout that is not UTF-8", async () => {
    const hook = writeHook("printf '\\377\\376{}'; exit 0");
    const lines = captureLog();
    expect(await authenticator(hook).authenticate({ username: "u", password: "p" }, CONTEXT)).toEqual({
      kind: "deny",
    });
    expect(lines.join("\n")).toContain("not UTF-8");
  });

  it.each([["exit 3"], ["exit 137"], ["kill -9 $$"], ["head -c 100000000 /dev/zero"]])(
    "fails (503), never denies: %s",
    async (body) => {
      await expectUnavailable(
        Promise.resolve(
          authenticator(writeHook(body)).authenticate({ username: "u", password: "p" }, CONTEXT),
        ),
      );
    },
  );

  it("fails (503) at the timeout", async () => {
    const auth = authenticator(writeHook("sleep 60"), { timeout_seconds: 0.2 });
    const started = Date.now();
    await expectUnavailable(Promise.resolve(auth.authenticate({ username: "u", password: "p" }, CONTEXT)));
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("fails (503) at once, with a log line, when too many runs are waiting", async () => {
    const lines = captureLog();
    const auth = new ExtAuthAuthenticator(hookConfig(writeHook("sleep 0.3; exit 0")), {
      limits: { maxConcurrent: 1, maxQueued: 0 },
    });
    const outcomes = await Promise.allSettled([
      auth.authenticate({ username: "a", password: "p" }, CONTEXT),
      auth.authenticate({ username: "b", password: "p" }, CONTEXT),
    ]);
    expect(outcomes[0]?.status).toBe("fulfilled");
    expect(outcomes[1]?.status === "rejected" && outcomes[1].reason instanceof Unavailable).toBe(true);
    expect(lines.some((line) => line.includes("reason=busy"))).toBe(true);
  });

  it("never logs the password, even when the program prints it", async () => {
    const lines = captureLog();
    const hook = writeHook('read u p; echo "checking $u with $p" >&2; exit 3');
    await expectUnavailable(
      Promise.resolve(authenticator(hook).authenticate({ username: "u", password: "hunter2-pw" }, CONTEXT)),
    );
    const text = lines.join("\n");
    expect(text).toContain("checking u with [redacted]");
    expect(text).not.toContain("hunter2");
  });
});

describe("ext_auth: hostile usernames are data", () => {
  const sentinelDir = makeTempDir();
  const sentinel = join(sentinelDir, "PWNED");
  it.each([
    [`$(id>${sentinel})`],
    [`;id>${sentinel}`],
    [`\`id>${sentinel}\``],
    [`|id>${sentinel}`],
    [`&&id>${sentinel}`],
    ["'OR'1'='1"],
    ["--help"],
  ])("passes %s to the program as bytes; no command runs", async (username) => {
    const dir = makeTempDir();
    const hook = writeHook('cat > "$1"; exit 1');
    const auth = new ExtAuthAuthenticator({ ...hookConfig(hook), args: [join(dir, "stdin")] });
    expect(await auth.authenticate({ username, password: "pw" }, CONTEXT)).toEqual({ kind: "deny" });
    expect(readFileSync(join(dir, "stdin"), "utf8")).toBe(`${username} pw`);
    expect(existsSync(sentinel)).toBe(false);
  });

  it.each([
    ["a b", "pw"],
    ["a\tb", "pw"],
    ["a\nb", "pw"],
    ["a\u0000b", "pw"],
    ["", "pw"],
    ["alice", ""],
    ["", ""],
  ])(
    "does not run the program for %j / %j (no-match: `read u p` would misread the name)",
    async (username, password) => {
      const dir = makeTempDir();
      const hook = writeHook('touch "$1/ran"; exit 0');
      const auth = new ExtAuthAuthenticator({ ...hookConfig(hook), args: [dir] });
      expect(await auth.authenticate({ username, password }, CONTEXT)).toEqual({ kind: "no-match" });
      expect(existsSync(join(dir, "ran"))).toBe(false);
    },
  );

  // Deny, not no-match: the name may be the program's user, and "no one knows this name" would
  // let registration create a database account of that name that shadows the program's user.
  it.each([
    ["alice", "pass\nwith a second line"],
    ["alice", "nul\u0000inside"],
    ["alice", "attacker-pw\u0001"],
    ["alice", "tab\tinside"],
    ["alice", "del\u007f"],
    ["alice", "c1\u0085control"],
  ])(
    "denies %j / %j without running the program (control character in the password)",
    async (username, password) => {
      const dir = makeTempDir();
      const hook = writeHook('touch "$1/ran"; exit 0');
      const auth = new ExtAuthAuthenticator({ ...hookConfig(hook), args: [dir] });
      expect(await auth.authenticate({ username, password }, CONTEXT)).toEqual({ kind: "deny" });
      expect(existsSync(join(dir, "ran"))).toBe(false);
    },
  );

  it("passes non-ASCII usernames and passwords through as UTF-8", async () => {
    const dir = makeTempDir();
    const hook = writeHook('cat > "$1"; exit 0');
    const auth = new ExtAuthAuthenticator({ ...hookConfig(hook), args: [join(dir, "stdin")] });
    expect((await auth.authenticate({ username: "zoë", password: "pässwörd €" }, CONTEXT)).kind).toBe(
      "allow",
    );
    expect(readFileSync(join(dir, "stdin"), "utf8")).toBe("zoë pässwörd €");
  });
});

describe("ext_auth: cache", () => {
  function countingHook(body: string) {
    const dir = makeTempDir();
    const counter = join(dir, "runs");
    writeFileSync(counter, "");
    const hook = writeHook(`echo run >> "$1"\n${body}`);
    return { hook, counter, runs: () => readFileSync(counter, "utf8").split("\n").length - 1 };
  }

  it("remembers allow, deny and no-match per user and password until the TTL passes", async () => {
    let nowMs = 1_000_000;
    const { hook, counter, runs } = countingHook(
      'read u p; [ "$p" = good ] && exit 0; [ "$u" = x ] && exit 2; exit 1',
    );
    const auth = new ExtAuthAuthenticator(
      { ...hookConfig(hook, { cache_ttl_seconds: 10 }), args: [counter] },
      { now: () => nowMs },
    );
    const ask = (username: string, password: string) => auth.authenticate({ username, password }, CONTEXT);
    expect((await ask("alice", "good")).kind).toBe("allow");
    expect((await ask("alice", "good")).kind).toBe("allow");
    expect(runs()).toBe(1);
    expect((await ask("alice", "bad")).kind).toBe("deny");
    expect((await ask("alice", "bad")).kind).toBe("deny");
    expect((await ask("x", "y")).kind).toBe("no-match");
    expect((await ask("x", "y")).kind).toBe("no-match");
    expect(runs()).toBe(3);
    expect((await ask("bob", "good")).kind).toBe("allow"); // another user is another entry
    expect(runs()).toBe(4);
    nowMs += 10_001;
    expect((await ask("alice", "good")).kind).toBe("allow");
    expect(runs()).toBe(5);
  });

  it("never remembers a failure", async () => {
    const { hook, counter, runs } = countingHook('[ "$(wc -l < "$1")" -ge 2 ] && exit 0; exit 3');
    const auth = new ExtAuthAuthenticator({
      ...hookConfig(hook, { cache_ttl_seconds: 10 }),
      args: [counter],
    });
    const ask = () => auth.authenticate({ username: "alice", password: "pw" }, CONTEXT);
    await expectUnavailable(Promise.resolve(ask()));
    expect((await ask()).kind).toBe("allow");
    expect(runs()).toBe(2);
  });

  it("runs once for identical concurrent requests", async () => {
    const { hook, counter, runs } = countingHook("sleep 0.2; exit 0");
    const auth = new ExtAuthAuthenticator({
      ...hookConfig(hook, { cache_ttl_seconds: 10 }),
      args: [counter],
    });
    const outcomes = await Promise.all(
      Array.from({ length: 10 }, () => auth.authenticate({ username: "alice", password: "pw" }, CONTEXT)),
    );
    expect(outcomes.every((o) => o.kind === "allow")).toBe(true);
    expect(runs()).toBe(1);
  });

  it("runs every time with cache_ttl_seconds: 0", async () => {
    const { hook, counter, runs } = countingHook("exit 0");
    const auth = new ExtAuthAuthenticator({ ...hookConfig(hook), args: [counter] });
    await auth.authenticate({ username: "alice", password: "pw" }, CONTEXT);
    await auth.authenticate({ username: "alice", password: "pw" }, CONTEXT);
    expect(runs()).toBe(2);
  });
});
