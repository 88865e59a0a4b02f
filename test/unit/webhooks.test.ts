import { describe, expect, it } from "bun:test";
import { parseIp } from "../../src/ip.ts";
import { openDatabase, databasePath } from "../../src/db/database.ts";
import type { IndexChange } from "../../src/registry-index/changes.ts";
import { backoffMs, MIN_WAIT_MS } from "../../src/webhooks/backoff.ts";
import { payloadOf } from "../../src/webhooks/payload.ts";
import { signatureHeader, signatureHex, verifySignature } from "../../src/webhooks/signing.ts";
import { WebhookCache, webhookSink } from "../../src/webhooks/sink.ts";
import {
  insertWebhook,
  listDeliveries,
  pruneHistory,
  finishAttempt,
  enqueueDelivery,
} from "../../src/webhooks/store.ts";
import {
  checkWebhookUrl,
  parseAllowedNetworks,
  redactUrl,
  refusalOf,
} from "../../src/webhooks/url-policy.ts";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../../src/errors.ts";
import { loadTestConfig, makeTempDir } from "../helpers.ts";

describe("signing", () => {
  // Vector computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test
  it("is HMAC-SHA256 over `${t}.${body}`, hex, in t=...,v1=...", () => {
    const hex = signatureHex("whsec_test", 1_700_000_000, '{"a":1}');
    const openssl = Bun.spawnSync(["openssl", "dgst", "-sha256", "-hmac", "whsec_test", "-hex"], {
      stdin: new TextEncoder().encode('1700000000.{"a":1}'),
    });
    expect(openssl.stdout.toString().trim().split(" ").at(-1)).toBe(hex);
    expect(signatureHeader("whsec_test", 1_700_000_000, '{"a":1}')).toBe(`t=1700000000,v1=${hex}`);
  });

  const header = signatureHeader("s3cr3t-s3cr3t-s3", 1_700_000_000, "body");
  it.each([
    ["the right secret, body and time", "s3cr3t-s3cr3t-s3", header, "body", 1_700_000_100, true],
    ["a wrong secret", "other-secret-xxxx", header, "body", 1_700_000_100, false],
    ["a changed body", "s3cr3t-s3cr3t-s3", header, "body ", 1_700_000_100, false],
    ["a replay after the tolerance", "s3cr3t-s3cr3t-s3", header, "body", 1_700_000_301, false],
    ["a timestamp from the future", "s3cr3t-s3cr3t-s3", header, "body", 1_699_999_000, false],
    [
      "a changed timestamp",
      "s3cr3t-s3cr3t-s3",
      header.replace("t=1700000000", "t=1700000001"),
      "body",
      1_700_000_100,
      false,
    ],
    ["no v1", "s3cr3t-s3cr3t-s3", "t=1700000000", "body", 1_700_000_100, false],
    ["garbage", "s3cr3t-s3cr3t-s3", "v1=zz,t=x", "body", 1_700_000_100, false],
  ])("verifies: %s → %p", (_what, secret, given, body, now, ok) => {
    expect(verifySignature(secret, given, body, now)).toBe(ok);
  });
});

