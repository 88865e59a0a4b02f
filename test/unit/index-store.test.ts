/** The image index's writes (issue 11 item 2): what each event does to the tables and which changes it reports. */
import { describe, expect, it } from "bun:test";
import {
  findTag,
  listRepositories,
  listTags,
  markEventSeen,
  pruneSeenEvents,
  recordManifestDelete,
  recordManifestPush,
  recordPull,
  recordRepositoryDelete,
  recordTagDelete,
} from "../../src/registry-index/index-store.ts";
import { tempDatabase } from "../accounts-helpers.ts";

const push = (over: Partial<Parameters<typeof recordManifestPush>[1]> = {}) => ({
  repository: "team/app",
  tag: "v1",
  digest: "sha256:aaa",
  mediaType: "application/vnd.oci.image.manifest.v1+json",
  sizeBytes: 500,
  pusher: "alice",
  pusherAddress: "192.0.2.7",
  atUnixMs: 1_000_000,
  eventId: "e1",
  source: "notification" as const,
  ...over,
});
const deletion = (over: Record<string, unknown> = {}) => ({
  repository: "team/app",
  atUnixMs: 2_000_000,
  eventId: "d1",
  source: "notification" as const,
  actor: "alice",
  actorAddress: null,
  ...over,
});
const types = (changes: { type: string }[]) => changes.map((c) => c.type);

describe("the image index", () => {
  it.each([
    ["the first push of a repository", [], push(), ["repository.created", "tag.pushed"]],
    ["a second tag", [push()], push({ tag: "v2", eventId: "e2" }), ["tag.pushed"]],
    [
      "the same tag pushed again (all pushes are reported)",
      [push()],
      push({ eventId: "e2" }),
      ["tag.pushed"],
    ],
    ["a push by digest of a new repository", [], push({ tag: undefined }), ["repository.created"]],
    ["a crawl finding what is known", [push()], push({ eventId: "s1", source: "sync" as const }), []],
    [
      "a crawl finding a moved tag",
      [push()],
      push({ digest: "sha256:bbb", eventId: "s1", source: "sync" as const }),
      ["tag.pushed"],
    ],
  ])("%s", (_name, earlier, next, expected) => {
    const { db } = tempDatabase();
    for (const p of earlier) recordManifestPush(db, p);
    expect(types(recordManifestPush(db, next))).toEqual(expected);
  });

  it("keeps who pushed, from where, and first and last push", () => {
    const { db } = tempDatabase();
    recordManifestPush(db, push());
    recordManifestPush(db, push({ digest: "sha256:bbb", pusher: "bob", atUnixMs: 3_000_000, eventId: "e2" }));
    expect(findTag(db, "team/app", "v1")).toMatchObject({
      digest: "sha256:bbb",
      pushedBy: "bob",
      pushedFrom: "192.0.2.7",
      firstPushAt: 1000,
      lastPushAt: 3000,
      pullCount: 0,
    });
  });

  it("counts pulls by tag and by digest", () => {
    const { db } = tempDatabase();
    recordManifestPush(db, push());
    recordManifestPush(db, push({ tag: "latest", eventId: "e2" }));
    recordPull(db, { repository: "team/app", tag: "v1", atUnixMs: 5_000_000 });
    recordPull(db, { repository: "team/app", digest: "sha256:aaa", atUnixMs: 6_000_000 });
    expect(listTags(db, "team/app").map((t) => [t.tag, t.pullCount, t.lastPullAt])).toEqual([
      ["latest", 1, 6000],
      ["v1", 2, 6000],
    ]);
    expect(recordPull(db, { repository: "other/app", tag: "v1", atUnixMs: 1 })).toBe(0);
  });

  it("deletes a tag, a manifest's tags, and a repository, remembering them", () => {
    const { db } = tempDatabase();
    recordManifestPush(db, push());
    recordManifestPush(db, push({ tag: "latest", eventId: "e2" }));
    recordManifestPush(db, push({ tag: "v2", digest: "sha256:bbb", eventId: "e3" }));
    expect(types(recordTagDelete(db, { ...deletion(), tag: "v2" }))).toEqual(["tag.deleted"]);
    expect(types(recordTagDelete(db, { ...deletion(), tag: "v2" }))).toEqual([]);
    expect(
      recordManifestDelete(db, { ...deletion({ eventId: "d2" }), digest: "sha256:aaa" }).map((c) => c.tag),
    ).toEqual(["latest", "v1"]);
    expect(listTags(db, "team/app")).toEqual([]);
    expect(findTag(db, "team/app", "v1")?.deletedAt).toBe(2000);
    recordManifestPush(db, push({ tag: "v3", eventId: "e4" }));
    expect(types(recordRepositoryDelete(db, deletion({ eventId: "d3" })))).toEqual(["tag.deleted"]);
    expect(listRepositories(db, { limit: 10 })).toEqual([]);
    expect(types(recordManifestPush(db, push({ eventId: "e5" })))).toEqual([
      "repository.created",
      "tag.pushed",
    ]);
  });

  it("lists live repositories by prefix with keyset pagination", () => {
    const { db } = tempDatabase();
    for (const name of ["team/b", "team/a", "teams/x", "other/c", "team%/d"])
      recordManifestPush(db, push({ repository: name, eventId: name }));
    const names = (rows: { name: string }[]) => rows.map((r) => r.name);
    expect(names(listRepositories(db, { limit: 10 }))).toEqual([
      "other/c",
      "team%/d",
      "team/a",
      "team/b",
      "teams/x",
    ]);
    expect(names(listRepositories(db, { namePrefix: "team/", limit: 10 }))).toEqual(["team/a", "team/b"]);
    expect(names(listRepositories(db, { afterName: "team/a", limit: 2 }))).toEqual(["team/b", "teams/x"]);
  });

  it("applies an event id once, and forgets old ids", () => {
    const { db } = tempDatabase();
    expect(markEventSeen(db, "e1", 10_000)).toBe(true);
    expect(markEventSeen(db, "e1", 11_000)).toBe(false);
    expect(pruneSeenEvents(db, 20_000)).toBe(1);
    expect(markEventSeen(db, "e1", 30_000)).toBe(true);
  });
});
