/**
 * POST /registry/events in-process (src/http/registry-events-route.ts): the registry's secret,
 * malformed and oversized bodies, retries applied once, a store fault as 503, the switch off,
 * and a burst with a test sink that must see every change exactly once.
 */
import { Database } from "bun:sqlite";
import { describe, expect, it } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { PasswordVerifier } from "../../src/authn/password-verifier.ts";
import { databasePath, openDatabase, REQUEST_PATH_BUSY_TIMEOUT_MS } from "../../src/db/database.ts";
import { log } from "../../src/log.ts";
import type { IndexChange } from "../../src/registry-index/changes.ts";
import { findTag } from "../../src/registry-index/index-store.ts";
import { NOTIFICATIONS_SECRET_FILE } from "../../src/registry-index/secret.ts";
import { buildApp, buildIssuer, managementServices, registryEventsOptions } from "../../src/server.ts";
import { loadTestConfig, makeTempDir, req } from "../helpers.ts";

type Body = string | Uint8Array | ReadableStream<Uint8Array>;
const V1 = "application/vnd.docker.distribution.events.v1+json";
const DIGEST = "sha256:ed8f34857114516cb51afbd0df89dc7e4344dbbbe34804442e8973506b62fbfb";

async function setUp(config: Record<string, unknown> = {}) {
  const dataDir = makeTempDir("regauth-events-");
  const loaded = await loadTestConfig(config, dataDir);
  if (!loaded.signingKey) throw new Error("no signing key");
  const db = openDatabase(databasePath(dataDir));
  db.run(`PRAGMA busy_timeout = ${REQUEST_PATH_BUSY_TIMEOUT_MS}`); // as serve runs
  const issuer = buildIssuer(loaded, loaded.signingKey, new PasswordVerifier(), db);
  const services = managementServices(loaded, issuer, db);
  const changes: IndexChange[] = [];
  const events = registryEventsOptions(loaded, db, services.audit, (_db, applied) =>
    changes.push(...applied),
  );
  const app = buildApp(loaded, issuer, services, undefined, events);
  const secretPath = join(dataDir, NOTIFICATIONS_SECRET_FILE);
  const secret = existsSync(secretPath) ? readFileSync(secretPath, "utf8").trim() : "";
  const post = async (
    body: Body | null,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; json: Record<string, unknown>; res: Response; text: string }> => {
    const res = await app.handle(
      req("/registry/events", {
        method: "POST",
        headers: { authorization: `Bearer ${secret}`, "content-type": V1, ...headers },
        ...(body === null ? {} : { body }),
      }),
    );
    const text = await res.text();
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(text);
    } catch {}
    return { status: res.status, json, res, text };
  };
  return { app, db, dataDir, loaded, secret, changes, post, audit: services.audit, events };
}

const pushEvent = (id: string, tag = "v1", repository = "team/app") => ({
  id,
  timestamp: "2026-12-01T20:33:41.186041455Z",
  action: "push",
  target: {
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    size: 400,
    digest: DIGEST,
    length: 400,
    repository,
    url: `http://127.0.0.1:5000/v2/${repository}/manifests/${DIGEST}`,
    tag,
  },
  request: {
    id: "r",
    addr: "127.0.0.1:37892",
    host: "127.0.0.1:5000",
    method: "PUT",
    useragent: "skopeo/1.9.3",
  },
  actor: { name: "alice" },
  source: { addr: "vm:5000", instanceID: "i" },
});
const envelope = (...events: unknown[]) => JSON.stringify({ events });

describe("POST /registry/events", () => {
  it("indexes a push sent as the registry sends it, and answers what it did", async () => {
    const t = await setUp();
    expect(t.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const r = await t.post(envelope(pushEvent("e1")));
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ applied: 1, duplicates: 0, ignored: 0 });
    expect(findTag(t.db, "team/app", "v1")).toMatchObject({
      digest: DIGEST,
      pushedBy: "alice",
      pushedFrom: "127.0.0.1",
    });
  });

  it.each([
    ["registry 3.x's media type", "application/vnd.docker.distribution.events.v2+json"],
    ["plain JSON with a charset", "application/json; charset=utf-8"],
  ])("accepts %s", async (_name, contentType) => {
    const t = await setUp();
    expect((await t.post(envelope(pushEvent("e1")), { "content-type": contentType })).status).toBe(200);
  });

  it("lives under server.path_prefix", async () => {
    const t = await setUp({ server: { path_prefix: "/registry-auth" } });
    const post = (path: string) =>
      t.app.handle(
        req(path, {
          method: "POST",
          headers: { authorization: `Bearer ${t.secret}`, "content-type": V1 },
          body: envelope(pushEvent("e1")),
        }),
      );
    expect((await post("/registry/events")).status).toBe(404);
    expect((await post("/registry-auth/registry/events")).status).toBe(200);
  });

  it("accepts the scheme in any case (RFC 9110 §11.1)", async () => {
    const t = await setUp();
    expect((await t.post(envelope(pushEvent("e1")), { authorization: `bearer ${t.secret}` })).status).toBe(
      200,
    );
  });

  it("applies a retried event once, however often and however concurrently it comes", async () => {
    const t = await setUp();
    const body = envelope(pushEvent("same-id"));
    const results = await Promise.all(Array.from({ length: 5 }, () => t.post(body)));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(results.reduce((sum, r) => sum + (r.json.applied as number), 0)).toBe(1);
    expect(t.changes.map((c) => c.type)).toEqual(["repository.created", "tag.pushed"]);
    await t.audit.flush();
    expect(t.audit.query({ limit: 10, kind: "image.pushed" })).toHaveLength(1);
  });
});

