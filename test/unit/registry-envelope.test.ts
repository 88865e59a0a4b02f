/**
 * distribution's notification envelope (src/registry-index/envelope.ts): the shapes registry 2.8
 * and 3.x send (2.8's captured from Debian's docker-registry 2.8.2 with skopeo; 3.x's from
 * distribution's notifications/event.go, whose target embeds an OCI descriptor without
 * omitempty), every action, and hostile shapes.
 */
import { describe, expect, it } from "bun:test";
import {
  hostOf,
  isEventsMediaType,
  parseEnvelope,
  type RegistryEvent,
} from "../../src/registry-index/envelope.ts";

const NOW = 1_800_000_000_000;
const DIGEST = "sha256:ed8f34857114516cb51afbd0df89dc7e4344dbbbe34804442e8973506b62fbfb";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

/** A manifest push as Debian's docker-registry 2.8.2 sent it for `skopeo copy ... docker://.../team/app:v1`. */
const push28 = {
  id: "fe8e3c02-f7ad-4b1f-b32e-97a604ce3589",
  timestamp: "2026-12-01T20:33:41.186041455Z",
  action: "push",
  target: {
    mediaType: OCI_MANIFEST,
    size: 400,
    digest: DIGEST,
    length: 400,
    repository: "team/app",
    url: `http://127.0.0.1:38111/v2/team/app/manifests/${DIGEST}`,
    tag: "v1",
  },
  request: {
    id: "f665a0c6-549c-499f-bc05-0cd332cfd45b",
    addr: "127.0.0.1:37892",
    host: "127.0.0.1:38111",
    method: "PUT",
    useragent: "skopeo/1.9.3",
  },
  actor: { name: "alice" },
  source: { addr: "vm:38111", instanceID: "ba0a3647-d57b-4052-9e13-de0f8b833b45" },
};

/** registry 3.x: an OCI descriptor in target (no omitempty: empty strings and zero sizes appear). */
const v3 = (action: string, target: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  id: `v3-${action}-${JSON.stringify(target).length}`,
  timestamp: "2026-12-01T20:40:00.5-08:00",
  action,
  target: { mediaType: "", digest: "", size: 0, repository: "team/app", ...target },
  request: { id: "r", addr: "[2001:db8::7]:51234", host: "registry", method: "DELETE", useragent: "crane" },
  actor: { name: "bob" },
  source: { addr: "registry:5000", instanceID: "i" },
  ...extra,
});

const one = (event: unknown) => {
  const parsed = parseEnvelope({ events: [event] }, NOW);
  if (!parsed.ok) throw new Error(parsed.problem);
  return parsed.events[0] as RegistryEvent;
};
const problem = (envelope: unknown) => {
  const parsed = parseEnvelope(envelope, NOW);
  return parsed.ok ? null : parsed.problem;
};

