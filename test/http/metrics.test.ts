/**
 * Issue 12, item 4: /metrics counters move as tokens are issued and refused; the bearer token is
 * required when set; /healthz and /readyz.
 */
import { Database } from "bun:sqlite";
import { afterEach, describe, expect, it } from "bun:test";
import { PasswordVerifier } from "../../src/authn/password-verifier.ts";
import { ConfigError } from "../../src/errors.ts";
import { prepareConfig } from "../../src/config/load.ts";
import { startMetricsExporter } from "../../src/metrics/exporter.ts";
import { NO_METRICS, useMetrics } from "../../src/metrics/recorder.ts";
import { buildApp, buildIssuer } from "../../src/server.ts";
import { basic, hashPassword, loadTestConfig, makeTempDir, req, testApp } from "../helpers.ts";
import { webhookServices } from "../../src/webhooks/webhooks.ts";

const PASSWORD = "correct horse";
const BEARER = "scrape-token-0123456789abcdef";
const USERS = { alice: { password: hashPassword(PASSWORD) } };
const ACL = [{ match: { account: "alice" }, actions: ["pull"] }];

afterEach(() => useMetrics(NO_METRICS));

async function metricsApp(metrics: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const loaded = await loadTestConfig({ users: USERS, acl: ACL, metrics, ...extra });
  if (!loaded.signingKey) throw new Error("no signing key");
  const exporter = await startMetricsExporter(loaded.config.metrics, "test config");
  const issuer = buildIssuer(loaded, loaded.signingKey, new PasswordVerifier());
  await issuer.failureLatency?.calibrated;
  return buildApp(loaded, issuer, undefined, exporter);
}

type App = Awaited<ReturnType<typeof metricsApp>>;

async function scrape(app: App, token = BEARER): Promise<string> {
  const response = await app.handle(req("/metrics", { headers: { authorization: `Bearer ${token}` } }));
  expect(response.status).toBe(200);
  return response.text();
}

/** The value of one sample, `name{labels}` exactly as exposed; 0 when absent. */
function sample(text: string, series: string): number {
  for (const line of text.split("\n"))
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  return 0;
}

const token = (app: App, creds: string, query = "service=registry&scope=repository:alice/app:pull") =>
  app.handle(req(`/auth?${query}`, { headers: { authorization: creds } }));

