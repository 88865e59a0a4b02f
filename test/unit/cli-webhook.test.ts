/**
 * `regauth webhook ...` over a fake ManagementClient: arguments, the call each makes, what it
 * prints; and the same command over both real back-ends (offline on a data directory, remote on
 * the in-process API) gives the same views.
 */
import { describe, expect, it } from "bun:test";
import { NotFound } from "../../src/errors.ts";
import { main } from "../../src/main.ts";
import type { CreatedWebhookView, DeliveryView, WebhookView } from "../../src/cli/views.ts";
import { fakeClient, fakeIo } from "../cli-fakes.ts";

const WEBHOOK: WebhookView = {
  id: 3,
  name: "ci",
  url: "https://***@hooks.example.com/x",
  repository_patterns: ["team/*"],
  events: ["tag.pushed"],
  enabled: true,
  state: "active",
  declared: false,
  created_by: "root",
  created_at: "2026-12-01T10:00:00Z",
  updated_at: "2026-12-01T10:00:00Z",
};
const CREATED: CreatedWebhookView = {
  ...WEBHOOK,
  secret: "whsec_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
};
const DELIVERY: DeliveryView = {
  id: 9,
  webhook: "ci",
  event_id: "evt-1",
  type: "tag.pushed",
  test: false,
  status: "failed",
  attempts: 12,
  created_at: "2026-12-01T10:00:00Z",
  next_attempt_at: null,
  last_attempt_at: "2026-12-01T11:00:00Z",
  response_status: 500,
  latency_ms: 12,
  last_error: "HTTP 500\u001b[31m",
  response_excerpt: "boom",
  redelivery_of: null,
  payload: {
    id: "evt-1",
    type: "tag.pushed",
    test: false,
    occurred_at: "2026-12-01T10:00:00.000Z",
    repository: "team/app",
    tag: "v1",
    digest: null,
    media_type: null,
    size_bytes: null,
    pusher: null,
    pusher_address: null,
    source: "notification",
    pull_command: null,
  },
};

const answers = {
  listWebhooks: [WEBHOOK],
  getWebhook: WEBHOOK,
  createWebhook: CREATED,
  updateWebhook: { ...WEBHOOK, enabled: false, state: "disabled" },
  deleteWebhook: WEBHOOK,
  testWebhook: { ...DELIVERY, status: "pending", attempts: 0, type: "webhook.test" },
  listDeliveries: { items: [DELIVERY], next_cursor: null },
  redeliver: { ...DELIVERY, id: 10, status: "pending", redelivery_of: 9 },
};

