/**
 * Background writes happen on a worker thread: the request thread never waits for a lock, the
 * queue stays bounded, writes coalesce by key (issue 9, item 2).
 */
import { Database } from "bun:sqlite";
import { describe, expect, it } from "bun:test";
import { existsSync } from "node:fs";
import { BackgroundWriter } from "../../src/db/background-writer.ts";
import { tempDatabase } from "../accounts-helpers.ts";

const insert = (k: string, v: number) => ({
  key: k,
  sql: "INSERT OR REPLACE INTO t (k, v) VALUES ($k, $v)",
  params: { k, v },
});

describe("BackgroundWriter", () => {
  it("coalesces writes with the same key and writes a batch in one go", async () => {
    const { db, path } = tempDatabase();
    db.run("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER) STRICT");
    const writer = new BackgroundWriter(path, { flushIntervalMs: 60_000 });
    for (let v = 0; v < 5; v++) writer.enqueue(insert("a", v));
    writer.enqueue(insert("b", 1));
    expect(writer.pending).toBe(2);
    expect(await writer.flush()).toBe(true);
    expect(writer.pending).toBe(0);
    expect(db.query("SELECT * FROM t ORDER BY k").all()).toEqual([
      { k: "a", v: 4 },
      { k: "b", v: 1 },
    ]);
    await writer.close();
  });

  // Issue 12 item 6: the worker is a JavaScript VM of its own (~5 MiB resident); a process that
  // never writes in the background (most CLI commands, a server before its first write) runs none.
  it("starts its thread on the first batch, not when made", async () => {
    const { db, path } = tempDatabase();
    db.run("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER) STRICT");
    const writer = new BackgroundWriter(path, { flushIntervalMs: 60_000 });
    expect(writer.threadStarted).toBe(false);
    expect(await writer.flush()).toBe(true); // nothing queued: nothing to start
    writer.enqueue(insert("a", 1));
    expect(writer.threadStarted).toBe(false); // queued, not yet handed over
    expect(await writer.flush()).toBe(true);
    expect(writer.threadStarted).toBe(true);
    expect(db.query("SELECT * FROM t").all()).toEqual([{ k: "a", v: 1 }]);
    writer.enqueue(insert("b", 2));
    expect(await writer.flush()).toBe(true); // the same thread again
    expect(db.query("SELECT count(*) AS n FROM t").get()).toEqual({ n: 2 });
    await writer.close();
  });

  // A terminated thread never closes its connection, and SQLite removes the -wal only when the
  // last connection closes: serve's clean stop left regauth.db-wal behind.
  it("closes its connection before its thread ends, so the last close removes the -wal", async () => {
    const { db, path } = tempDatabase();
    db.run("PRAGMA journal_mode = WAL");
    db.run("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER) STRICT");
    const writer = new BackgroundWriter(path, { flushIntervalMs: 60_000 });
    writer.enqueue(insert("a", 1));
    expect(await writer.flush()).toBe(true);
    await writer.close();
    db.close();
    expect({ wal: existsSync(`${path}-wal`), shm: existsSync(`${path}-shm`) }).toEqual({
      wal: false,
      shm: false,
    });
  });

  it("closing a writer that never wrote starts no thread", async () => {
    const { path } = tempDatabase();
    const writer = new BackgroundWriter(path);
    await writer.close();
    expect(writer.threadStarted).toBe(false);
    expect(writer.enqueue(insert("a", 1))).toBe(false); // closed
  });

  it("writes on its own after the flush interval", async () => {
    const { db, path } = tempDatabase();
    db.run("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER) STRICT");
    const writer = new BackgroundWriter(path, { flushIntervalMs: 20 });
    writer.enqueue(insert("a", 1));
    for (let i = 0; i < 100 && writer.pending > 0; i++) await Bun.sleep(20);
    expect(db.query("SELECT * FROM t").all()).toEqual([{ k: "a", v: 1 }]);
    await writer.close();
  });

  it("while another process holds the write lock, the caller's thread keeps running and the batch lands later", async () => {
    const { db, path } = tempDatabase();
    db.run("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER) STRICT");
    const other = new Database(path);
    other.run("BEGIN IMMEDIATE");
    const writer = new BackgroundWriter(path, { flushIntervalMs: 60_000 });
    writer.enqueue(insert("x", 1));
    const started = performance.now();
    const flushed = writer.flush();
    expect(performance.now() - started).toBeLessThan(50); // handed over, not waited for
    let ticks = 0;
    const ticking = setInterval(() => ticks++, 10);
    await Bun.sleep(300);
    clearInterval(ticking);
    expect(ticks).toBeGreaterThan(10); // this thread was never blocked
    expect(writer.pending).toBe(1);
    other.run("ROLLBACK");
    expect(await flushed).toBe(true);
    expect(db.query("SELECT k FROM t").all()).toEqual([{ k: "x" }]);
    await writer.close();
    other.close();
  });

  it("drops and counts writes beyond its bound instead of growing or blocking", async () => {
    const { path } = tempDatabase();
    const writer = new BackgroundWriter(path, { maxPending: 3, flushIntervalMs: 60_000 });
    const accepted = Array.from({ length: 10 }, (_, i) =>
      writer.enqueue({ key: `k${i}`, sql: "SELECT 1", params: {} }),
    );
    expect(accepted.filter(Boolean).length).toBe(3);
    expect(writer.stats.dropped).toBe(7);
    expect(writer.enqueue({ key: "k0", sql: "SELECT 1", params: {} })).toBe(true); // a known key still updates
    await writer.close();
  });
});