describe("parseEnvelope: what each event means", () => {
  it("reads 2.8's manifest push with its tag, actor, address without port, user agent and time", () => {
    expect(one(push28)).toEqual({
      kind: "manifest.push",
      id: push28.id,
      atUnixMs: Date.parse("2026-12-01T20:33:41.186Z"),
      actor: "alice",
      address: "127.0.0.1",
      userAgent: "skopeo/1.9.3",
      repository: "team/app",
      tag: "v1",
      digest: DIGEST,
      mediaType: OCI_MANIFEST,
      sizeBytes: 400,
    });
  });

  it.each([
    [
      "a push by digest (no tag)",
      { ...push28, target: { ...push28.target, tag: undefined } },
      { kind: "manifest.push", digest: DIGEST },
    ],
    ["an anonymous push (actor {})", { ...push28, actor: {} }, { kind: "manifest.push", actor: null }],
    ["a push with no request record", { ...push28, request: undefined }, { address: null, userAgent: null }],
    [
      "2.8's length when size is missing",
      { ...push28, target: { ...push28.target, size: undefined } },
      { sizeBytes: 400 },
    ],
    [
      "an OCI index",
      { ...push28, target: { ...push28.target, mediaType: "application/vnd.oci.image.index.v1+json" } },
      { kind: "manifest.push" },
    ],
    [
      "a Docker v2 manifest",
      {
        ...push28,
        target: { ...push28.target, mediaType: "application/vnd.docker.distribution.manifest.v2+json" },
      },
      { kind: "manifest.push" },
    ],
    [
      "a Docker manifest list",
      {
        ...push28,
        target: { ...push28.target, mediaType: "application/vnd.docker.distribution.manifest.list.v2+json" },
      },
      { kind: "manifest.push" },
    ],
    [
      "an OCI artifact manifest",
      { ...push28, target: { ...push28.target, mediaType: "application/vnd.oci.artifact.manifest.v1+json" } },
      { kind: "manifest.push" },
    ],
    [
      "a pull by tag",
      { ...push28, action: "pull", request: { ...push28.request, method: "GET" } },
      { kind: "manifest.pull", tag: "v1", method: "GET" },
    ],
    [
      "a pull by digest",
      { ...push28, action: "pull", target: { ...push28.target, tag: undefined } },
      { kind: "manifest.pull", digest: DIGEST },
    ],
    [
      "a HEAD on a manifest",
      { ...push28, action: "pull", request: { ...push28.request, method: "head" } },
      { kind: "manifest.pull", method: "HEAD" },
    ],
    [
      "a zero timestamp (Go's unset time) as now",
      { ...push28, timestamp: "0001-01-01T00:00:00Z" },
      { atUnixMs: NOW },
    ],
    ["no timestamp as now", { ...push28, timestamp: undefined }, { atUnixMs: NOW }],
    [
      "unknown fields anywhere",
      {
        ...push28,
        future: { x: 1 },
        target: { ...push28.target, annotations: { a: "b" }, artifactType: "x", references: [{}] },
        actor: { name: "alice", session: 7 },
      },
      { kind: "manifest.push" },
    ],
  ])("%s", (_name, event, expected) => {
    expect(one(event)).toMatchObject(expected as Record<string, unknown>);
  });

  it.each([
    [
      "a tag delete (TagDeleted: target.tag)",
      v3("delete", { tag: "v1" }),
      { kind: "tag.delete", tag: "v1", repository: "team/app" },
    ],
    [
      "a manifest delete by digest (ManifestDeleted)",
      v3("delete", { digest: DIGEST }),
      { kind: "digest.delete", digest: DIGEST },
    ],
    [
      "a repository delete (3.x RepoDeleted: only repository)",
      v3("delete", {}),
      { kind: "repository.delete", repository: "team/app" },
    ],
    [
      "2.8's delete without the empty fields",
      { ...push28, action: "delete", target: { repository: "team/app", digest: DIGEST } },
      { kind: "digest.delete" },
    ],
    ["a bracketed IPv6 address", v3("delete", { tag: "v1" }), { address: "2001:db8::7", actor: "bob" }],
    [
      "a time with an offset and a fraction",
      v3("delete", { tag: "v1" }),
      { atUnixMs: Date.parse("2026-12-02T04:40:00.500Z") },
    ],
  ])("%s", (_name, event, expected) => {
    expect(one(event)).toMatchObject(expected as Record<string, unknown>);
  });

  it.each([
    [
      "a blob push (application/octet-stream)",
      { ...push28, target: { ...push28.target, mediaType: "application/octet-stream", tag: undefined } },
      "blob push",
    ],
    [
      "a blob pull with a layer media type",
      {
        ...push28,
        action: "pull",
        target: { ...push28.target, mediaType: "application/vnd.docker.container.image.rootfs.diff+x-gtar" },
      },
      "blob pull",
    ],
    [
      "an OCI layer",
      { ...push28, target: { ...push28.target, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip" } },
      "blob push",
    ],
    ["a push with no media type", { ...push28, target: { ...push28.target, mediaType: "" } }, "blob push"],
    [
      "a blob mount",
      {
        ...push28,
        action: "mount",
        target: { ...push28.target, mediaType: "application/octet-stream", fromRepository: "other/app" },
      },
      "blob mount",
    ],
    ["an action a later registry may add", { ...push28, action: "replicate" }, 'unknown action "replicate"'],
  ])("ignores %s", (_name, event, reason) => {
    expect(one(event)).toMatchObject({ kind: "ignored", reason });
  });

  it("keeps several events of one envelope in order", () => {
    const parsed = parseEnvelope(
      { events: [push28, v3("delete", { tag: "v1" }), { ...push28, id: "x", action: "pull" }] },
      NOW,
    );
    expect(parsed.ok && parsed.events.map((e) => e.kind)).toEqual([
      "manifest.push",
      "tag.delete",
      "manifest.pull",
    ]);
  });

  it("accepts an envelope with no events", () => {
    expect(parseEnvelope({ events: [] }, NOW)).toEqual({ ok: true, events: [] });
  });
});

describe("parseEnvelope: hostile and malformed shapes are refused, naming the field", () => {
  const manyEvents = Array.from({ length: 1001 }, (_, i) => ({ ...push28, id: `e${i}` }));
  it.each([
    ["not an object", "events", "envelope"],
    ["null", null, "envelope"],
    ["no events", {}, "envelope"],
    ["events not an array", { events: { 0: push28 } }, "envelope"],
    ["more than 1000 events", { events: manyEvents }, "at most 1000 events"],
    ["an event that is a string", { events: ["push"] }, "events[0]"],
    ["no id", { events: [{ ...push28, id: undefined }] }, "events[0].id"],
    ["an empty id", { events: [{ ...push28, id: "" }] }, "events[0].id"],
    ["a numeric id", { events: [{ ...push28, id: 7 }] }, "events[0].id"],
    ["no action", { events: [{ ...push28, action: undefined }] }, "events[0].action"],
    ["no target", { events: [{ ...push28, target: undefined }] }, "events[0].target"],
    ["a target that is a string", { events: [{ ...push28, target: "team/app" }] }, "events[0].target"],
    [
      "a size that is a string",
      { events: [{ ...push28, target: { ...push28.target, size: "400" } }] },
      "events[0].target.size",
    ],
    [
      "a negative size",
      { events: [{ ...push28, target: { ...push28.target, size: -1 } }] },
      "events[0].target.size",
    ],
    [
      "a tag that is a number",
      { events: [{ ...push28, target: { ...push28.target, tag: 1 } }] },
      "events[0].target.tag",
    ],
    [
      "an actor name that is an object",
      { events: [{ ...push28, actor: { name: { $ne: 1 } } }] },
      "events[0].actor.name",
    ],
    [
      "an address that is an array",
      { events: [{ ...push28, request: { addr: ["1.2.3.4"] } }] },
      "events[0].request.addr",
    ],
    [
      "a timestamp that is no time",
      { events: [{ ...push28, timestamp: "yesterday" }] },
      "events[0].timestamp",
    ],
    [
      "no repository",
      { events: [{ ...push28, target: { ...push28.target, repository: undefined } }] },
      "events[0].target.repository",
    ],
    [
      "a repository with a path traversal",
      { events: [{ ...push28, target: { ...push28.target, repository: "../etc/passwd" } }] },
      "target.repository",
    ],
    [
      "a repository with upper case",
      { events: [{ ...push28, target: { ...push28.target, repository: "Team/App" } }] },
      "target.repository",
    ],
    [
      "a repository with a space",
      { events: [{ ...push28, target: { ...push28.target, repository: "team/my app" } }] },
      "target.repository",
    ],
    [
      "a repository with a NUL",
      { events: [{ ...push28, target: { ...push28.target, repository: "team/app\u0000x" } }] },
      "target.repository",
    ],
    [
      // A host component is the registry's grammar (see below); upper case after it is not.
      "a repository with a host and an upper-case path",
      { events: [{ ...push28, target: { ...push28.target, repository: "registry:5000/App" } }] },
      "target.repository",
    ],
    [
      "a repository of 256 characters",
      { events: [{ ...push28, target: { ...push28.target, repository: `a/${"b".repeat(254)}` } }] },
      "target.repository",
    ],
    [
      "a tag of 129 characters",
      { events: [{ ...push28, target: { ...push28.target, tag: "t".repeat(129) } }] },
      "target.tag",
    ],
    [
      "a tag of 2000 characters",
      { events: [{ ...push28, target: { ...push28.target, tag: "t".repeat(2000) } }] },
      "target.tag",
    ],
    [
      "a tag starting with a dot",
      { events: [{ ...push28, target: { ...push28.target, tag: ".hidden" } }] },
      "target.tag",
    ],
    [
      "a digest without an algorithm",
      { events: [{ ...push28, target: { ...push28.target, digest: "ed8f3485" } }] },
      "target.digest",
    ],
    [
      "a manifest push without a digest",
      { events: [{ ...push28, target: { ...push28.target, digest: "" } }] },
      "target.digest: missing",
    ],
    [
      "a size past 2^53 (1e308 was a 500 from SQLite)",
      { events: [{ ...push28, target: { ...push28.target, size: 1e308 } }] },
      "events[0].target.size",
    ],
    ["one bad event among good ones", { events: [push28, { ...push28, id: 1 }] }, "events[1].id"],
  ])("%s", (_name, envelope, expected) => {
    expect(problem(envelope)).toContain(expected);
  });

  it("accepts odd but valid repository names and the longest tag", () => {
    for (const repository of ["a", "team/sub/app", "my-app__x.y/z--w", `a/${"b".repeat(253)}`])
      expect(one({ ...push28, target: { ...push28.target, repository } })).toMatchObject({ repository });
    expect(one({ ...push28, target: { ...push28.target, tag: "T".repeat(128) } })).toMatchObject({
      tag: "T".repeat(128),
    });
  });

  // The registry retries a refused notification for ever and holds every later one back
  // (go-events RetryingSink): what a real registry sends must never be a 400.
  it("accepts names with a host component, which distribution's routes and regauth's scopes accept", () => {
    for (const repository of ["registry:5000/app", "Team.example/app", "localhost/a/b", "my-host:1/x"])
      expect(one({ ...push28, target: { ...push28.target, repository } })).toMatchObject({ repository });
  });

  it("accepts a User-Agent, address, method and actor of any length, and records them shortened", () => {
    const long = {
      ...push28,
      request: {
        ...push28.request,
        addr: `${"9".repeat(600)}:1`,
        method: "X".repeat(40),
        useragent: `curl ${"x".repeat(100_000)}`,
      },
      actor: { name: "a".repeat(2000) },
    };
    const event = one(long) as { userAgent: string; address: string; actor: string };
    expect(event.userAgent.length).toBe(256);
    expect(event.address.length).toBe(64);
    expect(event.actor).toBe("a".repeat(2000));
    const pull = one({ ...long, action: "pull" }) as { method: string };
    expect(pull.method).toBe("X".repeat(16));
  });
});

describe("isEventsMediaType", () => {
  it.each([
    ["application/vnd.docker.distribution.events.v1+json", true],
    ["application/vnd.docker.distribution.events.v2+json", true],
    ["application/json; charset=utf-8", true],
    ["Application/JSON", true],
    ["text/plain", false],
    ["application/x-www-form-urlencoded", false],
    [null, false],
    ["", false],
  ])("%p → %p", (type, expected) => {
    expect(isEventsMediaType(type)).toBe(expected);
  });
});

describe("hostOf", () => {
  it.each([
    ["192.0.2.1:4242", "192.0.2.1"],
    ["[2001:db8::1]:4242", "2001:db8::1"],
    ["[2001:db8::1]", "2001:db8::1"],
    ["2001:db8::1", "2001:db8::1"],
    ["192.0.2.1", "192.0.2.1"],
    ["", null],
    [undefined, null],
  ])("%p → %p", (addr, expected) => {
    expect(hostOf(addr)).toBe(expected);
  });
});

describe("parseEnvelope: absent is absent", () => {
  it("has no tag for a push or pull by digest", () => {
    for (const action of ["push", "pull"]) {
      const event = one({ ...push28, action, target: { ...push28.target, tag: "" } });
      expect(event).not.toHaveProperty("tag");
    }
  });
});
