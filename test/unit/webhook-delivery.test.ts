/**
 * Deliveries to a REAL HTTP receiver (Bun.serve on loopback, allowed through
 * webhooks.allow_private_networks): signatures, retries, timeouts, caps, redirects, order.
 */
import { afterEach, describe, expect, it } from "bun:test";
import { AccessTokenKey } from "../../src/access-tokens/key.ts";
import { AuditLog } from "../../src/audit/audit-log.ts";
import { auditOptions } from "../../src/audit/config-schema.ts";
import { databasePath, openDatabase } from "../../src/db/database.ts";
import type { ManagementContext } from "../../src/management/context.ts";
import * as webhooks from "../../src/management/webhooks.ts";
import type { IndexChange } from "../../src/registry-index/changes.ts";
import { log } from "../../src/log.ts";
import { beginAttempt } from "../../src/webhooks/store.ts";
import { WebhookDispatcher } from "../../src/webhooks/dispatcher.ts";
import { verifySignature } from "../../src/webhooks/signing.ts";
import { createWebhooks, lazyWebhookKey } from "../../src/webhooks/webhooks.ts";
import { loadTestConfig, makeTempDir } from "../helpers.ts";
import { runChecked } from "../key-fixtures.ts";
import { readFileSync } from "node:fs";
import { join } from "node:path";

interface Received {
  headers: Headers;
  body: string;
  atMs: number;
}

type Behaviour = (request: Request, received: Received) => Response | Promise<Response>;

function receiver(port = 0) {
  const received: Received[] = [];
  let behaviour: Behaviour = () => new Response("ok");
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port,
    async fetch(request) {
      const entry = { headers: request.headers, body: await request.text(), atMs: Date.now() };
      received.push(entry);
      return behaviour(request, entry);
    },
  });
  return {
    server,
    received,
    url: `http://127.0.0.1:${server.port}/hook`,
    respond(next: Behaviour) {
      behaviour = next;
    },
  };
}

const stops: (() => unknown)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

async function setup(webhookConfig: Record<string, unknown> = {}, dispatcher: Record<string, unknown> = {}) {
  const dataDir = makeTempDir("regauth-webhooks-");
  const loaded = await loadTestConfig(
    { webhooks: { allow_private_networks: ["127.0.0.0/8"], timeout_seconds: 1, ...webhookConfig } },
    dataDir,
  );
  const db = openDatabase(databasePath(dataDir));
  const wh = createWebhooks(
    db,
    { config: loaded.config.webhooks, registryHost: null },
    lazyWebhookKey(dataDir),
    {
      dispatcher: { backoff: { baseMs: 20, maxMs: 100 }, pollMs: 10, ...dispatcher },
    },
  );
  const ctx: ManagementContext = {
    db,
    actor: { kind: "local-admin" },
    ip: "",
    audit: new AuditLog(db, null, auditOptions(loaded.config.audit)),
    accessTokenKey: AccessTokenKey.random(),
    config: { personalNamespaces: false, maxTokenLifetimeDays: null },
    nowUnix: Math.floor(Date.now() / 1000),
    webhooks: wh.services,
  };
  stops.push(async () => {
    await wh.dispatcher.stop();
    db.close();
  });
  return { db, wh, ctx, dataDir };
}

async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}

/** A self-signed certificate for hooks.test, made by openssl. */
function hooksCertificate(): { cert: string; key: string } {
  const dir = makeTempDir("regauth-webhook-tls-");
  const [key, cert] = [join(dir, "hooks.key"), join(dir, "hooks.crt")];
  runChecked([
    "openssl",
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    key,
    "-out",
    cert,
    "-days",
    "2",
    "-subj",
    "/CN=hooks.test",
    "-addext",
    "subjectAltName=DNS:hooks.test",
  ]);
  return { cert: readFileSync(cert, "utf8"), key: readFileSync(key, "utf8") };
}

function change(i: number, repository = "team/app"): IndexChange {
  return {
    type: "tag.pushed",
    eventId: `evt-${i}`,
    repository,
    tag: `v${i}`,
    digest: `sha256:${String(i).padStart(64, "0")}`,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    sizeBytes: 100 + i,
    pusher: "alice",
    pusherAddress: "192.0.2.1",
    atUnixMs: 1_700_000_000_000 + i,
    source: "notification",
  };
}

function deliveries(ctx: ManagementContext, name: string) {
  return webhooks.listDeliveries(ctx, name, { limit: 500 }).items;
}

