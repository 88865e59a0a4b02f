/**
 * The dispatcher's view of the queue (src/webhooks/store.ts dueHeads): the oldest pending
 * delivery of each enabled webhook, if due. It runs on every wake-up (after every queued push and
 * every finished attempt), so its cost must follow the webhooks, not the queue: the bench's
 * 20-webhook notification case (scripts/bench.ts) found it reading every pending row, 4 ms per
 * call at 60,000 pending. The plan is checked here; speed is the bench's.
 */
import { afterEach, describe, expect, it } from "bun:test";
import { databasePath, openDatabase } from "../../src/db/database.ts";
import {
  beginAttempt,
  DUE_HEADS_SQL,
  dueHeads,
  enqueueDelivery,
  finishAttempt,
  insertWebhook,
  updateWebhook,
} from "../../src/webhooks/store.ts";
import { makeTempDir, removeTempDirs } from "../helpers.ts";

afterEach(removeTempDirs);

function setup(webhooks: number) {
  const db = openDatabase(databasePath(makeTempDir("regauth-due-heads-")));
  const ids = Array.from(
    { length: webhooks },
    (_, i) =>
      insertWebhook(db, {
        name: `hook${i}`,
        url: `http://192.0.2.1/hook${i}`,
        repositoryPatterns: ["*"],
        events: ["tag.pushed"],
        isEnabled: true,
        isDeclared: false,
        secretNonce: null,
        createdBy: "test",
        nowUnix: 1,
      }).id,
  );
  const enqueue = (webhookId: number, eventId: string, nowMs: number) =>
    enqueueDelivery(db, { webhookId, eventId, eventType: "tag.pushed", payload: "{}", nowMs });
  return { db, ids, enqueue };
}

describe("dueHeads", () => {
  it("returns one head per enabled webhook: its oldest pending delivery, when due", () => {
    const { db, ids, enqueue } = setup(4);
    const [a, b, c, d] = ids as [number, number, number, number];
    for (const webhook of ids) for (let e = 0; e < 3; e++) enqueue(webhook, `e${e}`, 1_000 + e);
    // a: its head delivered, the next one is the head now.
    const aFirst = dueHeads(db, 5_000, 10).find((h) => h.webhookId === a);
    if (!aFirst) throw new Error("no head for a");
    finishAttempt(db, aFirst.id, {
      status: "delivered",
      nextAttemptAtMs: 0,
      responseStatus: 204,
      latencyMs: 1,
      lastError: null,
      responseExcerpt: null,
    });
    // b: its head waits for a retry in the future: nothing of b is due (order per webhook).
    const bHead = dueHeads(db, 5_000, 10).find((h) => h.webhookId === b);
    if (!bHead) throw new Error("no head for b");
    expect(beginAttempt(db, bHead.id, 5_000, 60_000)).toBe(true);
    // c: disabled.
    updateWebhook(db, c, { isEnabled: false }, 2);
    const heads = dueHeads(db, 5_000, 10);
    expect(heads.map((h) => [h.webhookId, h.eventId])).toEqual([
      [d, "e0"],
      [a, "e1"],
    ]);
  });

  it("puts first attempts before retries, then orders by due time, and honours the limit", () => {
    const { db, ids, enqueue } = setup(3);
    const [a, b, c] = ids as [number, number, number];
    enqueue(a, "x", 3_000);
    enqueue(b, "y", 2_000);
    enqueue(c, "z", 1_000);
    const cHead = dueHeads(db, 5_000, 10).find((h) => h.webhookId === c);
    if (!cHead) throw new Error("no head for c");
    expect(beginAttempt(db, cHead.id, 1_000, 1_500)).toBe(true); // a retry, due since 1,500
    expect(dueHeads(db, 5_000, 10).map((h) => h.webhookId)).toEqual([b, a, c]);
    expect(dueHeads(db, 5_000, 2).map((h) => h.webhookId)).toEqual([b, a]);
    expect(dueHeads(db, 2_500, 10).map((h) => h.webhookId)).toEqual([b, c]);
  });

  it("is empty for an empty queue", () => {
    const { db } = setup(2);
    expect(dueHeads(db, 5_000, 10)).toEqual([]);
  });

  it("finds each head with an index seek per webhook, not a pass over every pending delivery", () => {
    const { db } = setup(2);
    const plan = db
      .query<{ detail: string }, [number, number]>(`EXPLAIN QUERY PLAN ${DUE_HEADS_SQL}`)
      .all(5_000, 10)
      .map((row) => row.detail);
    expect(plan.some((step) => /webhook_deliveries_queue \(status=\? AND webhook_id=\?/.test(step))).toBe(
      true,
    );
    expect(plan.some((step) => /webhook_deliveries_queue \(status=\?\)/.test(step))).toBe(false);
  });
});