describe("/metrics", () => {
  it("is not served when metrics are off (the default)", async () => {
    const { app } = await testApp({ users: USERS, acl: ACL });
    expect((await app.handle(req("/metrics"))).status).toBe(404);
  });

  it("counts tokens issued and refused by reason, cache hits and misses, latency and back-ends", async () => {
    const app = await metricsApp({ enabled: true, bearer_token: BEARER });
    const before = await scrape(app);
    expect(sample(before, "regauth_tokens_issued_total")).toBe(0);
    expect(sample(before, 'regauth_token_requests_refused_total{reason="unauthorized"}')).toBe(0);

    expect((await token(app, basic("alice", PASSWORD))).status).toBe(200);
    expect((await token(app, basic("alice", PASSWORD))).status).toBe(200);
    expect((await token(app, basic("alice", "wrong"))).status).toBe(401);
    expect(
      (await token(app, basic("alice", PASSWORD), "service=registry&scope=repository:Bad Name:pull")).status,
    ).toBe(400);

    const after = await scrape(app);
    expect(sample(after, "regauth_tokens_issued_total")).toBe(2);
    expect(sample(after, 'regauth_token_requests_refused_total{reason="unauthorized"}')).toBe(1);
    expect(sample(after, 'regauth_token_requests_refused_total{reason="bad_request"}')).toBe(1);
    expect(sample(after, "regauth_credential_cache_hits_total")).toBe(1);
    expect(sample(after, "regauth_credential_cache_misses_total")).toBeGreaterThanOrEqual(2);
    expect(sample(after, 'regauth_http_request_duration_seconds_count{route="token",status="200"}')).toBe(2);
    expect(sample(after, 'regauth_http_request_duration_seconds_count{route="token",status="401"}')).toBe(1);
    expect(sample(after, 'regauth_backend_duration_seconds_count{backend="users"}')).toBe(3);
    expect(after).toContain("# TYPE regauth_http_request_duration_seconds histogram");
  });

  it("counts throttled attempts", async () => {
    const app = await metricsApp({ enabled: true });
    let status = 0;
    for (let i = 0; i < 30 && status !== 429; i++)
      status = (await token(app, basic("alice", `guess${i}`))).status;
    expect(status).toBe(429);
    const text = await (await app.handle(req("/metrics"))).text();
    expect(sample(text, "regauth_throttled_attempts_total")).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'regauth_token_requests_refused_total{reason="throttled"}')).toBeGreaterThanOrEqual(
      1,
    );
  });

  it("counts hook errors and their latency", async () => {
    const app = await metricsApp(
      { enabled: true },
      { ext_auth: { command: "/bin/sh", args: ["-c", "exit 7"] }, users: undefined },
    );
    expect((await token(app, basic("bob", "pw"))).status).toBeGreaterThanOrEqual(500);
    const text = await (await app.handle(req("/metrics"))).text();
    expect(sample(text, 'regauth_backend_errors_total{backend="ext_auth"}')).toBe(1);
    expect(sample(text, 'regauth_backend_duration_seconds_count{backend="ext_auth"}')).toBe(1);
  });

  const refusedHeaders: [string, Record<string, string>][] = [
    ["no Authorization", {}],
    ["a wrong token", { authorization: "Bearer scrape-token-0123456789abcdeX" }],
    ["a prefix of the token", { authorization: `Bearer ${BEARER.slice(0, -1)}` }],
    ["the token with more after it", { authorization: `Bearer ${BEARER}x` }],
    ["Basic with the token", { authorization: `Basic ${btoa(`x:${BEARER}`)}` }],
    ["an empty Bearer", { authorization: "Bearer " }],
    ["two tokens", { authorization: `Bearer ${BEARER} ${BEARER}` }],
  ];
  for (const [name, headers] of refusedHeaders) {
    it(`refuses a scrape with ${name} when bearer_token is set`, async () => {
      const app = await metricsApp({ enabled: true, bearer_token: BEARER });
      const response = await app.handle(req("/metrics", { headers }));
      expect(response.status).toBe(401);
      expect(response.headers.get("www-authenticate")).toStartWith("Bearer");
      expect(await response.text()).not.toContain("regauth_tokens_issued_total");
    });
  }

  it("reads the bearer token from bearer_token_file", async () => {
    const file = `${makeTempDir()}/token`;
    await Bun.write(file, `${BEARER}\n`);
    const app = await metricsApp({ enabled: true, bearer_token_file: file });
    expect((await app.handle(req("/metrics"))).status).toBe(401);
    expect(await scrape(app)).toContain("regauth_tokens_issued_total");
  });

  const badSettings: [string, Record<string, unknown>, RegExp][] = [
    ["both forms", { enabled: true, bearer_token: BEARER, bearer_token_file: "/etc/hostname" }, /not both/],
    ["a missing file", { enabled: true, bearer_token_file: "/nonexistent/token" }, /cannot read/],
  ];
  for (const [name, settings, message] of badSettings) {
    it(`refuses ${name} as a config error, at load (check-config) and in the exporter`, async () => {
      // At load for check-config: what serve would refuse (one check, src/metrics/bearer-token.ts).
      const checkConfig = () =>
        prepareConfig({ token: { issuer: "i" }, metrics: settings }, "test config", {
          dataDir: makeTempDir(),
          env: {},
          createFiles: false,
          checkFilesServeReads: true,
        });
      await expect(checkConfig()).rejects.toBeInstanceOf(ConfigError);
      await expect(checkConfig()).rejects.toThrow(message);
      // The exporter checks the same settings itself (a reload hands it a config directly).
      const valid = await loadTestConfig({ metrics: { enabled: true, bearer_token: BEARER } });
      const withBad = { ...valid.config.metrics, bearer_token: undefined, ...settings };
      await expect(startMetricsExporter(withBad, "test config")).rejects.toBeInstanceOf(ConfigError);
      await expect(startMetricsExporter(withBad, "test config")).rejects.toThrow(message);
    });
  }

  it("refuses a short bearer_token at load", async () => {
    await expect(loadTestConfig({ metrics: { enabled: true, bearer_token: "short" } })).rejects.toThrow(
      /metrics\.bearer_token/,
    );
  });
});

describe("/healthz and /readyz", () => {
  it("/healthz is alive and /readyz ready with a usable database", async () => {
    const { app } = await testApp({ users: USERS, acl: ACL });
    expect(await (await app.handle(req("/healthz"))).json()).toEqual({ status: "ok" });
    const ready = await app.handle(req("/readyz"));
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready" });
  });

  it("/readyz is 503 with a JSON reason when the database cannot be read", async () => {
    const loaded = await loadTestConfig({ users: USERS, acl: ACL });
    if (!loaded.signingKey) throw new Error("no signing key");
    const db = new Database(":memory:");
    const issuer = buildIssuer(loaded, loaded.signingKey, new PasswordVerifier());
    const webhooks = {
      services: webhookServices({ config: loaded.config.webhooks, registryHost: null }, null),
    };
    const app = buildApp(loaded, issuer, { db, webhooks } as Parameters<typeof buildApp>[2]);
    const response = await app.handle(req("/readyz"));
    expect(response.status).toBe(503);
    const body = (await response.json()) as { status: string; reason: string };
    expect(body.status).toBe("unavailable");
    expect(body.reason).toContain("the accounts database cannot be read");
    expect((await app.handle(req("/healthz"))).status).toBe(200);
  });
});