describe("delivery to a real receiver", () => {
  it("signs with the secret shown once; the receiver verifies it; history records the answer", async () => {
    const r = receiver();
    stops.push(() => r.server.stop(true));
    const { wh, ctx } = await setup();
    const created = webhooks.createWebhook(ctx, { name: "ci", url: r.url, repository_patterns: ["*"] });
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    const queued = webhooks.testWebhook(ctx, "ci");
    expect(queued.status).toBe("pending");
    wh.dispatcher.start();
    await waitFor("the delivery", () => r.received.length === 1);
    const got = r.received[0] as Received;
    const signature = got.headers.get("x-regauth-signature") ?? "";
    expect(verifySignature(created.secret, signature, got.body, Math.floor(Date.now() / 1000))).toBe(true);
    expect(verifySignature("whsec_wrong", signature, got.body, Math.floor(Date.now() / 1000))).toBe(false);
    expect(got.headers.get("content-type")).toBe("application/json");
    expect(got.headers.get("user-agent")).toMatch(/^regauth\/\d/);
    expect(got.headers.get("x-regauth-event")).toBe("webhook.test");
    expect(got.headers.get("x-regauth-delivery")).toBe(String(queued.id));
    const body = JSON.parse(got.body);
    expect(body).toMatchObject({ type: "webhook.test", test: true, id: queued.event_id });
    const [done] = await waitFor("history", () => {
      const list = deliveries(ctx, "ci");
      return list[0]?.status === "delivered" ? list : undefined;
    });
    expect(done).toMatchObject({
      status: "delivered",
      attempts: 1,
      response_status: 200,
      response_excerpt: "ok",
      last_error: null,
    });
    expect(done?.latency_ms).toBeGreaterThanOrEqual(0);
    // The secret is in no listing.
    expect(JSON.stringify(webhooks.listWebhooks(ctx))).not.toContain(created.secret);
    expect(JSON.stringify(webhooks.getWebhook(ctx, "ci"))).not.toContain("whsec_");
  });

  it("retries a 500 and delivers once the receiver is back; a closed port too", async () => {
    const r = receiver();
    stops.push(() => r.server.stop(true));
    const { wh, ctx } = await setup();
    webhooks.createWebhook(ctx, { name: "ci", url: r.url, repository_patterns: ["*"] });
    let failures = 2;
    r.respond(() => (failures-- > 0 ? new Response("boom", { status: 500 }) : new Response("ok")));
    webhooks.testWebhook(ctx, "ci");
    wh.dispatcher.start();
    const [done] = await waitFor("delivered after two 500s", () => {
      const list = deliveries(ctx, "ci");
      return list[0]?.status === "delivered" ? list : undefined;
    });
    expect(done?.attempts).toBe(3);
    expect(r.received.length).toBe(3);

    // The receiver goes away: the port is closed; it comes back on the same port.
    const port = r.server.port as number;
    r.server.stop(true);
    webhooks.testWebhook(ctx, "ci");
    const failing = await waitFor("a failed attempt on the closed port", () => {
      const head = deliveries(ctx, "ci")[0];
      return head && head.attempts >= 2 && head.status === "pending" ? head : undefined;
    });
    expect(failing.last_error).toBeTruthy();
    const back = receiver(port);
    stops.push(() => back.server.stop(true));
    await waitFor("delivered once back", () => deliveries(ctx, "ci")[0]?.status === "delivered");
    expect(back.received.length).toBe(1);
  });

  it("times a slow receiver out and retries", async () => {
    const r = receiver();
    stops.push(() => r.server.stop(true));
    const { wh, ctx } = await setup({ timeout_seconds: 1 });
    webhooks.createWebhook(ctx, { name: "ci", url: r.url, repository_patterns: ["*"] });
    let slow = true;
    r.respond(async () => {
      if (slow) {
        slow = false;
        await Bun.sleep(2_500);
      }
      return new Response("ok");
    });
    webhooks.testWebhook(ctx, "ci");
    wh.dispatcher.start();
    const done = await waitFor("delivered after a timeout", () => {
      const head = deliveries(ctx, "ci")[0];
      return head?.status === "delivered" ? head : undefined;
    });
    expect(done.attempts).toBe(2);
  });

  it("reads at most a few KiB of a huge answer", async () => {
    const r = receiver();
    stops.push(() => r.server.stop(true));
    const { wh, ctx } = await setup();
    webhooks.createWebhook(ctx, { name: "ci", url: r.url, repository_patterns: ["*"] });
    // 64 MiB, streamed: reading it all would take long and hold it in memory.
    r.respond(
      () =>
        new Response(
          new ReadableStream({
            pull(controller) {
              controller.enqueue(new Uint8Array(1 << 20).fill(0x41));
            },
          }),
        ),
    );
    webhooks.testWebhook(ctx, "ci");
    wh.dispatcher.start();
    const done = await waitFor("delivered", () => {
      const head = deliveries(ctx, "ci")[0];
      return head?.status === "delivered" ? head : undefined;
    });
    expect(done.response_excerpt?.length).toBe(256);
  });

  it("never follows a redirect: a 302 is a failed attempt, retried", async () => {
    const target = receiver();
    stops.push(() => target.server.stop(true));
    const r = receiver();
    stops.push(() => r.server.stop(true));
    const { wh, ctx } = await setup({ max_attempts: 2 });
    webhooks.createWebhook(ctx, { name: "ci", url: r.url, repository_patterns: ["*"] });
    r.respond(() => new Response(null, { status: 302, headers: { location: target.url } }));
    webhooks.testWebhook(ctx, "ci");
    wh.dispatcher.start();
    const done = await waitFor("failed after 2 attempts", () => {
      const head = deliveries(ctx, "ci")[0];
      return head?.status === "failed" ? head : undefined;
    });
    expect(done.attempts).toBe(2);
    expect(done.response_status).toBe(302);
    expect(done.last_error).toContain("redirect 302");
    expect(target.received.length).toBe(0);
    expect(r.received.length).toBe(2);
  });

  it("delivers in order per webhook, none twice, and moves on after max_attempts", async () => {
    const r = receiver();
    stops.push(() => r.server.stop(true));
    const { wh, ctx, db } = await setup({ max_attempts: 3 });
    webhooks.createWebhook(ctx, {
      name: "ordered",
      url: `${r.url}?w=ordered`,
      repository_patterns: ["team/*"],
    });
    webhooks.createWebhook(ctx, {
      name: "doomed",
      url: `${r.url}?w=doomed`,
      repository_patterns: ["team/*"],
    });
    const seen = new Map<string, number>();
    r.respond((request, entry) => {
      const w = new URL(request.url).searchParams.get("w");
      const id = JSON.parse(entry.body).id as string;
      if (w === "doomed" && id === "evt-0") return new Response("no", { status: 500 });
      // The first two tries of evt-3 fail: evt-4.. must wait behind it.
      const key = `${w}:${id}`;
      const tries = (seen.get(key) ?? 0) + 1;
      seen.set(key, tries);
      if (id === "evt-3" && tries <= 2) return new Response("later", { status: 503 });
      return new Response("ok");
    });
    db.transaction(() =>
      wh.sink(
        db,
        Array.from({ length: 20 }, (_, i) => change(i)),
      ),
    )();
    wh.dispatcher.start();
    await waitFor(
      "all delivered",
      () =>
        deliveries(ctx, "ordered").filter((d) => d.status === "delivered").length === 20 &&
        deliveries(ctx, "doomed").filter((d) => d.status !== "pending").length === 20,
      20_000,
    );
    const order = (w: string) =>
      r.received
        .map((x) => ({
          body: JSON.parse(x.body) as { id: string },
          delivery: x.headers.get("x-regauth-delivery"),
        }))
        .filter((x) => deliveries(ctx, w).some((d) => String(d.id) === x.delivery))
        .map((x) => x.body.id);
    const expected = Array.from({ length: 20 }, (_, i) => `evt-${i}`);
    // In order, and each one once except the retried evt-3.
    expect(order("ordered")).toEqual([...expected.slice(0, 3), "evt-3", "evt-3", ...expected.slice(3)]);
    const doomed = deliveries(ctx, "doomed");
    expect(doomed.find((d) => d.event_id === "evt-0")).toMatchObject({ status: "failed", attempts: 3 });
    expect(doomed.filter((d) => d.status === "delivered").length).toBe(19);
    expect(order("doomed")).toEqual([
      "evt-0",
      "evt-0",
      "evt-0",
      ...expected.slice(1, 3),
      "evt-3",
      "evt-3",
      ...expected.slice(3),
    ]);
  });

  it("a name that resolves to loopback is refused unless allowed; when allowed, the checked address is the one connected to", async () => {
    const r = receiver();
    stops.push(() => r.server.stop(true));
    const refused = await setup({ allow_private_networks: [] }, { resolve: async () => ["127.0.0.1"] });
    webhooks.createWebhook(refused.ctx, {
      name: "rebind",
      url: `http://hooks.example.com:${r.server.port}/hook`,
      repository_patterns: ["*"],
    });
    webhooks.testWebhook(refused.ctx, "rebind");
    refused.wh.dispatcher.start();
    const head = await waitFor("refused", () => {
      const d = deliveries(refused.ctx, "rebind")[0];
      return d?.status === "failed" ? d : undefined;
    });
    expect(head.attempts).toBe(1);
    expect(head.last_error).toContain("resolves to 127.0.0.1");
    expect(head.last_error).toContain("loopback");
    expect(r.received.length).toBe(0);

    const allowed = await setup({}, { resolve: async () => ["127.0.0.1"] });
    webhooks.createWebhook(allowed.ctx, {
      name: "pinned",
      url: `http://hooks.example.com:${r.server.port}/hook`,
      repository_patterns: ["*"],
    });
    webhooks.testWebhook(allowed.ctx, "pinned");
    allowed.wh.dispatcher.start();
    await waitFor("delivered", () => r.received.length === 1);
    expect(r.received[0]?.headers.get("host")).toBe(`hooks.example.com:${r.server.port}`);
  });

  it("a name with two answers: when the first cannot be reached, the next one is tried in the same attempt", async () => {
    const r = receiver();
    // The receiver listens on 127.0.0.1 only: ::1 is refused (or has no route), 127.0.0.1 answers.
    const { ctx, wh } = await setup(
      { allow_private_networks: ["127.0.0.0/8", "::1/128"] },
      { resolve: async () => ["::1", "127.0.0.1"] },
    );
    webhooks.createWebhook(ctx, {
      name: "dual",
      url: `http://dual.example.com:${r.server.port}/hook`,
      repository_patterns: ["*"],
    });
    webhooks.testWebhook(ctx, "dual");
    wh.dispatcher.start();
    const delivered = await waitFor("delivered", () => {
      const d = deliveries(ctx, "dual")[0];
      return d?.status === "delivered" ? d : undefined;
    });
    expect(delivered.attempts).toBe(1);
    expect(r.received.length).toBe(1);
  });

  it.each([
    ["2002:7f00:1::", "6to4"],
    ["64:ff9b:1::a9fe:a9fe", "local-use NAT64"],
    ["2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo"],
  ])(
    "a name whose AAAA answer is %s (%s, IPv4 inside IPv6) is refused, never connected to",
    async (address, rule) => {
      const r = receiver();
      stops.push(() => r.server.stop(true));
      const { ctx, wh } = await setup({ allow_private_networks: [] }, { resolve: async () => [address] });
      webhooks.createWebhook(ctx, {
        name: "tunnel",
        url: "http://hooks.example.com/hook",
        repository_patterns: ["*"],
      });
      webhooks.testWebhook(ctx, "tunnel");
      wh.dispatcher.start();
      const head = await waitFor("refused", () => {
        const d = deliveries(ctx, "tunnel")[0];
        return d?.status === "failed" ? d : undefined;
      });
      expect(head.attempts).toBe(1);
      expect(head.last_error).toContain(`resolves to ${address}`);
      expect(head.last_error).toContain(rule);
    },
  );

  it("an event id with control or non-ASCII characters is delivered, percent-encoded in X-Regauth-Event-Id (no header injection, no failing for ever)", async () => {
    const r = receiver();
    stops.push(() => r.server.stop(true));
    const { wh, ctx, db } = await setup();
    webhooks.createWebhook(ctx, { name: "ci", url: r.url, repository_patterns: ["*"] });
    const hostile = { ...change(1), eventId: "evt\r\nX-Injected: 1\u00e9\u2603" };
    const loneSurrogate = { ...change(2), eventId: "evt-\ud800-100%" };
    db.transaction(() => wh.sink(db, [hostile, loneSurrogate]))();
    wh.dispatcher.start();
    await waitFor("delivered", () => r.received.length === 2);
    expect(r.received[1]?.headers.get("x-regauth-event-id")).toBe("evt-%EF%BF%BD-100%25");
    const headers = r.received[0]?.headers as Headers;
    expect(headers.get("x-injected")).toBeNull();
    expect(headers.get("x-regauth-event-id")).toBe("evt%0D%0AX-Injected: 1%C3%A9%E2%98%83");
    expect(JSON.parse(r.received[0]?.body ?? "{}").id).toBe(hostile.eventId);
    expect(deliveries(ctx, "ci").map((d) => d.status)).toEqual(["delivered", "delivered"]);
  });

  it("https too connects to the checked address (DNS rebinding), with the name for SNI, the certificate check and Host", async () => {
    const { cert, key } = hooksCertificate();
    const received: Headers[] = [];
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      tls: { serverName: "hooks.test", cert, key },
      fetch(request) {
        received.push(request.headers);
        return new Response("ok");
      },
    });
    stops.push(() => server.stop(true));
    const targets: string[] = [];
    const ca = cert;
    // The test's CA, as the system's would be; the name resolves to loopback (allowed here)
    // only when the dispatcher asks: a second lookup by fetch would not find hooks.test at all.
    const trustingFetch = ((input: string, init: RequestInit & { tls?: Record<string, unknown> }) => {
      targets.push(String(input));
      return fetch(input, { ...init, tls: { ...init.tls, ca } } as RequestInit);
    }) as typeof fetch;
    const { wh, ctx } = await setup({}, { resolve: async () => ["127.0.0.1"], fetch: trustingFetch });
    webhooks.createWebhook(ctx, {
      name: "tls",
      url: `https://hooks.test:${server.port}/hook`,
      repository_patterns: ["*"],
    });
    webhooks.testWebhook(ctx, "tls");
    wh.dispatcher.start();
    const head = await waitFor("finished", () => {
      const d = deliveries(ctx, "tls")[0];
      return d && d.attempts > 0 && d.status !== "pending" ? d : d?.last_error ? d : undefined;
    });
    expect(head.last_error).toBeNull();
    expect(head.status).toBe("delivered");
    expect(targets[0]).toBe(`https://127.0.0.1:${server.port}/hook`);
    expect(received[0]?.get("host")).toBe(`hooks.test:${server.port}`);
  });

  it("a failed attempt's error, in the history and the log, does not repeat the URL (its path or query may be the receiver's token)", async () => {
    // A trusted certificate for another name: Bun's TLS error names the URL it fetched.
    const tls = hooksCertificate();
    const server = Bun.serve({ hostname: "127.0.0.1", port: 0, tls, fetch: () => new Response("ok") });
    const trustingFetch = ((input: string, init: RequestInit) =>
      fetch(input, { ...init, tls: { ca: tls.cert } } as RequestInit)) as typeof fetch;
    stops.push(() => server.stop(true));
    const lines: string[] = [];
    const restore = log.capture(lines);
    stops.push(restore);
    const { wh, ctx } = await setup({ max_attempts: 1 }, { fetch: trustingFetch });
    webhooks.createWebhook(ctx, {
      name: "chat",
      url: `https://127.0.0.1:${server.port}/api/webhooks/123/TOKEN-IN-PATH?key=TOKEN-IN-QUERY`,
      repository_patterns: ["*"],
    });
    webhooks.testWebhook(ctx, "chat");
    wh.dispatcher.start();
    const head = await waitFor("failed", () => {
      const d = deliveries(ctx, "chat")[0];
      return d?.status === "failed" ? d : undefined;
    });
    expect(head.last_error ?? "").not.toBe("");
    expect(head.last_error).not.toContain("TOKEN-IN");
    expect(head.last_error).not.toContain("verbose");
    await waitFor("logged", () => lines.some((line) => line.includes("webhook delivery failed")));
    expect(lines.join("\n")).not.toContain("TOKEN-IN");
  });

  it("a DNS lookup that never answers is bounded by timeout_seconds too (the slot is freed, stop() returns)", async () => {
    const { wh, ctx } = await setup({ max_attempts: 1 }, { resolve: () => new Promise<string[]>(() => {}) });
    webhooks.createWebhook(ctx, {
      name: "slowdns",
      url: "https://hooks.example.com/",
      repository_patterns: ["*"],
    });
    webhooks.testWebhook(ctx, "slowdns");
    const started = Date.now();
    wh.dispatcher.start();
    const head = await waitFor(
      "failed",
      () => {
        const d = deliveries(ctx, "slowdns")[0];
        return d?.status === "failed" ? d : undefined;
      },
      4_000,
    );
    expect(head.last_error).toContain("hooks.example.com");
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it("history: false forgets a delivery once done; history_limit keeps the newest", async () => {
    const r = receiver();
    stops.push(() => r.server.stop(true));
    const off = await setup({ history: false });
    webhooks.createWebhook(off.ctx, { name: "ci", url: r.url, repository_patterns: ["*"] });
    webhooks.testWebhook(off.ctx, "ci");
    off.wh.dispatcher.start();
    await waitFor("delivered", () => r.received.length === 1);
    await waitFor("forgotten", () => deliveries(off.ctx, "ci").length === 0);

    const limited = await setup({ history_limit: 3 });
    webhooks.createWebhook(limited.ctx, { name: "ci", url: r.url, repository_patterns: ["*"] });
    for (let i = 0; i < 6; i++) webhooks.testWebhook(limited.ctx, "ci");
    limited.wh.dispatcher.start();
    await waitFor("delivered", () => r.received.length === 7);
    await waitFor("pruned to 3", () => deliveries(limited.ctx, "ci").length === 3);
  });

  it("webhooks.enabled: false queues and sends nothing, and says so", async () => {
    const { wh, ctx, db } = await setup({ enabled: false });
    const created = webhooks.createWebhook(ctx, {
      name: "ci",
      url: "https://hooks.example.com/",
      repository_patterns: ["*"],
    });
    expect(created.state).toBe("switched-off");
    db.transaction(() => wh.sink(db, [change(1)]))();
    expect(deliveries(ctx, "ci")).toEqual([]);
    expect(() => webhooks.testWebhook(ctx, "ci")).toThrow("webhooks.enabled: false");
  });

  it("redeliver queues a past delivery again, with the same body, behind the pending ones", async () => {
    const r = receiver();
    stops.push(() => r.server.stop(true));
    const { wh, ctx } = await setup();
    webhooks.createWebhook(ctx, { name: "ci", url: r.url, repository_patterns: ["*"] });
    const first = webhooks.testWebhook(ctx, "ci");
    wh.dispatcher.start();
    await waitFor("delivered", () => deliveries(ctx, "ci")[0]?.status === "delivered");
    const again = webhooks.redeliver(ctx, first.id);
    expect(again.redelivery_of).toBe(first.id);
    expect(again.event_id).toBe(first.event_id);
    await waitFor("redelivered", () => r.received.length === 2);
    expect(r.received[1]?.body).toBe(r.received[0]?.body);
  });
});

