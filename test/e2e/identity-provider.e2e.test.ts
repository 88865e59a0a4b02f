/**
 * Sign-in with an OpenID provider end to end (issue 15): the compiled binary, the real
 * `oidc-provider` on loopback (test/identity/oidc-provider.ts), Debian's chromium driven by
 * playwright-core (never a downloaded browser) submitting the provider's own login and consent
 * forms, and the real registry 2.8. The first sign-in creates alice (first_sign_in: create);
 * the token made on the tokens page pushes to alice/* with skopeo; alice removed at the provider,
 * the next re-check (revalidate_after_seconds: 10) ends her session and her token's pushes.
 * GitHub sign-in is not built yet; GitHub itself could not be reached from here anyway.
 */
import { afterAll, describe, expect, it } from "bun:test";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { accessibilityProblems, CHROMIUM, launchChromium, SCREENSHOTS } from "./browser.ts";
import { loginAtProvider, startTestProvider } from "../identity/oidc-provider.ts";
import { makeTempDir } from "../helpers.ts";
import { fetchToken, freePort, makeOciImage, skopeoPush, startRegauth, startRegistry } from "./harness.ts";

describe.skipIf(!existsSync(CHROMIUM))(
  "sign-in with an OpenID provider, in chromium, against the binary",
  async () => {
    const opPort = await freePort();
    const secretDir = makeTempDir("regauth-oidc-e2e-");
    writeFileSync(join(secretDir, "client-secret"), "e2e-client-secret-0123456789\n");
    const regauth = await startRegauth({
      configYaml: `server: {addr: "127.0.0.1:{{PORT}}"}
token: {issuer: regauth, expiration: 300, services: [registry]}
identity_providers:
  public_url: "http://127.0.0.1:{{PORT}}"
  oidc:
    - name: test
      display_name: Test IdP
      issuer: "http://127.0.0.1:${opPort}"
      client_id: regauth
      client_secret_file: "{{DIR}}/client-secret"
      scopes: [openid, profile, email, groups]
      first_sign_in: create
      allowed_groups: [registry-users]
      revalidate_after_seconds: 10
`,
      // The secret file is written before the config is read ({{DIR}} is this directory).
      dir: secretDir,
    });
    const callback = `${regauth.url}/sign-in/oidc/test/callback`;
    const op = await startTestProvider({
      port: opPort,
      redirectUris: [callback],
      clientSecret: "e2e-client-secret-0123456789",
      accounts: {
        alice: { email: "alice@example.com", groups: ["registry-users"] },
        mallory: { email: "mallory@example.com", groups: ["contractors"] },
      },
    });
    const registry = await startRegistry({
      realm: `${regauth.url}/auth`,
      issuer: "regauth",
      service: "registry",
      certificatePath: regauth.certificatePath,
    });
    const browser: Browser = await launchChromium();
    afterAll(async () => {
      await browser.close();
      await op.stop();
    });
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    page.setDefaultTimeout(15_000);
    const image = makeOciImage("pushed with a token of an OpenID sign-in\n");
    let secret = "";

    it("alice signs in through the provider's own forms and lands signed in", async () => {
      await page.goto(`${regauth.url}/sign-in`);
      expect(await accessibilityProblems(page)).toEqual([]);
      // For a look (not committed), as web-ui.e2e.test.ts does.
      mkdirSync(SCREENSHOTS, { recursive: true });
      await page.screenshot({ path: join(SCREENSHOTS, "sign-in-providers-1280.png"), fullPage: true });
      await page.getByRole("link", { name: "Sign in with Test IdP" }).click();
      await page.waitForURL(new RegExp(`^http://127\\.0\\.0\\.1:${opPort}/interaction/`));
      await page.locator('input[name="login"]').fill("alice");
      await page.locator('input[name="password"]').fill("any password");
      await page.getByRole("button", { name: "Sign-in" }).click();
      await page.getByRole("button", { name: "Continue" }).click();
      await page.waitForURL(new RegExp(`^${regauth.url}/(account)?$`));
      expect(await page.content()).toContain("alice");
    });

    it("the token made on the tokens page pushes to alice/* with skopeo", async () => {
      await page.goto(`${regauth.url}/tokens`);
      await page.getByLabel("Name").fill("laptop");
      await page.getByRole("checkbox", { name: /^push/ }).check();
      await page.getByLabel("Repository patterns").fill("alice/*");
      await page.getByRole("button", { name: "Create token" }).click();
      secret = ((await page.locator("#token-secret").textContent()) ?? "").trim();
      expect(secret).toMatch(/^regauth_pat_/);
      expect(await page.locator("#login-command").textContent()).toBe(
        "docker login -u alice --password-stdin REGISTRY_HOST",
      );
      const push = await skopeoPush(image, `${registry.host}/alice/app:v1`, `alice:${secret}`);
      expect(push.stderr).toBe("");
      expect(push.exitCode).toBe(0);
    });

    it("a user outside the allowed group is refused with a page", async () => {
      const other = await (await browser.newContext()).newPage();
      await other.goto(`${regauth.url}/sign-in/oidc/test`);
      await other.locator('input[name="login"]').fill("mallory");
      await other.locator('input[name="password"]').fill("any password");
      await other.getByRole("button", { name: "Sign-in" }).click();
      await other.getByRole("button", { name: "Continue" }).click();
      await other.getByText("Only members of registry-users may sign in here.").waitFor();
      await other.screenshot({ path: join(SCREENSHOTS, "sign-in-refused-1280.png"), fullPage: true });
      expect(await accessibilityProblems(other)).toEqual([]);
      await other.close();
    });

    it("the provider's callback replayed by fetch is refused (the flow cookie is single use)", async () => {
      const start = await fetch(`${regauth.url}/sign-in/oidc/test`, { redirect: "manual" });
      const flow =
        start.headers
          .getSetCookie()
          .find((c) => c.startsWith("regauth_oidc_flow="))
          ?.split(";")[0] ?? "";
      const back = await loginAtProvider(new URL(start.headers.get("location") ?? ""), "alice", callback);
      const first = await fetch(back, { headers: { cookie: flow }, redirect: "manual" });
      expect(first.status).toBe(200);
      const again = await fetch(back, { headers: { cookie: flow }, redirect: "manual" });
      expect(again.status).toBe(400);
    });

    it("alice removed at the provider: the re-check ends her session and her token stops working", async () => {
      op.accounts.delete("alice");
      const started = Date.now();
      let status = 200;
      // The sweep runs every 5 s for a 10 s interval: poll, do not sleep a fixed time.
      while (Date.now() - started < 45_000) {
        status = (
          await fetchToken(
            `${regauth.url}/auth`,
            { service: "registry", scopes: ["repository:alice/app:push"] },
            `alice:${secret}`,
          )
        ).status;
        if (status === 401) break;
        await Bun.sleep(500);
      }
      expect(status).toBe(401);
      await page.goto(`${regauth.url}/tokens`);
      expect(new URL(page.url()).pathname).toBe("/sign-in");
      const push = await skopeoPush(image, `${registry.host}/alice/app:v2`, `alice:${secret}`);
      expect(push.exitCode).not.toBe(0);
      expect(regauth.stderr.text).toContain("identity re-check failed: access ended");
      expect(regauth.stderr.text).not.toContain("e2e-client-secret");
    }, 60_000);
  },
);
