/**
 * issue 11 items 1, 2 and 5 end to end: Debian's docker-registry (distribution 2.8) configured
 * with the `notifications` block that `regauth registry-config` prints, the compiled binary
 * receiving. A skopeo push and pull reach the index and the audit log; forged posts are 401; a
 * burst of 1,000 push events (posted directly, several at once, with retries mixed in, next to
 * real pushes) is indexed completely and once.
 *
 * The index is read through the database file, opened read-only: the catalog API is another
 * part of issue 11 (src/registry-index/catalog.ts); once it is there, these reads can use it.
 */
import { Database } from "bun:sqlite";
import { afterAll, describe, expect, it } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { hashPassword } from "../helpers.ts";
import {
  BINARY,
  makeOciImage,
  type RegistryNotificationEndpoint,
  run,
  skopeoPull,
  skopeoPush,
  startRegauth,
  startRegistry,
} from "./harness.ts";
import { manifestPushEnvelope } from "./notification-fixtures.ts";

const regauth = await startRegauth({
  configYaml: `
server: {addr: "127.0.0.1:{{PORT}}"}
token: {issuer: e2e-issuer, services: [registry]}
users:
  alice:
    password: "${hashPassword("alice-secret")}"
acl:
  - match: {account: alice}
    actions: ["*"]
`,
});
const printed = await run([
  BINARY,
  "registry-config",
  "--config",
  join(regauth.dir, "auth_config.yml"),
  "--data-dir",
  regauth.dataDir,
]);
const endpoint = (
  Bun.YAML.parse(printed.stdout) as { notifications: { endpoints: RegistryNotificationEndpoint[] } }
).notifications.endpoints[0] as RegistryNotificationEndpoint;
const secret = readFileSync(join(regauth.dataDir, "notifications.secret"), "utf8").trim();
const registry = await startRegistry({
  realm: `${regauth.url}/auth`,
  issuer: "e2e-issuer",
  service: "registry",
  certificatePath: regauth.certificatePath,
  // The printed block as it is, so that the registry's own YAML parser reads what users paste.
  notifications: { yaml: printed.stdout.slice(printed.stdout.indexOf("\nnotifications:") + 1) },
});
const db = new Database(join(regauth.dataDir, "regauth.db"), { readonly: true });
afterAll(() => db.close());

interface TagRow {
  digest: string;
  media_type: string;
  size_bytes: number;
  pushed_by: string | null;
  pushed_from: string | null;
  pull_count: number;
}
const tagRow = (repository: string, tag: string) =>
  db
    .query<TagRow, [string, string]>(
      `SELECT t.digest, t.media_type, t.size_bytes, t.pushed_by, t.pushed_from, t.pull_count
       FROM image_tags t JOIN repositories r ON r.id = t.repository_id WHERE r.name = ? AND t.tag = ?`,
    )
    .get(repository, tag);
const count = (sql: string, ...params: string[]) => (db.query(sql).get(...params) as { n: number }).n;