describe("two dispatchers on one database (two serve on one data directory)", () => {
  it("an attempt is claimed: a second dispatcher that read the same head does not send it too", async () => {
    const { ctx, db } = await setup();
    webhooks.createWebhook(ctx, {
      name: "ci",
      url: "https://hooks.example.com/",
      repository_patterns: ["*"],
    });
    const queued = webhooks.testWebhook(ctx, "ci");
    const now = Date.now();
    expect(beginAttempt(db, queued.id, now, now + 60_000)).toBe(true);
    // The other process read the head before this claim; its claim must fail.
    expect(beginAttempt(db, queued.id, now, now + 60_000)).toBe(false);
    expect(deliveries(ctx, "ci")[0]?.attempts).toBe(1);
  });

  it("both running: every delivery arrives once, in order", async () => {
    const r = receiver();
    stops.push(() => r.server.stop(true));
    const { wh, ctx, db, dataDir } = await setup();
    webhooks.createWebhook(ctx, { name: "ci", url: r.url, repository_patterns: ["*"] });
    db.transaction(() =>
      wh.sink(
        db,
        Array.from({ length: 30 }, (_, i) => change(i)),
      ),
    )();
    const otherDb = openDatabase(databasePath(dataDir));
    const other = new WebhookDispatcher(otherDb, {
      timeoutMs: 1000,
      maxAttempts: 3,
      backoff: { baseMs: 20, maxMs: 100 },
      keepHistory: true,
      historyLimit: 100,
      allowed: wh.services.allowed,
      userAgent: "other",
      secretOf: () => "whsec_other-process",
      pollMs: 1,
    });
    stops.push(async () => {
      await other.stop();
      otherDb.close();
    });
    other.start();
    wh.dispatcher.start();
    await waitFor("all delivered", () => deliveries(ctx, "ci").every((d) => d.status === "delivered"));
    const ids = r.received.map((x) => JSON.parse(x.body).id);
    expect(ids).toEqual(Array.from({ length: 30 }, (_, i) => `evt-${i}`));
  });
});