describe("URL policy", () => {
  const none = parseAllowedNetworks([]);
  it.each([
    "http://127.0.0.1/",
    "http://127.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://0x7f.0.0.1/",
    "http://localhost/",
    "http://LOCALHOST./",
    "http://a.localhost/",
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://172.31.255.255/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://0.0.0.0/",
    "http://0/",
    "http://[::]/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    "http://[fd00::1]/",
    "http://[ff02::1]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[::127.0.0.1]/",
    // IPv4 carried inside IPv6 by a translation or tunnel prefix (review of issue 11 item 4):
    // local-use NAT64 (RFC 8215), 6to4 (RFC 3056) around loopback, metadata and the LAN, Teredo
    // (RFC 4380), SIIT IPv4-translated (RFC 2765).
    "http://[64:ff9b:1::7f00:1]/",
    "http://[2002:7f00:1::]/",
    "http://[2002:a9fe:a9fe::1]/",
    "http://[2002:c0a8:101::1]/",
    "http://[2002:a00:1::]/",
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
    "http://[::ffff:0:7f00:1]/",
    "http://[::ffff:0:169.254.169.254]/",
    // Documentation ranges (RFC 5737, RFC 9637), as 2001:db8::/32 already is.
    "http://192.0.2.1/",
    "http://198.51.100.1/",
    "http://203.0.113.1/",
    "http://[3fff::1]/",
    // Never deliverable: credentials that are not percent-encoding (every attempt threw a
    // URIError while building the Authorization header), and port 0.
    "https://%zz:%zz@hooks.example.com/",
    "https://user:%E0%A4%A@hooks.example.com/",
    "https://hooks.example.com:0/",
    "ftp://example.com/",
    "file:///etc/passwd",
    "gopher://example.com/",
    "javascript:alert(1)",
    "http://example.com/#frag",
    "not a url",
    "//example.com/",
  ])("refuses %s", (url) => {
    const check = checkWebhookUrl(url, none);
    expect(check.ok).toBe(false);
  });

  it.each([
    "https://ci.example.com/hooks",
    "http://93.184.216.34:8080/x?y=1",
    "https://[2606:4700::1]/",
    "http://172.32.0.1/",
    // 6to4 around a public address is that public address.
    "http://[2002:5db8:d822::1]/",
  ])("accepts %s", (url) => {
    expect(checkWebhookUrl(url, none).ok).toBe(true);
  });

  it("names the rule and the switch in the refusal", () => {
    const check = checkWebhookUrl("http://169.254.169.254/", none);
    expect(check.ok ? "" : check.reason).toContain("link-local");
    expect(check.ok ? "" : check.reason).toContain("webhooks.allow_private_networks");
  });

  it("allows what allow_private_networks includes, and nothing next to it", () => {
    const allowed = parseAllowedNetworks(["127.0.0.0/8", "10.1.0.0/16"]);
    expect(checkWebhookUrl("http://127.0.0.1:9000/", allowed).ok).toBe(true);
    expect(checkWebhookUrl("http://localhost:9000/", allowed).ok).toBe(true);
    expect(checkWebhookUrl("http://10.1.2.3/", allowed).ok).toBe(true);
    expect(checkWebhookUrl("http://10.2.0.1/", allowed).ok).toBe(false);
    expect(checkWebhookUrl("http://[::1]/", allowed).ok).toBe(false);
    expect(refusalOf(parseIp("169.254.169.254") as Uint8Array, allowed)).not.toBeNull();
  });

  it("refuses a malformed allow_private_networks entry by its key", () => {
    expect(() => parseAllowedNetworks(["10.0.0.0/33"])).toThrow("webhooks.allow_private_networks.0");
  });

  it("redacts credentials in URLs shown back", () => {
    expect(redactUrl("https://user:pa55@hooks.example.com/x")).toBe("https://***@hooks.example.com/x");
    expect(redactUrl("https://hooks.example.com/x")).toBe("https://hooks.example.com/x");
  });
});

describe("backoff", () => {
  const policy = { baseMs: 1000, maxMs: 60_000 };
  it.each([
    [1, 1000],
    [2, 2000],
    [3, 4000],
    [6, 32_000],
    [7, 60_000],
    [50, 60_000],
  ])("after attempt %i waits at most %i ms (full jitter from the floor up)", (attempt, ceiling) => {
    expect(backoffMs(attempt, policy, () => 0)).toBe(MIN_WAIT_MS);
    expect(backoffMs(attempt, policy, () => 0.999_999)).toBe(ceiling - 1);
    for (let i = 0; i < 200; i++) {
      const wait = backoffMs(attempt, policy);
      expect(wait).toBeGreaterThanOrEqual(MIN_WAIT_MS);
      expect(wait).toBeLessThan(ceiling);
    }
  });
});

function change(overrides: Partial<IndexChange> = {}): IndexChange {
  return {
    type: "tag.pushed",
    eventId: "evt-1",
    repository: "team/app",
    tag: "v1",
    digest: "sha256:abc",
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    sizeBytes: 1234,
    pusher: "alice",
    pusherAddress: "192.0.2.7",
    atUnixMs: 1_700_000_000_000,
    source: "notification",
    ...overrides,
  };
}

function dbWithWebhooks() {
  const db = openDatabase(databasePath(makeTempDir()));
  const add = (
    name: string,
    patterns: string[],
    events = ["repository.created", "tag.pushed", "tag.deleted"],
  ) =>
    insertWebhook(db, {
      name,
      url: "https://hooks.example.com/",
      repositoryPatterns: patterns,
      events: events as never,
      isEnabled: true,
      isDeclared: false,
      secretNonce: new Uint8Array(16),
      createdBy: "admin",
      nowUnix: 1,
    });
  return { db, add };
}

