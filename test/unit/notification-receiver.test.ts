/**
 * The notification receiver (src/registry-index/receiver.ts): one transaction per event holding
 * the seen mark, the index write and the webhooks' sink; the audit log; what is not counted.
 */
import { Database } from "bun:sqlite";
import { describe, expect, it } from "bun:test";
import { AuditLog } from "../../src/audit/audit-log.ts";
import { BackgroundWriter } from "../../src/db/background-writer.ts";
import { INDEX_CRAWLER_SUBJECT, type IndexChange } from "../../src/registry-index/changes.ts";
import type { RegistryEvent } from "../../src/registry-index/envelope.ts";
import { findTag, markEventSeen } from "../../src/registry-index/index-store.ts";
import { NotificationReceiver, SEEN_EVENT_RETENTION_MS } from "../../src/registry-index/receiver.ts";
import { tempDatabase } from "../accounts-helpers.ts";

const NOW = 1_800_000_000_000;
const origin = { actor: "alice", address: "192.0.2.7", userAgent: "skopeo/1.9.3", atUnixMs: NOW - 5000 };
const push = (id: string, over: Record<string, unknown> = {}): RegistryEvent =>
  ({
    ...origin,
    id,
    kind: "manifest.push",
    repository: "team/app",
    tag: "v1",
    digest: "sha256:aaa",
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    sizeBytes: 400,
    ...over,
  }) as RegistryEvent;
const pull = (id: string, over: Record<string, unknown> = {}): RegistryEvent =>
  ({
    ...origin,
    id,
    kind: "manifest.pull",
    repository: "team/app",
    tag: "v1",
    digest: "sha256:aaa",
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    method: "GET",
    ...over,
  }) as RegistryEvent;

function setUp() {
  const { db } = tempDatabase();
  const audit = new AuditLog(db, null, { enabled: true, retentionDays: 0, maxEvents: 0 });
  const received: { changes: IndexChange[]; inTransaction: boolean }[] = [];
  const receiver = new NotificationReceiver({
    db,
    audit,
    now: () => NOW,
    sink: (sinkDb, changes) => received.push({ changes: [...changes], inTransaction: sinkDb.inTransaction }),
  });
  return { db, audit, receiver, received };
}