describe("POST /registry/events refuses, and indexes nothing", () => {
  const authCases: [string, (secret: string) => Record<string, string>][] = [
    ["no Authorization", () => ({ authorization: "" })],
    [
      "the Basic scheme",
      (s) => ({ authorization: `Basic ${Buffer.from(`registry:${s}`).toString("base64")}` }),
    ],
    ["a wrong secret", () => ({ authorization: "Bearer not-the-secret-at-all-0000000000" })],
    ["the secret with a prefix", (s) => ({ authorization: `Bearer x${s}` })],
    ["a prefix of the secret", (s) => ({ authorization: `Bearer ${s.slice(0, -1)}` })],
    ["the secret after two spaces", (s) => ({ authorization: `Bearer  ${s}` })],
    ["the secret with a word after it", (s) => ({ authorization: `Bearer ${s} x` })],
    ["the secret with a tab inside", (s) => ({ authorization: `Bearer ${s}\tx` })],
    ["Bearer alone", () => ({ authorization: "Bearer " })],
  ];
  it.each(authCases)("401 for %s", async (_name, headers) => {
    const t = await setUp();
    const r = await t.post(envelope(pushEvent("e1")), headers(t.secret));
    expect(r.status).toBe(401);
    expect(r.res.headers.get("www-authenticate")).toBe('Bearer realm="registry-events"');
    expect(r.json.error).toBe("unauthorized");
    expect(findTag(t.db, "team/app", "v1")).toBeNull();
    expect(t.db.query("SELECT count(*) AS n FROM registry_events_seen").get()).toEqual({ n: 0 });
    expect(t.changes).toEqual([]);
  });

  it("401 before the body is looked at: a forged oversized or malformed body is still 401", async () => {
    const t = await setUp();
    const forged = { authorization: "Bearer forged-forged-forged-forged" };
    expect((await t.post("x".repeat(2_000_000), forged)).status).toBe(401);
    expect((await t.post("{", { ...forged, "content-type": "text/plain" })).status).toBe(401);
  });

  it.each([
    ["not JSON", "{events: [", {}, "not valid UTF-8 JSON"],
    ["not UTF-8", new Uint8Array([0x7b, 0xff, 0x7d]), {}, "not valid UTF-8 JSON"],
    ["an empty body", "", {}, "not valid UTF-8 JSON"],
    ["a form", "events=1", { "content-type": "application/x-www-form-urlencoded" }, "Content-Type"],
    ["text/plain", envelope(pushEvent("e1")), { "content-type": "text/plain" }, "Content-Type"],
    ["no content type", envelope(pushEvent("e1")), { "content-type": "" }, "Content-Type"],
    ["a JSON array", "[]", {}, "envelope"],
    ["no events", "{}", {}, "envelope"],
    ["an event without an id", envelope({ ...pushEvent("e1"), id: undefined }), {}, "events[0].id"],
    [
      "a size that is a string",
      envelope({ ...pushEvent("e1"), target: { ...pushEvent("e1").target, size: "1" } }),
      {},
      "events[0].target.size",
    ],
    [
      "a bad repository name",
      envelope(pushEvent("e1", "v1", "../../etc")),
      {},
      "events[0].target.repository",
    ],
    ["a very long tag", envelope(pushEvent("e1", "t".repeat(5000))), {}, "events[0].target.tag"],
    [
      "1001 events",
      envelope(...Array.from({ length: 1001 }, (_, i) => pushEvent(`e${i}`))),
      {},
      "at most 1000",
    ],
  ] as [string, Body, Record<string, string>, string][])(
    "400 for %s, with a message and no stack",
    async (_name, body, headers, message) => {
      const t = await setUp();
      const r = await t.post(body, headers);
      expect(r.status).toBe(400);
      expect((r.json.errors as { message: string }[])[0]?.message).toContain(message);
      expect(r.text).not.toMatch(/\bat \S+:\d+|\.ts\b/);
      expect(t.db.query("SELECT count(*) AS n FROM registry_events_seen").get()).toEqual({ n: 0 });
    },
  );

  it("applies none of an envelope with one bad event among good ones", async () => {
    const t = await setUp();
    const r = await t.post(envelope(pushEvent("e1"), { ...pushEvent("e2"), target: "x" }));
    expect(r.status).toBe(400);
    expect(findTag(t.db, "team/app", "v1")).toBeNull();
  });

  it("413 for a Content-Length over notifications.max_body_bytes, before reading", async () => {
    const t = await setUp({ notifications: { max_body_bytes: 4096 } });
    const r = await t.post(envelope(pushEvent("e1")).padEnd(5000, " "));
    expect(r.status).toBe(413);
    expect((r.json.errors as { message: string }[])[0]?.message).toContain("at most 4096 bytes");
  });

  it("413 for a chunked body (no Content-Length) that grows past the limit, and nothing indexed", async () => {
    const t = await setUp({ notifications: { max_body_bytes: 4096 } });
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 0) controller.enqueue(new TextEncoder().encode(envelope(pushEvent("e1")).slice(0, -2)));
        else controller.enqueue(new Uint8Array(1024).fill(0x20));
        sent++;
        if (sent > 100) controller.close();
      },
    });
    const r = await t.post(stream);
    expect(r.status).toBe(413);
    expect(sent).toBeLessThan(20); // not read to the end
    expect(findTag(t.db, "team/app", "v1")).toBeNull();
  });

  it("503 with Retry-After while another process holds the write lock; the registry's retry then applies it", async () => {
    const t = await setUp();
    const holder = new Database(t.db.filename);
    holder.run("BEGIN IMMEDIATE"); // as the CLI or a backup would, from another process
    try {
      const r = await t.post(envelope(pushEvent("e1")));
      expect(r.status).toBe(503);
      expect(Number(r.res.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(r.text).not.toContain("SQLITE");
    } finally {
      holder.run("ROLLBACK");
      holder.close();
    }
    const retry = await t.post(envelope(pushEvent("e1")));
    expect(retry.json).toEqual({ applied: 1, duplicates: 0, ignored: 0 });
  });

  it("never writes the secret, nor a presented one, to the log", async () => {
    const lines: string[] = [];
    const restore = log.capture(lines);
    try {
      const t = await setUp();
      const presented = "Bearer presented-wrong-secret-123456";
      await t.post(envelope(pushEvent("e1")), { authorization: presented });
      await t.post("{", {});
      await t.post(envelope(pushEvent("e2")));
      const holder = new Database(t.db.filename);
      holder.run("BEGIN IMMEDIATE");
      await t.post(envelope(pushEvent("e3")));
      holder.run("ROLLBACK");
      holder.close();
      const text = lines.join("\n");
      expect(text).not.toContain(t.secret);
      expect(text).not.toContain("presented-wrong-secret");
    } finally {
      restore();
    }
  });
});