async function until<T>(
  what: string,
  probe: () => T | null | undefined | false,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}\n${registry.log.text.slice(-3000)}`);
    await Bun.sleep(50);
  }
}

/** The manifest skopeo pushes for an OCI layout: the layout's one manifest, as it is. */
function manifestOf(ociDir: string): { digest: string; size: number; mediaType: string } {
  const index = JSON.parse(readFileSync(join(ociDir, "index.json"), "utf8")) as {
    manifests: { digest: string; size: number; mediaType: string }[];
  };
  return index.manifests[0] as { digest: string; size: number; mediaType: string };
}

const post = (body: string, authorization?: string) =>
  fetch(`${regauth.url}/registry/events`, {
    method: "POST",
    headers: {
      "content-type": "application/vnd.docker.distribution.events.v1+json",
      ...(authorization !== undefined ? { authorization } : {}),
    },
    body,
  });

describe("the notifications block regauth registry-config prints", () => {
  it("points the registry at /registry/events with the secret, and drops blob events", () => {
    expect(printed.exitCode).toBe(0);
    expect(endpoint).toEqual({
      name: "regauth",
      url: `${regauth.url}/registry/events`,
      headers: { Authorization: [`Bearer ${secret}`] },
      timeout: "5s",
      threshold: 5,
      backoff: "2s",
      ignoredmediatypes: ["application/octet-stream"],
      ignore: { mediatypes: ["application/octet-stream"] },
    });
    // The secret stays out of regauth's own log.
    expect(regauth.stderr.text).not.toContain(secret);
  });
});

describe("a skopeo push and pull through the real registry", () => {
  it("index the tag with digest, media type, size, pusher and address, and count the pull", async () => {
    const image = makeOciImage("notified\n");
    const manifest = manifestOf(image);
    const pushed = await skopeoPush(image, `${registry.host}/alice/app:v1`, "alice:alice-secret");
    expect(pushed.exitCode, pushed.stderr).toBe(0);
    const row = await until("the pushed tag in the index", () => tagRow("alice/app", "v1"));
    expect(row).toEqual({
      digest: manifest.digest,
      media_type: "application/vnd.oci.image.manifest.v1+json",
      size_bytes: manifest.size,
      pushed_by: "alice",
      pushed_from: "127.0.0.1",
      pull_count: 0,
    });
    const pulled = await skopeoPull(`${registry.host}/alice/app:v1`, "alice:alice-secret");
    expect(pulled.exitCode, pulled.stderr).toBe(0);
    await until("the pull counted", () => tagRow("alice/app", "v1")?.pull_count === 1);

    // The audit log has both, with who, what and from where (the writer flushes within a second or so).
    await until(
      "the audit rows",
      () =>
        count(
          "SELECT count(*) AS n FROM audit_events WHERE kind IN ('image.pushed', 'image.pulled') AND repository = 'alice/app'",
        ) >= 2,
    );
    const audited = db
      .query<{ kind: string; actor: string; ip: string; details: string }, []>(
        "SELECT kind, actor, ip, details FROM audit_events WHERE repository = 'alice/app' AND kind LIKE 'image.%' ORDER BY id",
      )
      .all();
    expect(audited.map((a) => [a.kind, a.actor, a.ip])).toEqual([
      ["image.pushed", "alice", "127.0.0.1"],
      ["image.pulled", "alice", "127.0.0.1"],
    ]);
    expect(JSON.parse(audited[0]?.details ?? "{}")).toMatchObject({ tag: "v1", digest: manifest.digest });
    expect(JSON.parse(audited[0]?.details ?? "{}").user_agent).toStartWith("skopeo/");
  });

  it("mark the tag deleted when its manifest is deleted (2.8 deletes by digest), and audit it", async () => {
    const image = makeOciImage("to be deleted\n");
    const pushed = await skopeoPush(image, `${registry.host}/alice/gone:v1`, "alice:alice-secret");
    expect(pushed.exitCode, pushed.stderr).toBe(0);
    await until("the pushed tag", () => tagRow("alice/gone", "v1"));
    const deleted = await run([
      "skopeo",
      "delete",
      "--tls-verify=false",
      "--creds",
      "alice:alice-secret",
      `docker://${registry.host}/alice/gone:v1`,
    ]);
    expect(deleted.exitCode, deleted.stderr).toBe(0);
    await until(
      "the tag marked deleted",
      () =>
        db
          .query(
            "SELECT t.deleted_at FROM image_tags t JOIN repositories r ON r.id = t.repository_id WHERE r.name = 'alice/gone' AND t.tag = 'v1' AND t.deleted_at IS NOT NULL",
          )
          .get() !== null,
    );
    await until(
      "the audit row",
      () =>
        count(
          "SELECT count(*) AS n FROM audit_events WHERE kind = 'image.deleted' AND repository = 'alice/gone' AND actor = 'alice'",
        ) >= 1,
    );
  });
});

describe("forged notifications", () => {
  it("are 401 without the secret or with a wrong one, and nothing is indexed", async () => {
    const forged = JSON.stringify({
      events: [
        {
          id: "forged-1",
          timestamp: new Date().toISOString(),
          action: "push",
          target: {
            mediaType: "application/vnd.oci.image.manifest.v1+json",
            digest: `sha256:${"0".repeat(64)}`,
            size: 1,
            repository: "forged/app",
            tag: "evil",
          },
          actor: { name: "admin" },
        },
      ],
    });
    for (const authorization of [
      undefined,
      "Bearer guessed-secret-0000000000000000",
      `Basic ${btoa(`x:${secret}`)}`,
    ]) {
      const res = await post(forged, authorization);
      expect(res.status).toBe(401);
    }
    expect(tagRow("forged/app", "evil")).toBeNull();
    expect(count("SELECT count(*) AS n FROM registry_events_seen WHERE event_id = 'forged-1'")).toBe(0);
  });
});

