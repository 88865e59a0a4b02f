/**
 * The crawl's reconcile (issue 11 item 2): the diff table of index × crawl → operations, and
 * what applying them writes and reports (changes to the webhooks' sink, counts). Nothing
 * changed: no operations, no writes, no changes.
 */
import { describe, expect, it } from "bun:test";
import type { Database } from "bun:sqlite";
import type { IndexChange } from "../../src/registry-index/changes.ts";
import {
  findTag,
  indexSnapshot,
  listRepositories,
  listTags,
  recordManifestPush,
  recordTagDelete,
} from "../../src/registry-index/index-store.ts";
import {
  applyOperations,
  type CrawledRepository,
  diffIndex,
  type SyncOperation,
} from "../../src/registry-index/reconcile.ts";
import { tempDatabase } from "../accounts-helpers.ts";

const OCI = "application/vnd.oci.image.manifest.v1+json";
const A = `sha256:${"a".repeat(64)}`;
const B = `sha256:${"b".repeat(64)}`;
/** Index rows are from an hour before the crawl, unless a case says otherwise. */
const CRAWL_MS = 1_700_000_000_000;
const EARLIER_MS = CRAWL_MS - 3_600_000;

function pushed(db: Database, repository: string, tag: string, digest = A, atUnixMs = EARLIER_MS) {
  recordManifestPush(db, {
    repository,
    tag,
    digest,
    mediaType: OCI,
    sizeBytes: 100,
    pusher: "alice",
    pusherAddress: "192.0.2.7",
    atUnixMs,
    eventId: `${repository}:${tag}:${atUnixMs}`,
    source: "notification",
  });
}

const repo = (name: string, tags: [string, string][], isIncomplete = false): CrawledRepository => ({
  name,
  tags: tags.map(([tag, digest]) => ({ tag, digest, mediaType: OCI, sizeBytes: 100 })),
  isIncomplete,
});

interface Case {
  name: string;
  index: (db: Database) => void;
  /** Index changes while the crawl runs (notifications): after the crawl's start snapshot. */
  during?: (db: Database) => void;
  crawl: CrawledRepository[];
  operations: string[];
}

const op = (o: SyncOperation) =>
  o.kind === "push"
    ? `${o.isMove ? "move" : "add"} ${o.repository}:${o.tag}`
    : o.kind === "delete-tag"
      ? `delete ${o.repository}:${o.tag}`
      : `delete ${o.repository}`;

