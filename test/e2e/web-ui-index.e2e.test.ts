/**
 * The Repositories and Webhooks pages in a real browser (issue 14 item 2 and its "see the image
 * and its tag appear"): Debian's chromium driven by playwright-core against the compiled binary
 * and Debian's docker-registry 2.8, which sends its notifications to regauth (the block
 * `regauth registry-config` prints). A user creates a token in the page, pushes with skopeo and
 * sees the image and its tag appear on the Repositories page with the pull command for the real
 * host; an administrator syncs, creates a webhook to a receiver on this host (allowed through
 * webhooks.allow_private_networks), sends a test event and sees it delivered in the history.
 * axe-core on every page (no serious or critical violation); screenshots at 360 and 1280 px to
 * .tmp/screenshots (not committed).
 */
import { afterAll, describe, expect, it } from "bun:test";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { verifySignature } from "../../src/webhooks/signing.ts";
import { accessibilityProblems, CHROMIUM, launchChromium, SCREENSHOTS, WIDTHS } from "./browser.ts";
import { BINARY, freePort, makeOciImage, run, skopeoPush, startRegauth, startRegistry } from "./harness.ts";

interface Received {
  event: string;
  signature: string;
  body: string;
}

describe.skipIf(!existsSync(CHROMIUM))("Repositories and Webhooks in chromium", async () => {
  const registryPort = await freePort();
  const regauth = await startRegauth({
    configYaml: [
      `server: {addr: "127.0.0.1:{{PORT}}"}`,
      "token: {issuer: regauth, expiration: 300, services: [registry]}",
      `notifications: {registry_url: "http://127.0.0.1:${registryPort}"}`,
      "webhooks: {allow_private_networks: [127.0.0.0/8], timeout_seconds: 2, retry_base_seconds: 1, retry_max_seconds: 2}",
      "",
    ].join("\n"),
  });
  const adminPassword = (await regauth.stdout.waitFor(/^password: (\S+)$/m))[1] as string;
  const printed = await run([
    BINARY,
    "registry-config",
    "--config",
    join(regauth.dir, "auth_config.yml"),
    "--data-dir",
    regauth.dataDir,
  ]);
  const registry = await startRegistry({
    realm: `${regauth.url}/auth`,
    issuer: "regauth",
    service: "registry",
    certificatePath: regauth.certificatePath,
    port: registryPort,
    notifications: { yaml: printed.stdout.slice(printed.stdout.indexOf("\nnotifications:") + 1) },
  });
  const received: Received[] = [];
  const receiver = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      received.push({
        event: request.headers.get("x-regauth-event") ?? "",
        signature: request.headers.get("x-regauth-signature") ?? "",
        body: await request.text(),
      });
      return new Response("thanks");
    },
  });
  // The user and their grant through the API: the first web test covers those forms.
  const admin = `Basic ${btoa(`admin:${adminPassword}`)}`;
  for (const [path, body] of [
    ["/users", { name: "dev", password: "dev-password-1" }],
    ["/permissions", { grantee: "dev", pattern: "team/*", level: "write" }],
  ] as const) {
    const res = await fetch(`${regauth.url}/api/v1${path}`, {
      method: "POST",
      headers: { authorization: admin, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(201);
  }

  const browser: Browser = await launchChromium();
  afterAll(async () => {
    await browser.close();
    receiver.stop(true);
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on("dialog", (dialog) => void dialog.accept());
  const cspViolations: string[] = [];
  page.on("console", (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) cspViolations.push(message.text());
  });
  mkdirSync(SCREENSHOTS, { recursive: true });
  const renderMs: Record<string, number> = {};

  async function review(name: string): Promise<void> {
    expect({ page: name, problems: await accessibilityProblems(page) }).toEqual({ page: name, problems: [] });
    for (const width of WIDTHS) {
      await page.setViewportSize({ width, height: 900 });
      await page.screenshot({ path: join(SCREENSHOTS, `${name}-${width}.png`), fullPage: true });
      const overflow = (await page.evaluate(
        "document.documentElement.scrollWidth - window.innerWidth",
      )) as number;
      expect({ page: name, width, overflow: overflow <= 1 }).toEqual({ page: name, width, overflow: true });
    }
    await page.setViewportSize({ width: 1280, height: 900 });
    // The server's share of the page: request sent to the last byte of the answer.
    const timing = (await page.evaluate(
      "(() => { const n = performance.getEntriesByType('navigation')[0]; return n ? n.responseEnd - n.requestStart : -1; })()",
    )) as number;
    renderMs[name] = Math.round(timing * 10) / 10;
  }

  async function signIn(username: string, password: string): Promise<void> {
    await page.goto(`${regauth.url}/sign-in`);
    await page.getByLabel("User name").fill(username);
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(/\/account$/);
  }

  /** Reloads `path` until `ready` holds (the registry's notification, the dispatcher: poll, not sleep). */
  async function reloadUntil(path: string, ready: () => Promise<boolean>, what: string): Promise<void> {
    for (let i = 0; i < 80; i++) {
      await page.goto(`${regauth.url}${path}`);
      if (await ready()) return;
      await Bun.sleep(250);
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  it("a newcomer's empty Repositories page says how to push, with the registry's real host", async () => {
    await signIn("dev", "dev-password-1");
    await page.getByRole("link", { name: "Repositories" }).click();
    await page.getByText("No images you may pull yet.").waitFor();
    expect(await page.locator("#first-push").textContent()).toContain(`docker push ${registry.host}/`);
    // Webhooks are not for dev: not in the navigation, and the page is refused.
    expect(await page.getByRole("link", { name: "Webhooks" }).count()).toBe(0);
    await review("repositories-empty");
  });

  it("after a push with the token made in the page, the image and its tag appear", async () => {
    await page.goto(`${regauth.url}/tokens`);
    await page.getByLabel("Name").fill("laptop");
    await page.getByRole("checkbox", { name: /^push/ }).check();
    await page.getByLabel("Repository patterns").fill("team/*");
    await page.getByRole("button", { name: "Create token" }).click();
    const secret = ((await page.locator("#token-secret").textContent()) ?? "").trim();
    expect(secret).toMatch(/^regauth_pat_/);
    const push = await skopeoPush(
      makeOciImage("seen in the web interface\n"),
      `${registry.host}/team/app:v1`,
      `dev:${secret}`,
    );
    expect(push.exitCode, push.stderr).toBe(0);
    const listed = page.getByRole("link", { name: "team/app" });
    await reloadUntil(
      "/repositories",
      async () => (await listed.count()) > 0,
      "team/app on the Repositories page",
    );
    await review("repositories");
    await listed.click();
    await page.waitForURL(/\/repositories\/team\/app$/);
    await page.getByRole("cell", { name: "v1", exact: true }).waitFor();
    expect(await page.locator("#pull-0").textContent()).toBe(`docker pull ${registry.host}/team/app:v1`);
    expect(await page.getByRole("cell", { name: /^dev from 127\.0\.0\.1/ }).count()).toBe(1);
    await page.getByRole("button", { name: "Copy the pull command of team/app:v1" }).waitFor();
    await review("repository");
    await page.goto(`${regauth.url}/webhooks`);
    expect(await page.getByRole("heading", { name: /Refused|only an administrator/ }).count()).toBe(1);
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(/\/sign-in/);
  });

  it("an administrator syncs with the registry and sees the report", async () => {
    await signIn("admin", adminPassword);
    await page.goto(`${regauth.url}/repositories`);
    await page.getByRole("button", { name: "Sync with the registry now" }).click();
    await page.getByRole("heading", { name: "Sync finished" }).waitFor();
    expect(await page.getByRole("link", { name: "team/app" }).count()).toBe(1);
    await review("repositories-sync");
  });

  it("an administrator creates a webhook, sends a test event and sees it delivered", async () => {
    await page.getByRole("link", { name: "Webhooks" }).click();
    await page.getByText("No webhooks yet.").waitFor();
    await review("webhooks-empty");
    // A URL the policy refuses: the API's words next to the URL field.
    await page.getByLabel("Name", { exact: true }).fill("ci");
    await page.getByLabel("URL").fill("http://10.1.2.3/hook");
    await page.getByRole("button", { name: "Create webhook" }).click();
    await page.locator("p.error").first().waitFor();
    expect(await page.locator('input[name="url"]').getAttribute("aria-invalid")).toBe("true");
    await review("webhooks-error");
    await page.getByLabel("URL").fill(`http://127.0.0.1:${receiver.port}/hook`);
    await page.getByLabel("Repository patterns").fill("team/*");
    await page.getByRole("button", { name: "Create webhook" }).click();
    const secret = ((await page.locator("#webhook-secret").textContent()) ?? "").trim();
    expect(secret).toMatch(/^whsec_/);
    await review("webhook-created");
    await page.getByRole("link", { name: "Go to ci" }).click();
    await page.waitForURL(/\/webhooks\/ci$/);
    expect(await page.content()).not.toContain(secret);
    await page.getByRole("button", { name: "Send a test event ci" }).click();
    await page.getByText("A test event was queued").waitFor();
    const delivered = page.getByRole("cell", { name: "delivered", exact: true });
    await reloadUntil("/webhooks/ci", async () => (await delivered.count()) > 0, "the test delivery");
    expect(await page.getByRole("cell", { name: "200", exact: true }).count()).toBe(1);
    expect(await page.getByRole("cell", { name: "thanks" }).count()).toBe(1);
    const test = received.find((r) => r.event === "webhook.test");
    expect(test).toBeDefined();
    expect(
      verifySignature(secret, test?.signature ?? "", test?.body ?? "", Math.floor(Date.now() / 1000)),
    ).toBe(true);
    await review("webhook");
    // Redeliver from the history: a second delivery of the same event.
    await page
      .getByRole("button", { name: /^Redeliver delivery/ })
      .first()
      .click();
    await page.getByText("The delivery was queued again").waitFor();
    await reloadUntil("/webhooks/ci", async () => (await delivered.count()) >= 2, "the redelivery");
    expect(received.filter((r) => r.event === "webhook.test")).toHaveLength(2);
  });

  it("no page broke its Content-Security-Policy", () => {
    expect(cspViolations).toEqual([]);
    console.log(
      "server time per page (ms, Navigation Timing requestStart to responseEnd):",
      JSON.stringify(renderMs),
    );
  });
});
