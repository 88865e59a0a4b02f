/**
 * The web interface in a real browser (issue 14): Debian's chromium driven by playwright-core
 * (never a downloaded browser), against the compiled binary and the real registry 2.8. The
 * first-run admin signs in with the keyboard, adds a user and grants `team/*` write, signs out;
 * the user signs in, creates a token, the secret read from the page pushes with skopeo, the
 * token revoked in the page, the next push refused. axe-core runs on every page (no serious or
 * critical violation); screenshots at 360 px and 1280 px go to .tmp/screenshots (not committed).
 */
import { afterAll, describe, expect, it } from "bun:test";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { accessibilityProblems, CHROMIUM, launchChromium, SCREENSHOTS, WIDTHS } from "./browser.ts";
import { makeOciImage, skopeoPush, startRegauth, startRegistry } from "./harness.ts";

describe.skipIf(!existsSync(CHROMIUM))("the web interface in chromium", async () => {
  const regauth = await startRegauth({
    configYaml: `server: {addr: "127.0.0.1:{{PORT}}"}\ntoken: {issuer: regauth, expiration: 300, services: [registry]}\n`,
  });
  const adminPassword = (await regauth.stdout.waitFor(/^password: (\S+)$/m))[1] as string;
  const registry = await startRegistry({
    realm: `${regauth.url}/auth`,
    issuer: "regauth",
    service: "registry",
    certificatePath: regauth.certificatePath,
  });
  const browser: Browser = await launchChromium();
  afterAll(async () => {
    await browser.close();
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  // Destructive forms ask first (app.js); the person says yes.
  page.on("dialog", (dialog) => void dialog.accept());
  const cspViolations: string[] = [];
  page.on("console", (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) cspViolations.push(message.text());
  });
  mkdirSync(SCREENSHOTS, { recursive: true });
  const audited: string[] = [];

  /** Every page we stop at: no serious axe finding, and a screenshot at both widths. */
  async function review(name: string): Promise<void> {
    expect({ page: name, problems: await accessibilityProblems(page) }).toEqual({ page: name, problems: [] });
    for (const width of WIDTHS) {
      await page.setViewportSize({ width, height: 900 });
      await page.screenshot({ path: join(SCREENSHOTS, `${name}-${width}.png`), fullPage: true });
      // Usable at phone width: nothing forces the page wider than the screen.
      const overflow = (await page.evaluate(
        "document.documentElement.scrollWidth - window.innerWidth",
      )) as number;
      expect({ page: name, width, overflow: overflow <= 1 }).toEqual({ page: name, width, overflow: true });
    }
    await page.setViewportSize({ width: 1280, height: 900 });
    audited.push(name);
  }

  async function signIn(username: string, password: string): Promise<void> {
    await page.goto(`${regauth.url}/`);
    expect(new URL(page.url()).pathname).toBe("/sign-in");
    await page.getByLabel("User name").fill(username);
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(/\/account$/);
  }

  const image = makeOciImage("pushed from the web interface's token\n");
  let secret = "";

  it("the first-run admin signs in with the keyboard alone", async () => {
    await page.goto(`${regauth.url}/`);
    await review("sign-in");
    // Tab from the top of the page to the user name field, type, Tab, type, Enter.
    for (let i = 0; i < 10; i++) {
      await page.keyboard.press("Tab");
      if (await page.evaluate('document.activeElement && document.activeElement.name === "username"')) break;
    }
    await page.keyboard.type("admin");
    await page.keyboard.press("Tab");
    await page.keyboard.type(adminPassword);
    await page.keyboard.press("Enter");
    await page.waitForURL(/\/account$/);
    // Focus is visible: the focused control has an outline.
    await page.keyboard.press("Tab");
    const outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle");
    expect(outline).not.toBe("none");
    await review("account");
  });

  it("adds a user and grants team/* write", async () => {
    await page.goto(`${regauth.url}/admin/users`);
    await page.getByLabel("Name", { exact: true }).fill("dev");
    await page.getByLabel("Password").fill("dev-password-1");
    await page.getByRole("button", { name: "Add user" }).click();
    await page.getByText("The user was created").waitFor();
    await review("users");
    await page.goto(`${regauth.url}/permissions`);
    await page.getByLabel("Grantee").fill("dev");
    await page.getByLabel("Repository pattern").fill("team/*");
    await page.getByLabel("Level").selectOption("write");
    await page.getByRole("button", { name: "Grant" }).click();
    await page.getByText("The permission was granted").waitFor();
    await review("permissions");
    for (const [path, name] of [
      ["/admin/groups", "groups"],
      ["/robots", "robots"],
      ["/admin/audit", "audit"],
      ["/tokens", "tokens-empty"],
    ] as const) {
      await page.goto(`${regauth.url}${path}`);
      await review(name);
    }
    // A form with errors next to its fields, and a robot account with its own page.
    await page.goto(`${regauth.url}/admin/users`);
    await page.getByLabel("Name", { exact: true }).fill("<b>Not A Name</b>");
    await page.getByLabel("Password").fill("short");
    await page.getByRole("button", { name: "Add user" }).click();
    await page.locator("p.error").first().waitFor();
    expect(await page.locator('input[name="name"]').getAttribute("aria-invalid")).toBe("true");
    await review("users-error");
    await page.goto(`${regauth.url}/robots`);
    await page.getByLabel("Name", { exact: true }).fill("deploy");
    await page.getByRole("button", { name: "Create robot" }).click();
    await page.waitForURL(/\/robots\/regauth%2Bdeploy/);
    await review("robot");
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(/\/sign-in/);
    await page.getByText("You are signed out").waitFor();
  });

  it("the user creates a token and pushes with the secret from the page", async () => {
    await signIn("dev", "dev-password-1");
    await page.goto(`${regauth.url}/tokens`);
    await page.getByLabel("Name").fill("laptop");
    await page.getByRole("checkbox", { name: /^push/ }).check();
    await page.getByLabel("Repository patterns").fill("team/*");
    await page.getByRole("button", { name: "Create token" }).click();
    secret = ((await page.locator("#token-secret").textContent()) ?? "").trim();
    expect(secret).toMatch(/^regauth_pat_/);
    expect(await page.locator("#login-command").textContent()).toBe(
      "docker login -u dev --password-stdin REGISTRY_HOST",
    );
    await page.getByRole("button", { name: "Copy token" }).waitFor();
    await review("token-created");
    const push = await skopeoPush(image, `${registry.host}/team/app:v1`, `dev:${secret}`);
    expect(push.stderr).toBe("");
    expect(push.exitCode).toBe(0);
    // The secret is never rendered twice.
    await page.goto(`${regauth.url}/tokens`);
    expect(await page.content()).not.toContain(secret);
    // Last used: the registry's token request, recorded by the background writer (poll, not sleep).
    let lastUsed = "";
    for (let i = 0; i < 40 && !/UTC/.test(lastUsed); i++) {
      if (i > 0) await Bun.sleep(250);
      await page.goto(`${regauth.url}/tokens`);
      lastUsed = (await page.locator("tbody tr td").nth(5).textContent()) ?? "";
    }
    expect(lastUsed).toMatch(/UTC from 127\.0\.0\.1$/);
  });

  it("the token revoked in the page stops the next push", async () => {
    await page.getByRole("button", { name: "Revoke token laptop" }).click();
    await page.getByText("The access token was revoked").waitFor();
    await review("tokens-revoked");
    const push = await skopeoPush(image, `${registry.host}/team/app:v2`, `dev:${secret}`);
    expect(push.exitCode).not.toBe(0);
  });

  it("no page broke its Content-Security-Policy", () => {
    expect(cspViolations).toEqual([]);
    expect(audited.length).toBeGreaterThanOrEqual(12);
  });
});