describe("a burst of 1,000 push events", () => {
  it("indexes every one once, with retries mixed in and real pushes alongside", async () => {
    const digest = `sha256:${"ab".repeat(32)}`;
    const event = (i: number) =>
      manifestPushEnvelope({
        id: `burst-${i}`,
        repository: "burst/app",
        tag: `t${i}`,
        digest,
        registryHost: registry.host,
      });
    // Every tenth is delivered twice, as a registry retrying a delivery it thought failed.
    const deliveries = Array.from({ length: 1000 }, (_, i) => i).flatMap((i) =>
      i % 10 === 0 ? [i, i] : [i],
    );
    const realPushes = ["r1", "r2", "r3"].map((tag) =>
      skopeoPush(makeOciImage(`real ${tag}\n`), `${registry.host}/alice/burst:${tag}`, "alice:alice-secret"),
    );
    const latenciesMs: number[] = [];
    let next = 0;
    let applied = 0;
    const startedMs = performance.now();
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < deliveries.length) {
          const body = event(deliveries[next++] as number);
          const sentMs = performance.now();
          const res = await post(body, `Bearer ${secret}`);
          latenciesMs.push(performance.now() - sentMs);
          expect(res.status).toBe(200);
          applied += ((await res.json()) as { applied: number }).applied;
        }
      }),
    );
    const elapsedMs = performance.now() - startedMs;
    for (const pushed of await Promise.all(realPushes)) expect(pushed.exitCode, pushed.stderr).toBe(0);
    expect(applied).toBe(1000);
    expect(
      count(
        "SELECT count(*) AS n FROM image_tags t JOIN repositories r ON r.id = t.repository_id WHERE r.name = 'burst/app'",
      ),
    ).toBe(1000);
    expect(count("SELECT count(*) AS n FROM registry_events_seen WHERE event_id LIKE 'burst-%'")).toBe(1000);
    await until(
      "the real pushes",
      () =>
        count(
          "SELECT count(*) AS n FROM image_tags t JOIN repositories r ON r.id = t.repository_id WHERE r.name = 'alice/burst'",
        ) === 3,
    );
    // One audit row per applied push: the retried deliveries added none.
    await until(
      "the burst's audit rows",
      () =>
        count(
          "SELECT count(*) AS n FROM audit_events WHERE kind = 'image.pushed' AND repository = 'burst/app'",
        ) >= 1000,
    );
    expect(
      count(
        "SELECT count(*) AS n FROM audit_events WHERE kind = 'image.pushed' AND repository = 'burst/app'",
      ),
    ).toBe(1000);
    // One at a time, as the registry delivers to an endpoint: the time per notification.
    const serialMs: number[] = [];
    for (let i = 1000; i < 1200; i++) {
      const sentMs = performance.now();
      const res = await post(event(i), `Bearer ${secret}`);
      await res.arrayBuffer();
      serialMs.push(performance.now() - sentMs);
    }
    serialMs.sort((a, b) => a - b);
    console.log(
      `one at a time: median ${serialMs[100]?.toFixed(2)} ms, p99 ${serialMs[198]?.toFixed(2)} ms per notification`,
    );
    latenciesMs.sort((a, b) => a - b);
    const at = (q: number) =>
      latenciesMs[Math.min(latenciesMs.length - 1, Math.floor(latenciesMs.length * q))]?.toFixed(1);
    console.log(
      `compiled binary over HTTP, 8 concurrent: ${deliveries.length} notifications in ${elapsedMs.toFixed(0)} ms (${((deliveries.length / elapsedMs) * 1000).toFixed(0)}/s); latency median ${at(0.5)} ms, p99 ${at(0.99)} ms`,
    );
  }, 120_000);
});

describe("notifications.enabled: false", () => {
  it("serves no /registry/events and creates no secret", async () => {
    const off = await startRegauth({
      configYaml: `
server: {addr: "127.0.0.1:{{PORT}}"}
token: {issuer: e2e-issuer}
notifications: {enabled: false}
`,
    });
    const res = await fetch(`${off.url}/registry/events`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer anything-anything-1234" },
      body: '{"events":[]}',
    });
    expect(res.status).toBe(404);
    expect(existsSync(join(off.dataDir, "notifications.secret"))).toBe(false);
    await off.stop();
  });
});