describe("a tarpit does not starve the others", () => {
  it("retries to receivers that never answer leave room for first attempts: a healthy webhook is served at once", async () => {
    // 16 webhooks (a namespace administrator may make them) to a receiver that accepts the
    // connection and never answers; each already failed once and is due for a retry.
    const tarpit = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    stops.push(() => tarpit.stop(true));
    const r = receiver();
    stops.push(() => r.server.stop(true));
    const { wh, ctx, db } = await setup({ timeout_seconds: 3 });
    for (let i = 0; i < 16; i++) {
      webhooks.createWebhook(ctx, {
        name: `tarpit-${i}`,
        url: `http://127.0.0.1:${tarpit.port}/`,
        repository_patterns: ["evil/*"],
      });
      webhooks.testWebhook(ctx, `tarpit-${i}`);
    }
    db.run("UPDATE webhook_deliveries SET attempts = 1");
    webhooks.createWebhook(ctx, { name: "healthy", url: r.url, repository_patterns: ["*"] });
    wh.dispatcher.start();
    await Bun.sleep(100); // every slot it may give to retries is taken by now
    const queuedAt = Date.now();
    webhooks.testWebhook(ctx, "healthy");
    await waitFor("the healthy delivery", () => r.received.length === 1, 10_000);
    expect(Date.now() - queuedAt).toBeLessThan(1_500);
  });
});