describe("the sink", () => {
  it("queues one delivery per matching webhook and change, once per (webhook, event id)", () => {
    const { db, add } = dbWithWebhooks();
    const team = add("team", ["team/*"]);
    const all = add("all", ["*"], ["tag.deleted"]);
    const other = add("other", ["other/*"]);
    const sink = webhookSink({
      enabled: true,
      registryHost: "registry.example.com",
      cache: new WebhookCache(),
    });
    db.transaction(() => sink(db, [change(), change({ eventId: "evt-2", type: "tag.deleted" })]))();
    // The registry retried: the same event ids again.
    db.transaction(() => sink(db, [change(), change({ eventId: "evt-2", type: "tag.deleted" })]))();
    expect(listDeliveries(db, team.id, null, 10).map((d) => d.eventId)).toEqual(["evt-2", "evt-1"]);
    expect(listDeliveries(db, all.id, null, 10).map((d) => d.eventId)).toEqual(["evt-2"]);
    expect(listDeliveries(db, other.id, null, 10)).toEqual([]);
    const payload = JSON.parse(listDeliveries(db, team.id, null, 10)[1]?.payload ?? "{}");
    expect(payload).toEqual(payloadOf(change(), "registry.example.com"));
    expect(payload.pull_command).toBe("docker pull registry.example.com/team/app:v1");
  });

  it("queues nothing when webhooks are switched off", () => {
    const { db, add } = dbWithWebhooks();
    const team = add("team", ["team/*"]);
    webhookSink({ enabled: false, registryHost: null, cache: new WebhookCache() })(db, [change()]);
    expect(listDeliveries(db, team.id, null, 10)).toEqual([]);
  });

  it("sees a webhook another process (another worker, issue 17) created, at once", () => {
    const { db } = dbWithWebhooks();
    const cache = new WebhookCache();
    expect(cache.enabled(db)).toEqual([]);
    // Another connection to the same file, as another worker has.
    const other = openDatabase(db.filename);
    insertWebhook(other, {
      name: "elsewhere",
      url: "https://hooks.example.com/",
      repositoryPatterns: ["*"],
      events: ["tag.pushed"],
      isEnabled: true,
      isDeclared: false,
      secretNonce: new Uint8Array(16),
      createdBy: "admin",
      nowUnix: 1,
    });
    other.close();
    expect(cache.enabled(db).map((w) => w.name)).toEqual(["elsewhere"]);
  });

  it("skips a webhook deleted behind the cache's back instead of failing the index's transaction", () => {
    const { db, add } = dbWithWebhooks();
    const team = add("team", ["team/*"]);
    const cache = new WebhookCache();
    cache.enabled(db);
    db.run("DELETE FROM webhooks WHERE id = ?", [team.id]);
    expect(() =>
      db.transaction(() => webhookSink({ enabled: true, registryHost: null, cache })(db, [change()]))(),
    ).not.toThrow();
  });

  it("keeps 1,000 changes for 20 webhooks cheap (one transaction)", () => {
    const { db, add } = dbWithWebhooks();
    for (let i = 0; i < 20; i++) add(`w${i}`, [i % 2 ? "team/*" : "other/*"]);
    const sink = webhookSink({ enabled: true, registryHost: null, cache: new WebhookCache() });
    const changes = Array.from({ length: 1000 }, (_, i) => change({ eventId: `e${i}` }));
    const started = performance.now();
    db.transaction(() => sink(db, changes))();
    const ms = performance.now() - started;
    expect(db.query("SELECT count(*) AS n FROM webhook_deliveries").get()).toEqual({ n: 10_000 });
    expect(ms).toBeLessThan(5_000);
  });
});

describe("history retention", () => {
  it("keeps the newest N finished deliveries and every pending one", () => {
    const { db, add } = dbWithWebhooks();
    const w = add("w", ["*"]);
    for (let i = 0; i < 10; i++)
      enqueueDelivery(db, {
        webhookId: w.id,
        eventId: `e${i}`,
        eventType: "tag.pushed",
        payload: "{}",
        nowMs: i,
      });
    const ids = listDeliveries(db, w.id, null, 100)
      .map((d) => d.id)
      .reverse();
    // e0..e7 finished, e8 and e9 pending.
    for (const id of ids.slice(0, 8))
      finishAttempt(db, id, {
        status: "delivered",
        nextAttemptAtMs: 0,
        responseStatus: 200,
        latencyMs: 1,
        lastError: null,
        responseExcerpt: "",
      });
    pruneHistory(db, w.id, 3);
    expect(listDeliveries(db, w.id, null, 100).map((d) => d.eventId)).toEqual(["e9", "e8", "e7", "e6", "e5"]);
  });
});