const cases: Case[] = [
  { name: "an empty index and an empty registry", index: () => {}, crawl: [], operations: [] },
  {
    name: "nothing changed",
    index: (db) => pushed(db, "team/app", "v1"),
    crawl: [repo("team/app", [["v1", A]])],
    operations: [],
  },
  {
    name: "a new tag (lost notification)",
    index: (db) => pushed(db, "team/app", "v1"),
    crawl: [
      repo("team/app", [
        ["v1", A],
        ["v2", B],
      ]),
    ],
    operations: ["add team/app:v2"],
  },
  {
    name: "a new repository",
    index: () => {},
    crawl: [repo("team/db", [["latest", A]])],
    operations: ["add team/db:latest"],
  },
  {
    name: "a moved tag",
    index: (db) => pushed(db, "team/app", "v1"),
    crawl: [repo("team/app", [["v1", B]])],
    operations: ["move team/app:v1"],
  },
  {
    name: "a deleted tag",
    index: (db) => {
      pushed(db, "team/app", "v1");
      pushed(db, "team/app", "v2");
    },
    crawl: [repo("team/app", [["v1", A]])],
    operations: ["delete team/app:v2"],
  },
  {
    name: "a deleted repository",
    index: (db) => {
      pushed(db, "team/app", "v1");
      pushed(db, "old/gone", "v1");
    },
    crawl: [repo("team/app", [["v1", A]])],
    operations: ["delete old/gone"],
  },
  {
    name: "a tag deleted in the index but back in the registry",
    index: (db) => {
      pushed(db, "team/app", "v1");
      recordTagDelete(db, {
        repository: "team/app",
        tag: "v1",
        atUnixMs: EARLIER_MS,
        eventId: "d",
        source: "notification",
        actor: null,
        actorAddress: null,
      });
    },
    crawl: [repo("team/app", [["v1", A]])],
    operations: ["add team/app:v1"],
  },
  {
    name: "an incomplete repository: found tags added, nothing deleted",
    index: (db) => pushed(db, "team/app", "v1"),
    crawl: [repo("team/app", [["v2", B]], true)],
    operations: ["add team/app:v2"],
  },
  {
    name: "a tag pushed while the crawl ran is neither deleted nor moved back",
    index: (db) => pushed(db, "team/app", "v1", A),
    during: (db) => {
      pushed(db, "team/app", "v2", B, CRAWL_MS + 500);
      pushed(db, "team/app", "v1", B, CRAWL_MS + 500);
    },
    crawl: [repo("team/app", [["v1", A]])],
    operations: [],
  },
  {
    name: "a tag deleted while the crawl ran is not revived",
    index: (db) => pushed(db, "team/app", "v1", A),
    during: (db) =>
      void recordTagDelete(db, {
        repository: "team/app",
        tag: "v1",
        atUnixMs: CRAWL_MS + 500,
        eventId: "d",
        source: "notification",
        actor: null,
        actorAddress: null,
      }),
    crawl: [repo("team/app", [["v1", A]])],
    operations: [],
  },
  {
    name: "a repository pushed while the crawl ran is not deleted",
    index: () => {},
    during: (db) => pushed(db, "new/one", "v1", A, CRAWL_MS + 500),
    crawl: [],
    operations: [],
  },
  {
    name: "a tag indexed a moment before the crawl (the last sync) and gone from the registry is deleted",
    index: (db) => {
      pushed(db, "team/app", "v1", A, CRAWL_MS - 200);
      pushed(db, "team/app", "v2", B, CRAWL_MS - 200);
    },
    crawl: [repo("team/app", [["v1", A]])],
    operations: ["delete team/app:v2"],
  },
];

describe("diffIndex", () => {
  it.each(cases.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    const { db } = tempDatabase();
    c.index(db);
    const atStart = indexSnapshot(db);
    c.during?.(db);
    const operations = diffIndex(
      indexSnapshot(db),
      { startedAtUnixMs: CRAWL_MS, repositories: c.crawl },
      atStart,
    );
    expect(operations.map(op)).toEqual(c.operations);
  });
});

/** The diff of a crawl that ran while nothing else changed the index. */
const diffNow = (db: Database, repositories: CrawledRepository[], startedAtUnixMs = CRAWL_MS) =>
  diffIndex(indexSnapshot(db), { startedAtUnixMs, repositories }, indexSnapshot(db));

