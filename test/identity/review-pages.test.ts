/**
 * Review (issue 15), through the pages in process: what the browser and the log see of a
 * provider's words and secrets. A GitHub sign-in against the local stand-in
 * (test/identity/github-stand-in.ts; GitHub cannot be reached from here), its re-check after the
 * token is revoked, and error callbacks carrying HTML and 10 kB descriptions: no page, log line
 * or audit row holds the client secret or a provider token; the description is never rendered,
 * and the log keeps at most 300 characters of it, escaped.
 */
import { afterAll, describe, expect, it } from "bun:test";
import { PasswordVerifier } from "../../src/authn/password-verifier.ts";
import { databasePath, openDatabase } from "../../src/db/database.ts";
import { log } from "../../src/log.ts";
import { buildApp, buildIssuer, managementServices } from "../../src/server.ts";
import type { ApiApp } from "../api-helpers.ts";
import { loadTestConfig, makeTempDir } from "../helpers.ts";
import { WebClient } from "../web-helpers.ts";
import { startGithubStandIn } from "./github-stand-in.ts";

describe("secrets and provider words on pages and in logs", async () => {
  const gh = startGithubStandIn();
  afterAll(() => gh.stop());
  gh.users.set("Octo-Cat", { id: 5, login: "Octo-Cat", orgs: ["acme"], teams: [] });
  const dataDir = makeTempDir("regauth-review-pages-");
  const loaded = await loadTestConfig(
    {
      identity_providers: {
        public_url: "http://localhost",
        github: [
          {
            name: "ghe",
            client_id: gh.clientId,
            client_secret: gh.clientSecret,
            web_url: gh.webUrl,
            api_url: gh.apiUrl,
            organization: "acme",
            first_sign_in: "create",
            revalidate_after_seconds: 60,
          },
        ],
      },
    },
    dataDir,
  );
  if (!loaded.signingKey) throw new Error("no signing key");
  const db = openDatabase(databasePath(dataDir));
  const issuer = buildIssuer(loaded, loaded.signingKey, new PasswordVerifier(), db);
  const services = managementServices(loaded, issuer, db);
  const t = { app: buildApp(loaded, issuer, services) } as unknown as ApiApp;
  const identity = services.identity;
  if (!identity) throw new Error("no identity service");
  const lines: string[] = [];
  const restore = log.capture(lines);
  afterAll(restore);
  const pages: string[] = [];

  it("a sign-in, a revoked token's re-check and hostile error callbacks", async () => {
    const browser = new WebClient(t);
    gh.nextLogin = "Octo-Cat";
    const start = await browser.get("/sign-in/github/ghe");
    const atGithub = await fetch(new URL(start.location ?? ""), { redirect: "manual" });
    const back = new URL(atGithub.headers.get("location") ?? "");
    const signedIn = await browser.get(`${back.pathname}${back.search}`);
    expect(signedIn.status).toBe(200);
    pages.push(signedIn.text, (await browser.get("/tokens")).text);
    gh.revoke("Octo-Cat");
    expect((await identity.revalidate(db, null, Math.floor(Date.now() / 1000) + 120)).ended).toBe(1);

    const description = `<script>alert("x")</script><img src=x onerror=alert(1)>${"A".repeat(10_000)}`;
    for (const error of ["access_denied", `<b>bold</b>${"e".repeat(10_000)}`]) {
      const other = new WebClient(t);
      const again = await other.get("/sign-in/github/ghe");
      const state = new URL(again.location ?? "").searchParams.get("state") ?? "";
      const query = new URLSearchParams({ error, error_description: description, state });
      const refused = await other.get(`/sign-in/github/ghe/callback?${query}`);
      expect(refused.status).toBe(400);
      expect(refused.text).not.toContain("<script>");
      expect(refused.text).not.toContain("<b>");
      expect(refused.text).not.toContain("AAAAAAAAAA");
      pages.push(refused.text);
    }
  });

  it("no page, log line or audit row holds the client secret or a GitHub token", () => {
    const audit = db.query<{ details: string }, []>("SELECT details FROM audit_events").all();
    const everything = [...pages, ...lines, ...audit.map((row) => row.details)].join("\n");
    expect(lines.length).toBeGreaterThan(0);
    expect(everything).not.toContain(gh.clientSecret);
    expect(everything).not.toMatch(/gho_[0-9a-f]{8}/);
    // The refusal's reason is logged bounded (300 characters before escaping), never whole.
    for (const line of lines) expect(line.length).toBeLessThan(1_000);
  });
});