describe("regauth webhook", () => {
  it.each([
    [["webhook"], 2, null, /which subcommand/],
    [["webhook", "nope"], 2, null, /unknown subcommand/],
    [["webhook", "add", "ci"], 2, null, /missing URL/],
    [["webhook", "add", "ci", "https://h.example.com/", "--events", "image.pulled"], 2, null, /--events/],
    [["webhook", "redeliver", "abc"], 2, null, /DELIVERY_ID must be a number/],
    [["webhook", "deliveries", "ci", "--limit", "0"], 2, null, /--limit/],
  ])("%j exits %i", async (argv, exit, _call, err) => {
    const { client } = fakeClient(answers);
    const io = fakeIo(client);
    expect(await main(argv, io)).toBe(exit);
    expect(io.stderr).toMatch(err);
  });

  it("add sends the patterns and events and prints the secret once", async () => {
    const { client, calls } = fakeClient(answers);
    const io = fakeIo(client);
    const argv = [
      "webhook",
      "add",
      "ci",
      "https://h.example.com/",
      "--repositories",
      "team/*,team/app",
      "--events",
      "tag.pushed",
      "--disabled",
    ];
    expect(await main(argv, io)).toBe(0);
    expect(calls[0]).toEqual({
      method: "createWebhook",
      args: [
        {
          name: "ci",
          url: "https://h.example.com/",
          repository_patterns: ["team/*", "team/app"],
          events: ["tag.pushed"],
          enabled: false,
        },
      ],
    });
    expect(io.stdout).toContain(CREATED.secret);
    expect(io.stdout.split(CREATED.secret).length).toBe(2);
  });

  it("list, show, enable, disable, rm, test, deliveries, redeliver call the client and print", async () => {
    for (const [argv, method, text] of [
      [["webhook", "list"], "listWebhooks", /ci\s+active/],
      [["webhook", "show", "ci"], "getWebhook", /repositories {2}team\/\*/],
      [["webhook", "disable", "ci"], "updateWebhook", /ci is disabled/],
      [["webhook", "enable", "3"], "updateWebhook", /ci is/],
      [["webhook", "rm", "ci"], "deleteWebhook", /deleted webhook ci/],
      [["webhook", "test", "ci"], "testWebhook", /queued test delivery 9/],
      [["webhook", "deliveries", "ci"], "listDeliveries", /failed\s+12\s+500/],
      [["webhook", "redeliver", "9"], "redeliver", /queued delivery 10/],
    ] as const) {
      const { client, calls } = fakeClient(answers);
      const io = fakeIo(client);
      expect(await main([...argv], io)).toBe(0);
      expect(calls[0]?.method).toBe(method);
      expect(io.stdout).toMatch(text);
      // Text from the server is printed without its control characters.
      expect(io.stdout).not.toContain("\u001b");
    }
  });

  it("--output json prints the views", async () => {
    const { client } = fakeClient(answers);
    const io = fakeIo(client);
    expect(await main(["webhook", "list", "--output", "json"], io)).toBe(0);
    expect(JSON.parse(io.stdout)).toEqual([WEBHOOK]);
  });

  it("a refusal is one line and exit 1", async () => {
    const { client } = fakeClient({ getWebhook: new NotFound('no webhook "x"') });
    const io = fakeIo(client);
    expect(await main(["webhook", "show", "x"], io)).toBe(1);
    expect(io.stderr).toBe('regauth webhook show: no webhook "x"\n');
  });
});

describe("the two back-ends", () => {
  it("offline and remote give the same views of the same webhooks", async () => {
    const { createUser } = await import("../../src/accounts/users.ts");
    const { quickHash } = await import("../accounts-helpers.ts");
    const { testApiApp } = await import("../api-helpers.ts");
    const { LocalClient } = await import("../../src/cli/local-client.ts");
    const { RemoteClient } = await import("../../src/cli/remote-client.ts");
    const { databasePath, openDatabase } = await import("../../src/db/database.ts");
    const t = await testApiApp();
    createUser(t.db, { name: "root", passwordHash: quickHash("root-password"), isAdmin: true, nowUnix: 1 });
    const remote = new RemoteClient(
      new URL("http://localhost"),
      { kind: "basic", username: "root", password: "root-password" },
      (async (url: string, init?: RequestInit) => t.app.handle(new Request(url, init))) as typeof fetch,
    );
    const local = new LocalClient(async () => ({
      db: openDatabase(databasePath(t.dataDir)),
      loaded: t.loaded,
    }));
    const created = await remote.createWebhook({
      name: "remote",
      url: "https://h.example.com/",
      repository_patterns: ["team/*"],
    });
    const createdOffline = await local.createWebhook({
      name: "offline",
      url: "https://h.example.com/",
      repository_patterns: ["team/*"],
    });
    expect(created.secret).toMatch(/^whsec_/);
    expect(createdOffline.secret).toMatch(/^whsec_/);
    expect(await local.listWebhooks()).toEqual(await remote.listWebhooks());
    const test = await remote.testWebhook({ webhook: "offline" });
    expect((await local.listDeliveries({ webhook: "offline" }, {})).items).toEqual([test]);
    expect(await local.getWebhook({ webhook: "remote" })).toEqual(
      await remote.getWebhook({ webhook: String(created.id) }),
    );
    const disabled = await remote.updateWebhook({ webhook: "offline", enabled: false });
    expect(disabled.state).toBe("disabled");
    expect(await local.deleteWebhook({ webhook: "offline" })).toEqual(disabled);
    local.close();
  });
});
