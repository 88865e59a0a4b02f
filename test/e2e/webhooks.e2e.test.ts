/**
 * Outgoing webhooks end to end (issue 11 "Tests that must exist", the webhook part): the
 * compiled binary and a real HTTP receiver (Bun.serve on loopback, allowed through
 * webhooks.allow_private_networks). A webhook made with the CLI; "send a test event" through the
 * API reaches the receiver correctly signed; with the receiver down the delivery is retried, and
 * delivered once it is back, across a regauth restart (the queue is the database).
 *
 * Until the notification receiver exists (another helper's work), the index change is put in the
 * queue by calling the webhook sink from this test on the database directly, as the index will
 * inside its transaction; the registry → receiver → webhook e2e comes with the merge.
 */
import { Database } from "bun:sqlite";
import { describe, expect, it } from "bun:test";
import { join } from "node:path";
import { verifySignature } from "../../src/webhooks/signing.ts";
import { WebhookCache, webhookSink } from "../../src/webhooks/sink.ts";
import { BINARY, freePort, type Regauth, run, startRegauth } from "./harness.ts";

const CONFIG = `server: {addr: "127.0.0.1:{{PORT}}"}
token: {issuer: regauth, expiration: 300, services: [registry]}
webhooks:
  allow_private_networks: [127.0.0.0/8]
  timeout_seconds: 2
  retry_base_seconds: 1
  retry_max_seconds: 2
notifications:
  registry_host: registry.example.com
`;

interface Received {
  headers: Headers;
  body: string;
}

function receiver(port: number, received: Received[]) {
  return Bun.serve({
    hostname: "127.0.0.1",
    port,
    async fetch(request) {
      received.push({ headers: request.headers, body: await request.text() });
      return new Response("thanks");
    },
  });
}

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 20_000,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(100);
  }
}

async function api(regauth: Regauth, auth: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${regauth.url}/api/v1${path}`, {
    method,
    headers: { authorization: auth, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe("webhooks with the compiled binary", async () => {
  let regauth = await startRegauth({ configYaml: CONFIG });
  const password = (await regauth.stdout.waitFor(/^password: (\S+)$/m))[1] as string;
  const admin = `Basic ${btoa(`admin:${password}`)}`;
  const offline = ["--data-dir", regauth.dataDir, "--config", join(regauth.dir, "auth_config.yml")];
  const port = await freePort();
  const received: Received[] = [];
  let server = receiver(port, received);
  let secret = "";

  it("regauth webhook add prints the secret once; a test event arrives correctly signed", async () => {
    const added = await run([
      BINARY,
      "webhook",
      "add",
      "ci",
      `http://127.0.0.1:${port}/hook`,
      "--repositories",
      "team/*",
      "--events",
      "repository.created,tag.pushed",
      ...offline,
    ]);
    expect(added.stderr).toBe("");
    expect(added.exitCode).toBe(0);
    secret = added.stdout.match(/^ {2}(whsec_\S+)$/m)?.[1] ?? "";
    expect(secret).toMatch(/^whsec_/);
    const listed = await run([BINARY, "webhook", "list", ...offline]);
    expect(listed.stdout).toContain("ci");
    expect(listed.stdout).not.toContain("whsec_");

    const test = await api(regauth, admin, "POST", "/webhooks/ci/test", {});
    expect(test.status).toBe(201);
    const got = await waitFor("the test event", () => received[0]);
    expect(
      verifySignature(
        secret,
        got.headers.get("x-regauth-signature") ?? "",
        got.body,
        Math.floor(Date.now() / 1000),
      ),
    ).toBe(true);
    expect(got.headers.get("x-regauth-event")).toBe("webhook.test");
    expect(got.headers.get("user-agent")).toMatch(/^regauth\//);
    expect(JSON.parse(got.body)).toMatchObject({ type: "webhook.test", test: true, id: test.json.event_id });
    const history = await waitFor("the history", async () => {
      const r = await api(regauth, admin, "GET", "/webhooks/ci/deliveries");
      const first = (r.json.items as Record<string, unknown>[])[0];
      return first?.status === "delivered" ? first : undefined;
    });
    expect(history).toMatchObject({ response_status: 200, response_excerpt: "thanks", attempts: 1 });
  });

  it("receiver down: retried, and delivered once it is back, across a regauth restart", async () => {
    server.stop(true);
    received.length = 0;
    // What the index will do inside its transaction (see the file's comment).
    const db = new Database(join(regauth.dataDir, "regauth.db"));
    db.run("PRAGMA busy_timeout = 5000");
    const sink = webhookSink({
      enabled: true,
      registryHost: "registry.example.com",
      cache: new WebhookCache(),
    });
    db.transaction(() =>
      sink(db, [
        {
          type: "tag.pushed",
          eventId: "e2e-push-1",
          repository: "team/app",
          tag: "v1",
          digest: `sha256:${"a".repeat(64)}`,
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          sizeBytes: 527,
          pusher: "alice",
          pusherAddress: "127.0.0.1",
          atUnixMs: Date.now(),
          source: "notification",
        },
        // Not for this webhook: another namespace, and an event it did not ask for.
        {
          type: "tag.pushed",
          eventId: "e2e-other",
          repository: "other/app",
          tag: "v1",
          pusher: null,
          pusherAddress: null,
          atUnixMs: Date.now(),
          source: "notification",
        },
        {
          type: "tag.deleted",
          eventId: "e2e-deleted",
          repository: "team/app",
          tag: "v0",
          pusher: null,
          pusherAddress: null,
          atUnixMs: Date.now(),
          source: "notification",
        },
      ]),
    )();
    db.close();
    const failing = await waitFor("a failed attempt", async () => {
      const r = await api(regauth, admin, "GET", "/webhooks/ci/deliveries");
      const first = (r.json.items as Record<string, unknown>[])[0];
      return first?.event_id === "e2e-push-1" && (first.attempts as number) >= 1 && first.status === "pending"
        ? first
        : undefined;
    });
    expect(failing.last_error).toBeTruthy();

    await regauth.stop();
    server = receiver(port, received);
    regauth = await startRegauth({ configYaml: CONFIG, dir: regauth.dir });
    const got = await waitFor("the delivery after the restart", () => received[0]);
    expect(
      verifySignature(
        secret,
        got.headers.get("x-regauth-signature") ?? "",
        got.body,
        Math.floor(Date.now() / 1000),
      ),
    ).toBe(true);
    expect(JSON.parse(got.body)).toMatchObject({
      id: "e2e-push-1",
      type: "tag.pushed",
      test: false,
      repository: "team/app",
      tag: "v1",
      size_bytes: 527,
      pusher: "alice",
      pull_command: "docker pull registry.example.com/team/app:v1",
    });
    const done = await waitFor("delivered in the history", async () => {
      const r = await api(regauth, admin, "GET", "/webhooks/ci/deliveries");
      const first = (r.json.items as Record<string, unknown>[])[0];
      return first?.status === "delivered" ? first : undefined;
    });
    expect((done.attempts as number) >= 2).toBe(true);
    await Bun.sleep(1_500);
    expect(received.length).toBe(1);
    const cli = await run([BINARY, "webhook", "deliveries", "ci", ...offline]);
    expect(cli.exitCode).toBe(0);
    expect(cli.stdout).toContain("e2e-push-1");
    expect(cli.stdout).toContain("delivered");
    await regauth.stop();
    server.stop(true);
  });
});