describe("NotificationReceiver", () => {
  it("indexes a push and hands its changes to the sink inside the transaction", () => {
    const { db, receiver, received } = setUp();
    expect(receiver.receive([push("e1")])).toEqual({ applied: 1, duplicates: 0, ignored: 0 });
    expect(findTag(db, "team/app", "v1")).toMatchObject({
      digest: "sha256:aaa",
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      sizeBytes: 400,
      pushedBy: "alice",
      pushedFrom: "192.0.2.7",
    });
    expect(received).toHaveLength(1);
    expect(received[0]?.inTransaction).toBe(true);
    expect(received[0]?.changes.map((c) => [c.type, c.eventId])).toEqual([
      ["repository.created", "e1:repository"],
      ["tag.pushed", "e1"],
    ]);
  });

  // With server.workers the other processes, and in any case the background writer and the
  // webhooks' dispatcher, hold the write lock for milliseconds: the route waits those out without
  // blocking the event loop, and only a longer hold is a store fault (503, the registry retries).
  it("waits out a write lock held for 100 ms without blocking the event loop; a longer one is a fault", async () => {
    const { db, receiver } = setUp();
    const other = new Database(db.filename);
    other.run("BEGIN IMMEDIATE");
    setTimeout(() => other.run("COMMIT"), 100);
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 10);
    const startedMs = performance.now();
    expect(await receiver.receiveWaitingOutLocks([push("e1")])).toEqual({
      applied: 1,
      duplicates: 0,
      ignored: 0,
    });
    clearInterval(ticker);
    expect(performance.now() - startedMs).toBeGreaterThanOrEqual(80);
    expect(ticks).toBeGreaterThan(3); // the loop kept running while it waited
    other.run("BEGIN IMMEDIATE");
    const held = setTimeout(() => other.run("COMMIT"), 2000);
    await expect(receiver.receiveWaitingOutLocks([push("e2")])).rejects.toMatchObject({
      code: "SQLITE_BUSY",
    });
    clearTimeout(held);
    other.run("COMMIT");
    other.close();
    expect(findTag(db, "team/app", "v1")).not.toBeNull();
  });

  it("applies a retried event once: no second write, no second change, no second audit row", () => {
    const { db, audit, receiver, received } = setUp();
    receiver.receive([push("e1")]);
    expect(receiver.receive([push("e1")])).toEqual({ applied: 0, duplicates: 1, ignored: 0 });
    receiver.receive([pull("p1")]);
    receiver.receive([pull("p1")]);
    expect(received).toHaveLength(2); // the push and the pull (which changes nothing webhooks see)
    expect(findTag(db, "team/app", "v1")?.pullCount).toBe(1);
    expect(audit.query({ limit: 10, kind: "image.pushed" })).toHaveLength(1);
  });

  it("rolls the whole event back when the sink fails, so that the registry's retry applies it", () => {
    const { db } = tempDatabase();
    let failing = true;
    const receiver = new NotificationReceiver({
      db,
      now: () => NOW,
      sink: () => {
        if (failing) throw Object.assign(new Error("disk I/O error"), { code: "SQLITE_IOERR" });
      },
    });
    expect(() => receiver.receive([push("e1")])).toThrow("disk I/O error");
    expect(findTag(db, "team/app", "v1")).toBeNull();
    expect(markEventSeen(db, "probe", NOW)).toBe(true); // the store works; e1 was not marked
    failing = false;
    expect(receiver.receive([push("e1")])).toEqual({ applied: 1, duplicates: 0, ignored: 0 });
    expect(findTag(db, "team/app", "v1")?.digest).toBe("sha256:aaa");
  });

  it("keeps what was applied before a fault in the middle of an envelope", () => {
    const { db } = tempDatabase();
    const receiver = new NotificationReceiver({
      db,
      now: () => NOW,
      sink: (_db, changes) => {
        if (changes.some((c) => c.tag === "bad"))
          throw Object.assign(new Error("full"), { code: "SQLITE_FULL" });
      },
    });
    expect(() => receiver.receive([push("e1"), push("e2", { tag: "bad" })])).toThrow("full");
    // The retry of the whole envelope: e1 is a duplicate, e2 is applied.
    const retry = new NotificationReceiver({ db, now: () => NOW });
    expect(retry.receive([push("e1"), push("e2", { tag: "bad" })])).toEqual({
      applied: 1,
      duplicates: 1,
      ignored: 0,
    });
  });

  it("counts GET pulls by tag and by digest, not HEADs, not the crawler's own, not blobs", () => {
    const { db, receiver } = setUp();
    receiver.receive([push("e1"), push("e2", { tag: "latest" })]);
    const result = receiver.receive([
      pull("p1"),
      pull("p2", { tag: undefined }), // by digest: both tags that point at it
      pull("p3", { method: "HEAD" }),
      pull("p4", { actor: INDEX_CRAWLER_SUBJECT }),
      { ...origin, id: "b1", kind: "ignored", reason: "blob pull" },
    ]);
    expect(result).toEqual({ applied: 2, duplicates: 0, ignored: 3 });
    expect(findTag(db, "team/app", "v1")).toMatchObject({ pullCount: 2, lastPullAt: (NOW - 5000) / 1000 });
    expect(findTag(db, "team/app", "latest")?.pullCount).toBe(1);
  });

  it("writes nothing for ignored events, not even a seen mark", () => {
    const { db, receiver } = setUp();
    receiver.receive([{ ...origin, id: "b1", kind: "ignored", reason: "blob push" }]);
    expect(db.query("SELECT count(*) AS n FROM registry_events_seen").get()).toEqual({ n: 0 });
  });

  it("applies deletes of a tag, of a digest and of a repository", () => {
    const { db, receiver, received } = setUp();
    receiver.receive([
      push("e1"),
      push("e2", { tag: "v2", digest: "sha256:bbb" }),
      push("e3", { tag: "v3" }),
    ]);
    receiver.receive([{ ...origin, id: "d1", kind: "tag.delete", repository: "team/app", tag: "v2" }]);
    expect(findTag(db, "team/app", "v2")?.deletedAt).not.toBeNull();
    receiver.receive([
      { ...origin, id: "d2", kind: "digest.delete", repository: "team/app", digest: "sha256:aaa" },
    ]);
    expect(findTag(db, "team/app", "v1")?.deletedAt).not.toBeNull();
    expect(findTag(db, "team/app", "v3")?.deletedAt).not.toBeNull();
    receiver.receive([{ ...origin, id: "d3", kind: "repository.delete", repository: "team/app" }]);
    expect(db.query("SELECT deleted_at FROM repositories WHERE name = 'team/app'").get()).not.toEqual({
      deleted_at: null,
    });
    expect(received.slice(3).map((r) => r.changes.map((c) => `${c.type} ${c.tag}`))).toEqual([
      ["tag.deleted v2"],
      ["tag.deleted v1", "tag.deleted v3"],
      [],
    ]);
  });

  it("audits pushes, pulls and deletes: who, what, from where, user agent; anonymous is empty", () => {
    const { audit, receiver } = setUp();
    receiver.receive([push("e1"), pull("p1", { actor: null }), pull("p2"), pull("p3")]);
    receiver.receive([{ ...origin, id: "d1", kind: "tag.delete", repository: "team/app", tag: "v1" }]);
    const events = audit.query({ limit: 100 });
    expect(events.map((e) => [e.kind, e.actor, e.ip, e.repository])).toEqual([
      ["image.pushed", "alice", "192.0.2.7", "team/app"],
      ["image.pulled", "", "192.0.2.7", "team/app"],
      ["image.pulled", "alice", "192.0.2.7", "team/app"],
      ["image.pulled", "alice", "192.0.2.7", "team/app"],
      ["image.deleted", "alice", "192.0.2.7", "team/app"],
    ]);
    expect(events[0]?.details).toEqual({
      tag: "v1",
      digest: "sha256:aaa",
      media_type: "application/vnd.oci.image.manifest.v1+json",
      size_bytes: 400,
      event_id: "e1",
      user_agent: "skopeo/1.9.3",
    });
    expect(events[0]?.atUnixMs).toBe(NOW - 5000);
    expect(events[4]?.details).toMatchObject({ tag: "v1", event_id: "d1" });
  });

  it("forgets event ids older than the retention, keeps newer ones", () => {
    const { db } = tempDatabase();
    let now = NOW;
    const receiver = new NotificationReceiver({ db, now: () => now });
    receiver.receive([push("old")]);
    now = NOW + SEEN_EVENT_RETENTION_MS - 60_000;
    receiver.receive([push("recent", { tag: "v2" })]);
    now = NOW + SEEN_EVENT_RETENTION_MS + 60_000;
    expect(receiver.prune()).toBe(1);
    expect(db.query("SELECT event_id FROM registry_events_seen").all()).toEqual([{ event_id: "recent" }]);
  });

  // Review: every pull is an event and whoever may pull decides how many; age alone let a week
  // of a pull flood grow the table without bound.
  it("keeps only the newest maxSeenEvents ids, whatever their age", () => {
    const { db } = tempDatabase();
    const receiver = new NotificationReceiver({ db, now: () => NOW, maxSeenEvents: 3 });
    receiver.receive(Array.from({ length: 10 }, (_, i) => pull(`p${i}`)));
    expect(receiver.prune()).toBe(7);
    expect(db.query("SELECT event_id FROM registry_events_seen ORDER BY rowid").all()).toEqual([
      { event_id: "p7" },
      { event_id: "p8" },
      { event_id: "p9" },
    ]);
    expect(receiver.receive([pull("p9")]).duplicates).toBe(1);
  });

  // Issue 12 item 6: an idle serve must not start the background writer's worker (~5 MiB) to
  // delete nothing; the prune is queued only when an id is past the retention or the bound.
  it("queues the start-up prune on the writer only when something is due", async () => {
    const cases = [
      { what: "no ids", seen: [] as number[], due: false },
      { what: "recent ids within the bound", seen: [NOW - 1000, NOW], due: false },
      { what: "an id past the retention", seen: [NOW - SEEN_EVENT_RETENTION_MS - 3_600_000, NOW], due: true },
      { what: "more ids than the bound", seen: [NOW, NOW, NOW, NOW], due: true },
    ];
    for (const { what, seen, due } of cases) {
      const { db, path } = tempDatabase();
      const writer = new BackgroundWriter(path, { flushIntervalMs: 60_000 });
      const receiver = new NotificationReceiver({ db, writer, now: () => NOW, maxSeenEvents: 3 });
      seen.forEach((atUnixMs, i) => markEventSeen(db, `e${i}`, atUnixMs));
      receiver.startPruning();
      receiver.stopPruning();
      expect({ what, queued: writer.pending > 0 }).toEqual({ what, queued: due });
      await writer.close();
      expect({ what, started: writer.threadStarted }).toEqual({ what, started: due });
    }
  });

  it("prunes at start and stops its timer", () => {
    const { db } = tempDatabase();
    const receiver = new NotificationReceiver({ db, now: () => NOW });
    markEventSeen(db, "ancient", NOW - SEEN_EVENT_RETENTION_MS - 3_600_000);
    receiver.startPruning();
    expect(receiver.isPruning).toBe(true);
    expect(db.query("SELECT count(*) AS n FROM registry_events_seen").get()).toEqual({ n: 0 });
    receiver.stopPruning();
    expect(receiver.isPruning).toBe(false);
  });
});
