/** The logfmt logger: client-chosen strings cannot forge lines or fields. */
import { afterEach, describe, expect, it } from "bun:test";
import { log } from "../../src/log.ts";

let restore: (() => void) | null = null;
afterEach(() => {
  restore?.();
  restore = null;
  log.configure({ level: "info", format: "logfmt" });
  if (savedLevel === undefined) delete process.env.REGAUTH_LOG_LEVEL;
  else process.env.REGAUTH_LOG_LEVEL = savedLevel;
});
const savedLevel = process.env.REGAUTH_LOG_LEVEL;

function capture(): string[] {
  const lines: string[] = [];
  restore = log.capture(lines);
  return lines;
}

describe("log", () => {
  it("writes logfmt with time, level and msg", () => {
    const lines = capture();
    log.info("token issued", { account: "alice", count: 3, ok: true });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^time=\d{4}-\d\d-\d\dT\S+Z level=info msg="token issued" account=alice count=3 ok=true$/,
    );
  });

  const hostile: [string, string][] = [
    ["LF", "alice\ntime=x level=error msg=forged"],
    ["CR", "alice\rlevel=error"],
    ["CRLF", "alice\r\nlevel=error"],
    ["NUL", "ali\u0000ce"],
    ["ESC (terminal control)", "\u001b[31mred\u001b[0m"],
    ["DEL and C1", "a\u007fb\u0085c\u009bd"],
    ["line separators", "a\u2028b\u2029c"],
    ["quote and equals", 'alice" level=error msg="forged'],
    ["backslash", 'a\\"b'],
  ];
  for (const [name, value] of hostile) {
    it(`escapes ${name} in a value`, () => {
      const lines = capture();
      log.warn("authentication failed", { account: value });
      expect(lines).toHaveLength(1);
      const line = lines[0] ?? "";
      expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/);
      // The value is one quoted JSON string that decodes back to the original.
      const quoted = line.slice(line.indexOf("account=") + "account=".length);
      expect(JSON.parse(quoted)).toBe(value);
    });
  }

  // The patterns are compiled once (a global one keeps state between uses): every use starts afresh.
  it("escapes every value of a line, and of the lines after it, alike", () => {
    const lines = capture();
    for (let i = 0; i < 3; i++) log.warn("x", { a: "1\u2028", b: "2\u0085", c: "ok" });
    expect(lines).toEqual(Array(3).fill(expect.stringContaining('a="1\\u2028" b="2\\u0085" c=ok')));
  });

  it("escapes the message too", () => {
    const lines = capture();
    log.error("bad\nlevel=info msg=ok");
    expect(lines[0]).toContain('msg="bad\\nlevel=info msg=ok"');
  });

  it("quotes empty strings, spaces and equals signs so fields stay separable", () => {
    const lines = capture();
    log.info("m", { a: "", b: "x y", c: "k=v", d: undefined });
    expect(lines[0]).toEndWith('a="" b="x y" c="k=v" d=""');
  });

  it("prints errors by message and objects as JSON", () => {
    const lines = capture();
    log.info("m", { error: new Error("boom\nline2"), access: [{ name: "a", actions: ["pull"] }] });
    expect(lines[0]).toContain('error="boom\\nline2"');
    expect(lines[0]).toContain('access="[{\\"name\\":\\"a\\",\\"actions\\":[\\"pull\\"]}]"');
  });

  it("honours the level threshold", () => {
    const lines = capture();
    log.setLevel("warn");
    log.debug("d");
    log.info("i");
    log.warn("w");
    log.error("e");
    expect(lines.map((line) => /level=(\w+)/.exec(line)?.[1])).toEqual(["warn", "error"]);
  });

  it("writes JSON, one object a line, with log.format json", () => {
    const lines = capture();
    log.configure({ level: "info", format: "json" });
    log.info("token issued", {
      account: "alice",
      count: 3,
      access: [{ name: "a", actions: ["pull"] }],
      error: new Error("boom"),
      skipped: undefined,
      level: "error", // a field cannot replace time, level or msg
    });
    expect(lines).toHaveLength(1);
    const record = JSON.parse(lines[0] ?? "");
    expect(record).toEqual({
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\S+Z$/),
      level: "info",
      msg: "token issued",
      account: "alice",
      count: 3,
      access: [{ name: "a", actions: ["pull"] }],
      error: "boom",
    });
  });

  for (const [name, value] of hostile) {
    it(`keeps ${name} on one JSON line`, () => {
      const lines = capture();
      log.configure({ level: "info", format: "json" });
      log.warn("authentication failed", { account: value });
      expect(lines).toHaveLength(1);
      expect(lines[0]).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/);
      expect(JSON.parse(lines[0] ?? "").account).toBe(value);
    });
  }

  const levels: [string | undefined, "debug" | "info" | "warn" | "error", string[]][] = [
    [undefined, "debug", ["debug", "info", "warn", "error"]],
    [undefined, "error", ["error"]],
    ["debug", "error", ["debug", "info", "warn", "error"]], // REGAUTH_LOG_LEVEL wins over log.level
    ["WARN", "debug", ["warn", "error"]],
    ["verbose", "warn", ["warn", "error"]], // not a level: the config decides
  ];
  for (const [environment, configured, expected] of levels) {
    it(`REGAUTH_LOG_LEVEL=${environment} with log.level ${configured} logs ${expected.join(",")}`, () => {
      if (environment === undefined) delete process.env.REGAUTH_LOG_LEVEL;
      else process.env.REGAUTH_LOG_LEVEL = environment;
      const lines = capture();
      log.configure({ level: configured, format: "logfmt" });
      log.debug("d");
      log.info("i");
      log.warn("w");
      log.error("e");
      expect(lines.map((line) => /level=(\w+)/.exec(line)?.[1])).toEqual(expected);
    });
  }
});

describe("a worker's lines (issue 17)", () => {
  it("end with the process's fields, in logfmt and JSON, which win over a line's own", () => {
    const lines = capture();
    log.tagProcess({ worker: 1 });
    try {
      log.info("token issued", { account: "alice", worker: 9, count: 3 });
      log.configure({ level: "info", format: "json" });
      log.info("token issued", { account: "alice", worker: 9, count: 3 });
    } finally {
      log.tagProcess(undefined as unknown as Record<string, unknown>);
    }
    expect(lines[0]).toMatch(/ msg="token issued" account=alice count=3 worker=1$/);
    expect(JSON.parse(lines[1] ?? "")).toMatchObject({ account: "alice", count: 3, worker: 1 });
  });
});
