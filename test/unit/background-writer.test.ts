/** Background writes never wait for a lock, stay bounded, and coalesce by key (issue 9, item 2). */
import { Database } from "bun:sqlite";
import { describe, expect, it } from "bun:test";
import { BackgroundWriter } from "../../src/db/background-writer.ts";
import { tempDatabase } from "../accounts-helpers.ts";

describe("BackgroundWriter", () => {
  it("coalesces writes with the same key and writes a batch in one go", () => {
    const { db } = tempDatabase();
    db.run("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER) STRICT");
    const writer = new BackgroundWriter(db, { flushIntervalMs: 60_000 });
    for (let v = 0; v < 5; v++)
      writer.enqueue({ key: "a", apply: (h) => h.run("INSERT OR REPLACE INTO t VALUES ('a', ?)", [v]) });
    writer.enqueue({ key: "b", apply: (h) => h.run("INSERT OR REPLACE INTO t VALUES ('b', 1)") });
    expect(writer.pending).toBe(2);
    expect(writer.flush()).toBe(true);
    expect(db.query("SELECT * FROM t ORDER BY k").all()).toEqual([
      { k: "a", v: 4 },
      { k: "b", v: 1 },
    ]);
    writer.close();
  });

  it("does not wait while another connection holds the write lock, keeps the batch, and writes it later", () => {
    const { db, path } = tempDatabase();
    db.run("CREATE TABLE t (k TEXT PRIMARY KEY) STRICT");
    db.run("PRAGMA busy_timeout = 5000");
    const other = new Database(path);
    other.run("BEGIN IMMEDIATE");
    const writer = new BackgroundWriter(db, { flushIntervalMs: 60_000 });
    writer.enqueue({ key: "x", apply: (h) => h.run("INSERT INTO t VALUES ('x')") });
    const started = performance.now();
    expect(writer.flush()).toBe(false);
    expect(performance.now() - started).toBeLessThan(500);
    expect(writer.pending).toBe(1);
    expect(db.query("PRAGMA busy_timeout").get()).toEqual({ timeout: 5000 }); // restored
    other.run("ROLLBACK");
    expect(writer.flush()).toBe(true);
    expect(db.query("SELECT k FROM t").all()).toEqual([{ k: "x" }]);
    writer.close();
    other.close();
  });

  it("drops and counts writes beyond its bound instead of growing or blocking", () => {
    const { db } = tempDatabase();
    const writer = new BackgroundWriter(db, { maxPending: 3, flushIntervalMs: 60_000 });
    const accepted = Array.from({ length: 10 }, (_, i) => writer.enqueue({ key: `k${i}`, apply: () => {} }));
    expect(accepted.filter(Boolean).length).toBe(3);
    expect(writer.stats.dropped).toBe(7);
    expect(writer.enqueue({ key: "k0", apply: () => {} })).toBe(true); // a known key still updates
    writer.close();
  });
});