describe("a bounded queue (webhooks.max_pending)", () => {
  function pending(ctx: ManagementContext, name: string) {
    return deliveries(ctx, name)
      .filter((d) => d.status === "pending")
      .map((d) => d.event_id)
      .reverse();
  }

  it("a receiver down for days keeps at most max_pending queued per webhook: the head stays, the oldest after it are failed with the reason", async () => {
    const r = receiver();
    const deadUrl = r.url;
    r.server.stop(true);
    const { wh, ctx, db } = await setup(
      { max_pending: 5, retry_base_seconds: 3600, retry_max_seconds: 3600 },
      { capCheckMs: 10 },
    );
    webhooks.createWebhook(ctx, { name: "down", url: deadUrl, repository_patterns: ["*"] });
    webhooks.createWebhook(ctx, { name: "other", url: deadUrl, repository_patterns: ["other/*"] });
    db.transaction(() =>
      wh.sink(
        db,
        Array.from({ length: 20 }, (_, i) => change(i)),
      ),
    )();
    wh.dispatcher.start();
    await waitFor("capped", () => pending(ctx, "down").length === 5);
    expect(pending(ctx, "down")).toEqual(["evt-0", "evt-16", "evt-17", "evt-18", "evt-19"]);
    const dropped = deliveries(ctx, "down").filter((d) => d.status === "failed");
    expect(dropped.length).toBeGreaterThan(0);
    for (const d of dropped) expect(d.last_error).toContain("webhooks.max_pending");
    // Another webhook's queue is its own.
    db.transaction(() => wh.sink(db, [change(100, "other/app")]))();
    await Bun.sleep(50);
    expect(pending(ctx, "other")).toEqual(["evt-100"]);
  });

  it("test and redeliver answer 409 once the webhook's queue is full, not one row more", async () => {
    const { ctx, db } = await setup({ max_pending: 2 });
    webhooks.createWebhook(ctx, {
      name: "ci",
      url: "https://hooks.example.com/",
      repository_patterns: ["*"],
    });
    const first = webhooks.testWebhook(ctx, "ci");
    webhooks.testWebhook(ctx, "ci");
    expect(() => webhooks.testWebhook(ctx, "ci")).toThrow("webhooks.max_pending");
    db.run("UPDATE webhook_deliveries SET status = 'failed' WHERE id = ?", [first.id]);
    webhooks.redeliver(ctx, first.id);
    expect(() => webhooks.redeliver(ctx, first.id)).toThrow("webhooks.max_pending");
    expect(pending(ctx, "ci").length).toBe(2);
  });
});

