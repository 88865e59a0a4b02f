/** The audit log (issue 10 item 6): background recording, bounded, queries, retention, no secrets. */
import { describe, expect, it } from "bun:test";
import { AUDIT_MAX_PENDING, AuditLog, redactSecrets } from "../../src/audit/audit-log.ts";
import { BackgroundWriter } from "../../src/db/background-writer.ts";
import { tempDatabase } from "../accounts-helpers.ts";

const OPTIONS = { enabled: true, retentionDays: 90, maxEvents: 1000 };
const event = (over: Record<string, unknown> = {}) => ({
  kind: "login" as const,
  actor: "alice",
  ip: "192.0.2.1",
  repository: null,
  outcome: "ok" as const,
  details: { authenticator: "database" },
  ...over,
});

describe("AuditLog", () => {
  it("coalesces identical events into one row with a count; different keys stay apart", async () => {
    const { db, path } = tempDatabase();
    const writer = new BackgroundWriter(path, { flushIntervalMs: 10 });
    const audit = new AuditLog(db, writer, OPTIONS);
    let built = 0;
    const make = (actor: string) => () => {
      built++;
      return event({ kind: "token", actor, atUnixMs: 5000 });
    };
    for (let i = 0; i < 5; i++) audit.recordCoalesced("same", make("alice"));
    audit.recordCoalesced("other", make("bob"));
    await audit.flush();
    const rows = audit.query({ limit: 10 });
    expect(rows.map((e) => [e.actor, e.details.count])).toEqual([
      ["alice", 5],
      ["bob", undefined],
    ]);
    // The event is built once per key, not once per request.
    expect(built).toBe(2);
    // After the window, the same key starts a new row.
    audit.recordCoalesced("same", make("alice"));
    await audit.flush();
    expect(audit.query({ limit: 10 })).toHaveLength(3);
    await writer.close();
  });

  it("records through the background writer and queries with filters and keyset pagination", async () => {
    const { db, path } = tempDatabase();
    const writer = new BackgroundWriter(path, { flushIntervalMs: 10 });
    const audit = new AuditLog(db, writer, OPTIONS);
    for (let i = 0; i < 10; i++)
      audit.record(
        event({
          atUnixMs: 1000 + i,
          actor: i % 2 ? "bob" : "alice",
          kind: i < 5 ? "login" : "token",
          repository: i >= 5 ? `team/app${i % 3}` : null,
          outcome: i === 7 ? "denied" : "ok",
        }),
      );
    await audit.flush();
    const all = audit.query({ limit: 100 });
    expect(all.map((e) => e.atUnixMs)).toEqual([1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009]);
    expect(audit.query({ limit: 100, actor: "bob" })).toHaveLength(5);
    expect(audit.query({ limit: 100, kind: "token", actor: "bob" }).map((e) => e.atUnixMs)).toEqual([
      1005, 1007, 1009,
    ]);
    expect(audit.query({ limit: 100, repository: "team/app1" }).map((e) => e.atUnixMs)).toEqual([1007]);
    expect(audit.query({ limit: 100, sinceUnixMs: 1003, untilUnixMs: 1005 }).map((e) => e.atUnixMs)).toEqual([
      1003, 1004,
    ]);
    const first = audit.query({ limit: 3 });
    const second = audit.query({ limit: 3, afterId: first.at(-1)?.id });
    expect(second.map((e) => e.atUnixMs)).toEqual([1003, 1004, 1005]);
    const newest = audit.query({ limit: 2, newestFirst: true });
    expect(newest.map((e) => e.atUnixMs)).toEqual([1009, 1008]);
    expect(
      audit.query({ limit: 2, newestFirst: true, beforeId: newest[1]?.id }).map((e) => e.atUnixMs),
    ).toEqual([1007, 1006]);
    expect(all[7]).toMatchObject({
      outcome: "denied",
      details: { authenticator: "database" },
      ip: "192.0.2.1",
    });
    expect(() => audit.query({ limit: 0 })).toThrow(RangeError);
    expect(() => audit.query({ limit: 100_000 })).toThrow(RangeError);
    await writer.close();
  });

  it("never blocks: with the writer stuck, events beyond the bound are dropped and counted", async () => {
    const { db, path } = tempDatabase();
    const writer = new BackgroundWriter(path, { flushIntervalMs: 60_000 });
    const audit = new AuditLog(db, writer, OPTIONS);
    // Hold the write lock from this connection: the worker's batches wait, the queue fills.
    db.run("BEGIN IMMEDIATE");
    const started = performance.now();
    for (let i = 0; i < AUDIT_MAX_PENDING + 700; i++) audit.record(event());
    expect(performance.now() - started).toBeLessThan(2000);
    expect(audit.stats.dropped).toBeGreaterThan(0);
    expect(writer.pending).toBeLessThanOrEqual(AUDIT_MAX_PENDING + 1);
    db.run("ROLLBACK");
    await writer.close(5000);
  });

  it("prunes by age and by count, and from the background on start", async () => {
    const { db, path } = tempDatabase();
    const writer = new BackgroundWriter(path, { flushIntervalMs: 10 });
    const audit = new AuditLog(db, writer, { enabled: true, retentionDays: 1, maxEvents: 5 });
    const now = 10 * 86_400_000;
    for (let i = 0; i < 3; i++) audit.recordNow(event({ atUnixMs: now - 2 * 86_400_000 }));
    for (let i = 0; i < 8; i++) audit.recordNow(event({ atUnixMs: now - 1000 + i }));
    expect(audit.prune(now)).toBe(3 + 3);
    expect(audit.query({ limit: 100 }).map((e) => e.atUnixMs)).toEqual([
      now - 997,
      now - 996,
      now - 995,
      now - 994,
      now - 993,
    ]);
    for (let i = 0; i < 4; i++) audit.recordNow(event({ atUnixMs: now }));
    audit.startPruning(() => now);
    await writer.flush();
    audit.stopPruning();
    expect(audit.query({ limit: 100 })).toHaveLength(5);
    await writer.close();
  });

  // Issue 12 item 6: the writer's worker is a JavaScript VM of its own (~5 MiB); an idle serve
  // whose audit log has nothing to prune must not start it just to delete nothing.
  it("start-up pruning leaves the writer's thread unstarted when nothing is due", async () => {
    const now = 10 * 86_400_000;
    const cases = [
      { what: "empty log", atUnixMs: [], due: false },
      { what: "recent events within the bound", atUnixMs: [now - 1000, now - 500], due: false },
      { what: "an event past the retention", atUnixMs: [now - 2 * 86_400_000, now], due: true },
      { what: "more events than the bound", atUnixMs: [1, 2, 3, 4, 5, 6].map((i) => now - i), due: true },
    ];
    for (const { what, atUnixMs, due } of cases) {
      const { db, path } = tempDatabase();
      const writer = new BackgroundWriter(path, { flushIntervalMs: 10 });
      const audit = new AuditLog(db, writer, { enabled: true, retentionDays: 1, maxEvents: 5 });
      for (const at of atUnixMs) audit.recordNow(event({ atUnixMs: at }));
      audit.startPruning(() => now);
      audit.stopPruning();
      expect({ what, queued: writer.pending > 0 }).toEqual({ what, queued: due });
      await writer.flush();
      expect({ what, started: writer.threadStarted }).toEqual({ what, started: due });
      expect(audit.query({ limit: 100 }).length).toBeLessThanOrEqual(due ? 5 : atUnixMs.length);
      await writer.close();
    }
  });

  it("records nothing when disabled", async () => {
    const { db, path } = tempDatabase();
    const writer = new BackgroundWriter(path, { flushIntervalMs: 10 });
    const audit = new AuditLog(db, writer, { ...OPTIONS, enabled: false });
    audit.record(event());
    audit.recordNow(event());
    await audit.flush();
    expect(audit.query({ limit: 10 })).toEqual([]);
    await writer.close();
  });

  it("never stores a secret, whatever details a caller passes", () => {
    const { db } = tempDatabase();
    const audit = new AuditLog(db, null, OPTIONS);
    const pat = "regauth_pat_0123456789ABCDEFGHIJKLMNOPQRSTUV000000";
    audit.record(
      event({
        details: {
          password: "hunter2hunter2",
          current_password: "x",
          secret: pat,
          secret_hmac: "abc",
          password_hash: "$argon2id$v=19$m=12288,t=3,p=1$abc$def",
          note: `the client sent ${pat} and rt1.eyJhIjoxfQ.c2ln as well as $2b$10$abcdefghijk`,
          nested: { deeper: { token: "t", refresh_token: "r", ok: "kept" } },
          scopes: ["repository:a/b:pull"],
        },
      }),
    );
    const stored = JSON.stringify(db.query("SELECT * FROM audit_events").all());
    for (const secret of [
      "hunter2",
      pat,
      "rt1.eyJ",
      "$argon2id",
      "$2b$10",
      "secret_hmac",
      "current_password",
    ])
      expect(stored).not.toContain(secret);
    expect(stored).toContain("kept");
    expect(stored).toContain("repository:a/b:pull");
    expect(redactSecrets({ a: "x".repeat(5000) }).a).toHaveLength(1025);
  });
});