describe("applyOperations", () => {
  function sinkInto(calls: IndexChange[][]) {
    return (_db: Database, changes: readonly IndexChange[]) => void calls.push([...changes]);
  }

  it("writes nothing and reports nothing when nothing changed", () => {
    const { db } = tempDatabase();
    pushed(db, "team/app", "v1");
    const before = db.query("SELECT total_changes() AS n").get();
    const calls: IndexChange[][] = [];
    const operations = diffIndex(
      indexSnapshot(db),
      { startedAtUnixMs: CRAWL_MS, repositories: [repo("team/app", [["v1", A]])] },
      indexSnapshot(db),
    );
    const counts = applyOperations(db, operations, {
      runId: "r",
      nowUnixMs: CRAWL_MS,
      sink: sinkInto(calls),
    });
    expect(counts).toEqual({ added: 0, moved: 0, deletedTags: 0, deletedRepositories: 0, changes: 0 });
    expect(calls).toEqual([]);
    expect(db.query("SELECT total_changes() AS n").get()).toEqual(before);
    expect(findTag(db, "team/app", "v1")?.pushedBy).toBe("alice"); // a known push keeps its pusher
  });

  it("applies adds, moves and deletions, with sync changes for the webhooks, in bounded transactions", () => {
    const { db } = tempDatabase();
    pushed(db, "team/app", "v1");
    pushed(db, "team/app", "old");
    pushed(db, "gone/repo", "v1");
    const calls: IndexChange[][] = [];
    const operations = diffNow(
      db,
      [
        repo("team/app", [
          ["v1", B],
          ["v2", A],
        ]),
        repo("team/db", [["latest", A]]),
      ],
      CRAWL_MS,
    );
    const counts = applyOperations(db, operations, {
      runId: "r1",
      nowUnixMs: CRAWL_MS,
      sink: sinkInto(calls),
      batchSize: 2,
    });
    expect(counts).toEqual({ added: 2, moved: 1, deletedTags: 2, deletedRepositories: 1, changes: 6 });
    expect(calls.length).toBe(3); // 5 operations, 2 per transaction
    const changes = calls.flat();
    expect(changes.map((c) => `${c.type} ${c.repository}${c.tag ? `:${c.tag}` : ""}`).sort()).toEqual([
      "repository.created team/db",
      "tag.deleted gone/repo:v1",
      "tag.deleted team/app:old",
      "tag.pushed team/app:v1",
      "tag.pushed team/app:v2",
      "tag.pushed team/db:latest",
    ]);
    expect(changes.every((c) => c.source === "sync" && c.eventId.startsWith("sync-r1:"))).toBe(true);
    expect(listRepositories(db, { limit: 10 }).map((r) => r.name)).toEqual(["team/app", "team/db"]);
    expect(listTags(db, "team/app").map((t) => [t.tag, t.digest, t.pushedBy])).toEqual([
      ["v1", B, null],
      ["v2", A, null],
    ]);
    // A second run over the same registry finds nothing to do.
    const again = diffNow(
      db,
      [
        repo("team/app", [
          ["v1", B],
          ["v2", A],
        ]),
        repo("team/db", [["latest", A]]),
      ],
      CRAWL_MS + 10_000,
    );
    expect(again).toEqual([]);
  });
});

describe("indexSnapshot", () => {
  it("holds live and deleted rows in name order", () => {
    const { db } = tempDatabase();
    pushed(db, "b/x", "v1");
    pushed(db, "a/x", "v2");
    pushed(db, "a/x", "v1");
    recordTagDelete(db, {
      repository: "a/x",
      tag: "v2",
      atUnixMs: CRAWL_MS,
      eventId: "d",
      source: "notification",
      actor: null,
      actorAddress: null,
    });
    const snapshot = indexSnapshot(db);
    expect([...snapshot.keys()]).toEqual(["a/x", "b/x"]);
    expect(snapshot.get("a/x")?.tags.map((t) => [t.tag, t.deletedAt !== null])).toEqual([
      ["v1", false],
      ["v2", true],
    ]);
  });
});

// Review: `regauth repo sync` offline is another process than serve, whose notifications may
// commit between the diff and a batch's transaction; what changed then is newer than the crawl.
describe("applyOperations after a notification committed since the diff", () => {
  it.each([
    [
      "a tag re-pushed is not deleted",
      (db: Database) => pushed(db, "team/app", "v1", B, CRAWL_MS + 1000),
      [repo("team/app", [])],
      (db: Database) => expect(findTag(db, "team/app", "v1")).toMatchObject({ digest: B, deletedAt: null }),
    ],
    [
      "a tag moved is not moved back",
      (db: Database) => pushed(db, "team/app", "v1", B, CRAWL_MS + 1000),
      [repo("team/app", [["v1", `sha256:${"c".repeat(64)}`]])],
      (db: Database) => expect(findTag(db, "team/app", "v1")).toMatchObject({ digest: B, pushedBy: "alice" }),
    ],
    [
      "a repository pushed to is not deleted",
      (db: Database) => pushed(db, "gone/repo", "v2", B, CRAWL_MS + 1000),
      [],
      (db: Database) => expect(findTag(db, "gone/repo", "v2")).toMatchObject({ digest: B, deletedAt: null }),
    ],
  ] as const)("%s", (_name, meanwhile, crawl, check) => {
    const { db } = tempDatabase();
    pushed(db, "team/app", "v1");
    pushed(db, "gone/repo", "v1");
    const operations = diffNow(db, [...crawl]);
    expect(operations.length).toBeGreaterThan(0);
    meanwhile(db);
    applyOperations(db, operations, { runId: "r", nowUnixMs: CRAWL_MS });
    check(db);
  });
});