describe("refusals in the log", () => {
  it("say why, at most once a minute, and never show a secret", async () => {
    const lines: string[] = [];
    const restore = log.capture(lines);
    try {
      const t = await setUp();
      for (let i = 0; i < 3; i++)
        await t.post(envelope(pushEvent("e1")), { authorization: "Bearer presented-wrong-secret-123456" });
      await t.post("{", {});
      const refusals = lines.filter((line) => line.includes("registry notification was refused"));
      expect(refusals).toHaveLength(1);
      expect(refusals[0]).toContain("status=401");
      expect(refusals[0]).toContain("wrong secret");
      expect(lines.join("\n")).not.toContain("presented-wrong-secret");
      expect(lines.join("\n")).not.toContain(t.secret);
      // Another route (another server) has its own budget: a 400 there is logged with its reason.
      const other = await setUp();
      await other.post("{", {});
      expect(lines.at(-1)).toContain("status=400");
      expect(lines.at(-1)).toContain("not valid UTF-8 JSON");
    } finally {
      restore();
    }
  });
});

describe("notifications.enabled: false", () => {
  it("has no route, no secret file, no receiver", async () => {
    const t = await setUp({ notifications: { enabled: false } });
    expect(t.events).toBeNull();
    expect(existsSync(join(t.dataDir, NOTIFICATIONS_SECRET_FILE))).toBe(false);
    const r = await t.post(envelope(pushEvent("e1")), { authorization: "Bearer anything-at-all-000000" });
    expect(r.status).toBe(404);
    expect(findTag(t.db, "team/app", "v1")).toBeNull();
  });
});