describe("the webhooks config section", () => {
  const problemsOf = async (webhooks: Record<string, unknown>): Promise<string> => {
    try {
      await loadTestConfig({ webhooks });
      return "";
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      return error.message;
    }
  };
  const secretFile = join(makeTempDir(), "secret");
  writeFileSync(secretFile, "sixteen-bytes-or-more\n");

  it("has defaults: on, history of 100, nothing private allowed", async () => {
    const loaded = await loadTestConfig({});
    expect(loaded.config.webhooks).toMatchObject({
      enabled: true,
      history: true,
      history_limit: 100,
      allow_private_networks: [],
      timeout_seconds: 10,
      max_attempts: 12,
      retry_base_seconds: 5,
      retry_max_seconds: 3600,
      max_pending: 10_000,
      max_webhooks: 1_000,
      declared: [],
    });
  });

  it.each([
    [{ allow_private_networks: ["10.0.0.0/33"] }, "webhooks.allow_private_networks.0"],
    [{ unknown: true }, "webhooks"],
    [{ timeout_seconds: 0 }, "webhooks.timeout_seconds"],
    [{ max_pending: 0 }, "webhooks.max_pending"],
    [{ retry_base_seconds: 10, retry_max_seconds: 5 }, "webhooks.retry_base_seconds"],
    [
      { declared: [{ name: "a", url: "http://127.0.0.1/", secret_file: secretFile }] },
      "webhooks.declared.0.url",
    ],
    [
      { declared: [{ name: "a", url: "https://e.com/", secret_file: "/nonexistent" }] },
      "webhooks.declared.0.secret_file",
    ],
    [
      { declared: [{ name: "a", url: "https://e.com/", secret_file: secretFile, repositories: ["../x"] }] },
      "webhooks.declared.0.repositories.0",
    ],
    [
      {
        declared: [
          { name: "a", url: "https://e.com/", secret_file: secretFile },
          { name: "a", url: "https://f.com/", secret_file: secretFile },
        ],
      },
      "webhooks.declared.1.name",
    ],
    [
      { declared: [{ name: "Bad Name", url: "https://e.com/", secret_file: secretFile }] },
      "webhooks.declared.0.name",
    ],
  ])("refuses %j at %s", async (webhooks, path) => {
    expect(await problemsOf(webhooks)).toContain(path);
  });

  it("accepts a declared webhook to an allowed private address", async () => {
    expect(
      await problemsOf({
        allow_private_networks: ["127.0.0.0/8"],
        declared: [{ name: "local", url: "http://127.0.0.1:9000/", secret_file: secretFile }],
      }),
    ).toBe("");
  });
});

describe("docs/webhooks.md", () => {
  const doc = readFileSync(join(import.meta.dir, "../../docs/webhooks.md"), "utf8");
  const secret = "whsec_docs-example-secret";
  const body = '{"id":"e1","type":"tag.pushed"}';
  const now = Math.floor(Date.now() / 1000);

  it("its JavaScript verification snippet accepts a real signature and refuses forgeries and replays", async () => {
    const snippet = doc.match(/```js\n([\s\S]*?)```/)?.[1] ?? "";
    const file = join(makeTempDir(), "verify.mjs");
    writeFileSync(file, snippet);
    const { verifyRegauthSignature } = (await import(file)) as {
      verifyRegauthSignature: (s: string, h: string | null, b: string) => boolean;
    };
    // An unsigned request: request.headers.get() is null, a refusal rather than a TypeError.
    expect(verifyRegauthSignature(secret, null, body)).toBe(false);
    expect(verifyRegauthSignature(secret, "t=,v1=", body)).toBe(false);
    expect(verifyRegauthSignature(secret, signatureHeader(secret, now, body), body)).toBe(true);
    expect(verifyRegauthSignature(secret, signatureHeader("whsec_other", now, body), body)).toBe(false);
    expect(verifyRegauthSignature(secret, signatureHeader(secret, now, body), `${body} `)).toBe(false);
    expect(verifyRegauthSignature(secret, signatureHeader(secret, now - 3600, body), body)).toBe(false);
  });

  it("its Python verification snippet does too", () => {
    const snippet = doc.match(/```python\n([\s\S]*?)```/)?.[1] ?? "";
    const check = (header: string, given: string) =>
      Bun.spawnSync([
        "python3",
        "-c",
        `${snippet}\nimport sys\nprint(verify_regauth_signature(sys.argv[1], sys.argv[2], sys.argv[3].encode()))`,
        secret,
        header,
        given,
      ])
        .stdout.toString()
        .trim();
    expect(check(signatureHeader(secret, now, body), body)).toBe("True");
    expect(check(signatureHeader("whsec_other", now, body), body)).toBe("False");
    expect(check(signatureHeader(secret, now - 3600, body), body)).toBe("False");
    // A forger's non-ASCII v1 is a refusal, not a TypeError (a 500 in the receiver).
    expect(check(`t=${now},v1=\u00e9`, body)).toBe("False");
    expect(check("garbage", body)).toBe("False");
  });
});