describe("faults", () => {
  it("a delivery in flight at a crash is retried by the next dispatcher (the attempt was counted first)", async () => {
    const r = receiver();
    stops.push(() => r.server.stop(true));
    const { wh, ctx, db } = await setup();
    webhooks.createWebhook(ctx, { name: "ci", url: r.url, repository_patterns: ["*"] });
    const queued = webhooks.testWebhook(ctx, "ci");
    // As the dispatcher does before sending; then the process "dies" before recording an outcome.
    db.run(
      "UPDATE webhook_deliveries SET attempts = 1, last_attempt_at_ms = ?, next_attempt_at_ms = ? WHERE id = ?",
      [Date.now(), Date.now() + 300, queued.id],
    );
    wh.dispatcher.start();
    await Bun.sleep(100);
    expect(r.received.length).toBe(0); // not before the crashed attempt's deadline
    const done = await waitFor("retried after the crash", () => {
      const head = deliveries(ctx, "ci")[0];
      return head?.status === "delivered" ? head : undefined;
    });
    expect(done.attempts).toBe(2);
    expect(r.received.length).toBe(1);
  });

  it("a store fault does not crash: the dispatcher logs, backs off and goes on", async () => {
    const r = receiver();
    stops.push(() => r.server.stop(true));
    const { wh, ctx, db } = await setup();
    webhooks.createWebhook(ctx, { name: "ci", url: r.url, repository_patterns: ["*"] });
    // The queue's table cannot be read for a while (a damaged or foreign schema, a locked file).
    db.run("ALTER TABLE webhook_deliveries RENAME TO webhook_deliveries_away");
    wh.dispatcher.start();
    await Bun.sleep(200);
    db.run("ALTER TABLE webhook_deliveries_away RENAME TO webhook_deliveries");
    webhooks.testWebhook(ctx, "ci");
    await waitFor("delivered after the fault", () => r.received.length === 1, 15_000);
  });
});

