/**
 * Review (issue 15): no config problem, docker_auth-section advice or identity config check
 * echoes a client secret (or a password in a URL), whatever shape the operator's mistake takes.
 */
import { describe, expect, it } from "bun:test";
import { ConfigError, type ConfigProblem } from "../../src/errors.ts";
import { loadTestConfig, makeTempDir } from "../helpers.ts";

async function problemsOf(config: Record<string, unknown>): Promise<ConfigProblem[]> {
  try {
    await loadTestConfig(config, makeTempDir());
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
}

const SECRET = "Sup3rS3cret0000";
const NUMERIC_SECRET = 98765432109876;

const oidc = (fields: Record<string, unknown>) => ({
  web: { enabled: true },
  identity_providers: {
    public_url: "https://regauth.example.com",
    oidc: [{ name: "kc", issuer: "https://sso.example.com", client_id: "regauth", ...fields }],
  },
});
const github = (fields: Record<string, unknown>) => ({
  web: { enabled: true },
  identity_providers: {
    public_url: "https://regauth.example.com",
    github: [{ name: "gh", client_id: "Iv1.abc", ...fields }],
  },
});

describe("secrets never appear in config problems", () => {
  it.each([
    ["docker_auth google_auth", { google_auth: { client_id: "c", client_secret: SECRET } }],
    ["docker_auth gitlab_auth", { gitlab_auth: { client_id: "c", client_secret: SECRET } }],
    ["docker_auth oidc_auth", { oidc_auth: { issuer: "https://i", client_id: "c", client_secret: SECRET } }],
    [
      "docker_auth github_auth",
      { github_auth: { client_id: "c", client_secret: SECRET, organization: "acme" } },
    ],
    [
      "docker_auth github_auth with a password in its Enterprise URL",
      { github_auth: { client_id: "c", github_web_uri: `https://u:${SECRET}@ghe.example.com` } },
    ],
    ["an OIDC client_secret that YAML read as a number", oidc({ client_secret: NUMERIC_SECRET })],
    ["an OIDC client_secret written as a list", oidc({ client_secret: [SECRET] })],
    ["a GitHub client_secret that YAML read as a number", github({ client_secret: NUMERIC_SECRET })],
    ["a GitHub client_secret written as a mapping", github({ client_secret: { value: SECRET } })],
    [
      "both client_secret and client_secret_file",
      github({ client_secret: SECRET, client_secret_file: "/x" }),
    ],
    [
      "a GitHub web_url with a password in it",
      github({ client_secret: "s", web_url: `https://u:${SECRET}@ghe.example.com` }),
    ],
    [
      "a GitHub api_url with a password in it",
      github({ client_secret: "s", api_url: `https://u:${SECRET}@ghe.example.com/api/v3` }),
    ],
    [
      "an OIDC issuer with a password in it",
      oidc({ client_secret: "s", issuer: `https://u:${SECRET}@sso.example.com` }),
    ],
  ])("%s", async (_name, config) => {
    const problems = await problemsOf(config);
    expect(problems.length).toBeGreaterThan(0);
    const text = JSON.stringify(problems);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(String(NUMERIC_SECRET));
  });
});

describe("GitHub Enterprise URLs", () => {
  const urls = (url: string) => github({ client_secret: "s", web_url: url, api_url: `${url}/api/v3` });
  it.each([
    ["http://ghe.internal", true],
    ["http://localhost.evil.example", true],
    ["http://127.0.0.1.nip.io", true],
    ["http://127.0.0.1@evil.example", true],
    ["ftp://ghe.example.com", true],
    ["https://ghe.example.com", false],
    ["http://127.0.0.1:8080", false],
    ["http://[::1]:8080", false],
    ["http://localhost:8080", false],
    // The operator's choice: an https GitHub Enterprise on a private address is a normal set-up.
    ["https://10.0.0.5", false],
  ])("%s refused: %p", async (url, refused) => {
    const problems = await problemsOf(urls(url));
    expect(problems.some((p) => /web_url|api_url/.test(p.path))).toBe(refused);
  });
});
