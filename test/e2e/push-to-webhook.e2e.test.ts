/**
 * issue 11 "Tests that must exist", the whole chain: Debian's docker-registry (2.8) sends its
 * notifications to the compiled binary (the block `regauth registry-config` prints); a skopeo
 * push reaches a real HTTP receiver as a correctly signed `repository.created` and `tag.pushed`;
 * with the receiver down the delivery is retried and arrives once it is back, across a regauth
 * restart; a burst of 1,000 pushes' events is indexed and delivered, every one once.
 */
import { Database } from "bun:sqlite";
import { afterAll, describe, expect, it } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { verifySignature } from "../../src/webhooks/signing.ts";
import { hashPassword } from "../helpers.ts";
import {
  BINARY,
  freePort,
  makeOciImage,
  type Regauth,
  run,
  skopeoPush,
  startRegauth,
  startRegistry,
} from "./harness.ts";
import { manifestPushEnvelope } from "./notification-fixtures.ts";

// A fixed port, so that the registry's notification endpoint still points at regauth after the restart.
const regauthPort = await freePort();
const CONFIG = `
server: {addr: "127.0.0.1:${regauthPort}"}
token: {issuer: e2e-issuer, services: [registry]}
users:
  alice:
    password: "${hashPassword("alice-secret")}"
acl:
  - match: {account: alice}
    actions: ["*"]
webhooks:
  allow_private_networks: [127.0.0.0/8]
  timeout_seconds: 2
  retry_base_seconds: 1
  retry_max_seconds: 2
`;

interface Delivery {
  event: string;
  signature: string;
  body: string;
  payload: Record<string, unknown>;
}

const received: Delivery[] = [];
const receiverPort = await freePort();
function startReceiver() {
  return Bun.serve({
    hostname: "127.0.0.1",
    port: receiverPort,
    async fetch(request) {
      const body = await request.text();
      received.push({
        event: request.headers.get("x-regauth-event") ?? "",
        signature: request.headers.get("x-regauth-signature") ?? "",
        body,
        payload: JSON.parse(body) as Record<string, unknown>,
      });
      return new Response("ok");
    },
  });
}

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(100);
  }
}

let regauth: Regauth = await startRegauth({ configYaml: CONFIG });
const adminPassword = (await regauth.stdout.waitFor(/^password: (\S+)$/m))[1] as string;
const admin = `Basic ${btoa(`admin:${adminPassword}`)}`;
const printed = await run([
  BINARY,
  "registry-config",
  "--config",
  join(regauth.dir, "auth_config.yml"),
  "--data-dir",
  regauth.dataDir,
]);
const notificationSecret = readFileSync(join(regauth.dataDir, "notifications.secret"), "utf8").trim();
const registry = await startRegistry({
  realm: `${regauth.url}/auth`,
  issuer: "e2e-issuer",
  service: "registry",
  certificatePath: regauth.certificatePath,
  notifications: { yaml: printed.stdout.slice(printed.stdout.indexOf("\nnotifications:") + 1) },
});
let receiver = startReceiver();
afterAll(() => receiver.stop(true));