describe("a burst of 1,000 pushes' events", () => {
  it("indexes every one, hands each change to the sink once, with retries mixed in", async () => {
    const t = await setUp();
    const ids = Array.from({ length: 1000 }, (_, i) => `burst-${i}`);
    // Every tenth event is delivered twice, as a registry retrying a timed-out delivery would.
    const deliveries = ids.flatMap((id, i) => (i % 10 === 0 ? [id, id] : [id]));
    const startedMs = performance.now();
    const latenciesMs: number[] = [];
    const concurrency = 8;
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < deliveries.length) {
          const id = deliveries[next++] as string;
          const sentMs = performance.now();
          const r = await t.post(envelope(pushEvent(id, `t${id.slice(6)}`)));
          latenciesMs.push(performance.now() - sentMs);
          expect(r.status).toBe(200);
        }
      }),
    );
    const elapsedMs = performance.now() - startedMs;
    const pushed = t.changes.filter((c) => c.type === "tag.pushed").map((c) => c.eventId);
    expect(pushed.sort()).toEqual([...ids].sort());
    expect(t.changes.filter((c) => c.type === "repository.created")).toHaveLength(1);
    expect(t.db.query("SELECT count(*) AS n FROM image_tags").get()).toEqual({ n: 1000 });
    expect(t.db.query("SELECT count(*) AS n FROM registry_events_seen").get()).toEqual({ n: 1000 });
    latenciesMs.sort((a, b) => a - b);
    console.log(
      `in-process: ${deliveries.length} notifications in ${elapsedMs.toFixed(0)} ms (${((deliveries.length / elapsedMs) * 1000).toFixed(0)}/s), median ${latenciesMs[latenciesMs.length >> 1]?.toFixed(2)} ms`,
    );
  });
});

describe("POST /registry/events with hostile JSON", () => {
  it.each([
    [
      "deeply nested arrays in an unknown field",
      (() => {
        const event = pushEvent("deep") as Record<string, unknown>;
        return JSON.stringify({ events: [event] }).replace(
          '"source":',
          `"future":${"[".repeat(50_000)}${"]".repeat(50_000)},"source":`,
        );
      })(),
    ],
    ["deeply nested JSON as the whole body", "[".repeat(200_000)],
    [
      "__proto__ keys",
      envelope({ ...pushEvent("proto"), ["__proto__" as string]: { admin: true } }).replace(
        '"id":',
        '"__proto__":{"polluted":1},"id":',
      ),
    ],
  ])("%s: a 2xx or a 4xx, never a 500", async (_name, body) => {
    const t = await setUp();
    const r = await t.post(body);
    expect(r.status).toBeLessThan(500);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

// Review (issue 11): the registry retries anything but 2xx/3xx for ever and holds every later
// event back meanwhile, so what a real registry sends must not be refused.
describe("POST /registry/events takes what a real registry sends", () => {
  it("a pull whose User-Agent the registry's JSON made 2 MiB long (default limit: 8 MiB)", async () => {
    const t = await setUp();
    expect(t.loaded.config.notifications.max_body_bytes).toBe(8 * 1024 * 1024);
    const pull = {
      ...pushEvent("long-ua"),
      action: "pull",
      request: { ...pushEvent("x").request, method: "GET", useragent: "\\u003c".repeat(350_000) },
    };
    const body = envelope(pull);
    expect(body.length).toBeGreaterThan(2 * 1024 * 1024);
    const r = await t.post(body);
    expect(r.status, r.text).toBe(200);
  });

  it("a push to a name with a host component", async () => {
    const t = await setUp();
    const r = await t.post(envelope(pushEvent("host", "v1", "localhost:5000/app")));
    expect(r.status, r.text).toBe(200);
    expect(findTag(t.db, "localhost:5000/app", "v1")).toMatchObject({ digest: DIGEST });
  });
});

describe("the token route keeps its own 64 KiB limit under the notifications' larger one", () => {
  const form = "grant_type=password&service=registry&username=a&password=b&x=".padEnd(100 * 1024, "y");
  it.each([
    ["with a Content-Length", () => form],
    [
      "chunked",
      () =>
        new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(new TextEncoder().encode(form));
            controller.close();
          },
        }),
    ],
  ])("413 for a 100 KiB POST %s", async (_name, body) => {
    const t = await setUp();
    const res = await t.app.handle(
      req("/auth", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: body(),
      }),
    );
    expect(res.status).toBe(413);
  });
});
