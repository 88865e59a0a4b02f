import { describe, expect, it } from "bun:test";
import { LogBacklog } from "../../src/log.ts";

/** A stderr whose reader takes lines only when the test says: each write's callback waits. */
function slowStderr() {
  const pending: (() => void)[] = [];
  const written: string[] = [];
  return {
    written,
    write: (text: string, done: () => void) => {
      written.push(text);
      pending.push(done);
    },
    /** The reader takes `count` lines (all when omitted). */
    read(count = pending.length) {
      for (const done of pending.splice(0, count)) done();
    },
  };
}

const line = (n: number) => `time=t level=info msg="token issued" n=${n}`.padEnd(99, "x"); // 100 bytes with \n

describe("LogBacklog", () => {
  it.each([
    // lines logged while nobody reads, the limit (bytes) → lines handed to stderr
    ["under the limit: everything", 5, 1000, 5],
    ["at the limit: the line that reaches it is the last", 10, 1000, 10],
    ["past the limit: the rest are dropped, not buffered", 50, 1000, 11],
  ])("%s", (_, lines, limitBytes, handed) => {
    const stderr = slowStderr();
    const backlog = new LogBacklog(stderr.write, limitBytes);
    for (let n = 0; n < lines; n++) backlog.write(line(n));
    expect(stderr.written).toHaveLength(handed);
    expect(backlog.droppedLines).toBe(lines - handed);
  });

  it("once the reader catches up, one line says how many were dropped, then lines flow again", () => {
    const stderr = slowStderr();
    const notices: number[] = [];
    const backlog = new LogBacklog(stderr.write, 1000, (dropped) => notices.push(dropped));
    for (let n = 0; n < 50; n++) backlog.write(line(n));
    expect(notices).toEqual([]);
    stderr.read(2); // 900 bytes still waiting: above half the limit, no notice yet
    expect(notices).toEqual([]);
    stderr.read(); // all taken
    expect(notices).toEqual([39]);
    expect(backlog.droppedLines).toBe(0);
    backlog.write(line(99));
    expect(stderr.written.at(-1)).toBe(`${line(99)}\n`);
    stderr.read();
    expect(notices).toEqual([39]);
  });

  it("a stderr that takes lines at once (a file, a terminal) never drops", () => {
    let count = 0;
    const backlog = new LogBacklog((_text, done) => {
      count++;
      done();
    }, 1000);
    for (let n = 0; n < 10_000; n++) backlog.write(line(n));
    expect(count).toBe(10_000);
    expect(backlog.droppedLines).toBe(0);
  });

  it("counts bytes, not characters", () => {
    const stderr = slowStderr();
    const backlog = new LogBacklog(stderr.write, 100);
    backlog.write("é".repeat(40)); // 81 bytes with \n
    backlog.write("é".repeat(40)); // past 100 bytes: the last one handed on
    backlog.write("a");
    expect(stderr.written).toHaveLength(2);
    expect(backlog.droppedLines).toBe(1);
  });
});