async function api(method: string, path: string, body?: unknown) {
  const res = await fetch(`${regauth.url}/api/v1${path}`, {
    method,
    headers: { authorization: admin, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

function manifestDigest(ociDir: string): string {
  const index = JSON.parse(readFileSync(join(ociDir, "index.json"), "utf8")) as {
    manifests: { digest: string }[];
  };
  return index.manifests[0]?.digest as string;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);
let webhookSecret = "";

describe("a push through the real registry reaches a webhook", () => {
  it("a webhook made through the API gets a signed repository.created, then tag.pushed", async () => {
    const created = await api("POST", "/webhooks", {
      name: "ci",
      url: `http://127.0.0.1:${receiverPort}/hook`,
      repository_patterns: ["team/*"],
    });
    expect(created.status).toBe(201);
    webhookSecret = created.json.secret as string;
    expect(webhookSecret).toMatch(/^whsec_/);

    const image = makeOciImage("to the webhook\n");
    const pushed = await skopeoPush(image, `${registry.host}/team/app:v1`, "alice:alice-secret");
    expect(pushed.exitCode, pushed.stderr).toBe(0);
    // Not for this webhook: outside team/*.
    const elsewhere = await skopeoPush(image, `${registry.host}/alice/app:v1`, "alice:alice-secret");
    expect(elsewhere.exitCode, elsewhere.stderr).toBe(0);
    await until("two deliveries", () => (received.length >= 2 ? true : undefined));
    expect(received.map((d) => d.event)).toEqual(["repository.created", "tag.pushed"]);
    for (const delivery of received)
      expect(verifySignature(webhookSecret, delivery.signature, delivery.body, nowSeconds())).toBe(true);
    expect(received[1]?.payload).toMatchObject({
      type: "tag.pushed",
      repository: "team/app",
      tag: "v1",
      digest: manifestDigest(image),
      media_type: "application/vnd.oci.image.manifest.v1+json",
      pusher: "alice",
    });
    // A forged delivery would not verify: another secret, or the body changed.
    expect(
      verifySignature(
        `${webhookSecret}x`,
        received[1]?.signature ?? "",
        received[1]?.body ?? "",
        nowSeconds(),
      ),
    ).toBe(false);
    expect(
      verifySignature(webhookSecret, received[1]?.signature ?? "", `${received[1]?.body} `, nowSeconds()),
    ).toBe(false);
  });

  it("a second push of the repository is a tag.pushed only", async () => {
    received.length = 0;
    const pushed = await skopeoPush(
      makeOciImage("second\n"),
      `${registry.host}/team/app:v2`,
      "alice:alice-secret",
    );
    expect(pushed.exitCode, pushed.stderr).toBe(0);
    await until("the delivery", () => received[0]);
    await Bun.sleep(500);
    expect(received.map((d) => [d.event, d.payload.tag])).toEqual([["tag.pushed", "v2"]]);
  });
});

describe("a burst of 1,000 pushes' events", () => {
  it("is indexed and delivered, every one once, in the order it was applied", async () => {
    await Bun.sleep(500);
    received.length = 0;
    const digest = `sha256:${"cd".repeat(32)}`;
    const event = (i: number) =>
      manifestPushEnvelope({
        id: `burst-${i}`,
        repository: "team/burst",
        tag: `t${i}`,
        digest,
        registryHost: registry.host,
      });
    // Every tenth twice, as the registry retrying a delivery it thought had failed.
    const posts = Array.from({ length: 1000 }, (_, i) => i).flatMap((i) => (i % 10 === 0 ? [i, i] : [i]));
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < posts.length) {
          const res = await fetch(`${regauth.url}/registry/events`, {
            method: "POST",
            headers: {
              "content-type": "application/vnd.docker.distribution.events.v1+json",
              authorization: `Bearer ${notificationSecret}`,
            },
            body: event(posts[next++] as number),
          });
          expect(res.status).toBe(200);
          await res.arrayBuffer();
        }
      }),
    );
    await until("1,001 deliveries", () => (received.length >= 1001 ? true : undefined), 60_000);
    await Bun.sleep(1000);
    const pushedTags = received.filter((d) => d.event === "tag.pushed").map((d) => d.payload.tag as string);
    expect(received.filter((d) => d.event === "repository.created").length).toBe(1);
    expect(pushedTags.length).toBe(1000);
    expect(new Set(pushedTags).size).toBe(1000);
    // In order: the receiver saw them in the order the index applied them (each new tag's row
    // is inserted by the event's transaction, which also queues its delivery).
    const db = new Database(join(regauth.dataDir, "regauth.db"), { readonly: true });
    try {
      const applied = db
        .query<{ tag: string }, []>(
          `SELECT t.tag FROM image_tags t JOIN repositories r ON r.id = t.repository_id
           WHERE r.name = 'team/burst' ORDER BY t.id`,
        )
        .all()
        .map((row) => row.tag);
      expect(applied.length).toBe(1000);
      expect(pushedTags).toEqual(applied);
    } finally {
      db.close();
    }
  }, 120_000);
});

// Last: the restarted regauth belongs to this test and stops when it ends (the harness).
describe("a webhook receiver that is down", () => {
  it("receiver down: retried, and delivered once it is back, across a regauth restart", async () => {
    receiver.stop(true);
    received.length = 0;
    const pushed = await skopeoPush(
      makeOciImage("while down\n"),
      `${registry.host}/team/app:v3`,
      "alice:alice-secret",
    );
    expect(pushed.exitCode, pushed.stderr).toBe(0);
    await until("a failed attempt", async () => {
      const r = await api("GET", "/webhooks/ci/deliveries");
      const head = (r.json.items as Record<string, unknown>[]).find((d) => d.status === "pending");
      return head && (head.attempts as number) >= 1 && head.last_error ? head : undefined;
    });
    await regauth.stop();
    regauth = await startRegauth({ configYaml: CONFIG, dir: regauth.dir });
    receiver = startReceiver();
    await until("the delivery after the restart", () => received[0]);
    await Bun.sleep(1000);
    expect(received.map((d) => [d.event, d.payload.tag])).toEqual([["tag.pushed", "v3"]]);
    expect(
      verifySignature(webhookSecret, received[0]?.signature ?? "", received[0]?.body ?? "", nowSeconds()),
    ).toBe(true);
    // The registry still reaches the restarted regauth.
    const again = await skopeoPush(
      makeOciImage("after restart\n"),
      `${registry.host}/team/app:v4`,
      "alice:alice-secret",
    );
    expect(again.exitCode, again.stderr).toBe(0);
    await until("the next push's delivery", () => (received.length >= 2 ? true : undefined));
    expect(received[1]?.payload.tag).toBe("v4");
  });
});