describe("load", () => {
  it("a burst of 1,000 changes is delivered completely, in order, none twice", async () => {
    const r = receiver();
    stops.push(() => r.server.stop(true));
    const { wh, ctx, db } = await setup();
    webhooks.createWebhook(ctx, { name: "burst", url: r.url, repository_patterns: ["team/*"] });
    const changes = Array.from({ length: 1000 }, (_, i) => change(i));
    const queuedAt = performance.now();
    db.transaction(() => wh.sink(db, changes))();
    const sinkMs = performance.now() - queuedAt;
    wh.dispatcher.start();
    await waitFor("1,000 deliveries", () => r.received.length >= 1000, 60_000);
    const deliveredMs = performance.now() - queuedAt;
    await Bun.sleep(200);
    const ids = r.received.map((x) => JSON.parse(x.body).id as string);
    expect(ids).toEqual(changes.map((c) => c.eventId));
    console.log(
      `sink: 1,000 changes queued in ${sinkMs.toFixed(1)} ms; delivered in ${deliveredMs.toFixed(0)} ms`,
    );
  }, 90_000);

  it("a 2xx whose body never ends is delivered once the timeout cuts the read", async () => {
    const r = receiver();
    stops.push(() => r.server.stop(true));
    const { wh, ctx } = await setup({ timeout_seconds: 1 });
    webhooks.createWebhook(ctx, { name: "trickle", url: r.url, repository_patterns: ["*"] });
    r.respond(() => {
      let sent = false;
      return new Response(
        new ReadableStream({
          async pull(controller) {
            if (sent) return Bun.sleep(10_000);
            sent = true;
            controller.enqueue(new TextEncoder().encode("accepted, and then nothing"));
          },
        }),
      );
    });
    webhooks.testWebhook(ctx, "trickle");
    wh.dispatcher.start();
    const done = await waitFor("delivered", () => {
      const head = deliveries(ctx, "trickle")[0];
      return head && head.status !== "pending" ? head : undefined;
    });
    expect(done.status).toBe("delivered");
    expect(done.attempts).toBe(1);
    expect(done.response_excerpt).toBe("accepted, and then nothing");
  });
});

describe("rotating the secret", () => {
  it("the new secret signs the next delivery; the old one no longer verifies", async () => {
    const r = receiver();
    stops.push(() => r.server.stop(true));
    const { wh, ctx } = await setup();
    const created = webhooks.createWebhook(ctx, { name: "ci", url: r.url, repository_patterns: ["*"] });
    const rotated = webhooks.rotateSecret(ctx, "ci");
    expect(rotated.secret).not.toBe(created.secret);
    webhooks.testWebhook(ctx, "ci");
    wh.dispatcher.start();
    const got = await waitFor("the delivery", () => r.received[0]);
    const signature = got.headers.get("x-regauth-signature") ?? "";
    const now = Math.floor(Date.now() / 1000);
    expect(verifySignature(rotated.secret, signature, got.body, now)).toBe(true);
    expect(verifySignature(created.secret, signature, got.body, now)).toBe(false);
  });
});
