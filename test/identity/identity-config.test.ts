/**
 * Config of identity_providers (issue 15) and docker_auth's OAuth sections: each refused with
 * the identity_providers section to write instead, filled in from what was given, including
 * docker_auth's label_claims / labels_claims spelling trap.
 */
import { describe, expect, it } from "bun:test";
import { ConfigError, type ConfigProblem } from "../../src/errors.ts";
import { maxUncheckedSecondsOf } from "../../src/identity/config-schema.ts";
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

const GOOD = {
  name: "kc",
  issuer: "https://sso.example.com/realms/main",
  client_id: "regauth",
  client_secret: "s",
};

describe("identity_providers", () => {
  it("a provider with a public_url loads, with its defaults", async () => {
    const loaded = await loadTestConfig(
      { identity_providers: { public_url: "https://registry.example.com", oidc: [GOOD] } },
      makeTempDir(),
    );
    const [provider] = loaded.config.identity_providers.oidc;
    expect(provider).toMatchObject({
      scopes: ["openid", "profile", "email"],
      user_claim: "preferred_username",
      groups_claim: "groups",
      first_sign_in: "link_only",
      revalidate_after_seconds: 3600,
      id_token_algorithms: ["RS256", "ES256", "PS256", "EdDSA"],
    });
  });

  it.each([
    ["both secrets", { ...GOOD, client_secret_file: "/x" }, "identity_providers.oidc.0", /exactly one/],
    [
      "no secret",
      { name: "kc", issuer: GOOD.issuer, client_id: "x" },
      "identity_providers.oidc.0",
      /exactly one/,
    ],
    [
      "an unreadable secret file",
      { name: "kc", issuer: GOOD.issuer, client_id: "x", client_secret_file: "/nonexistent/s" },
      "identity_providers.oidc.0.client_secret_file",
      /cannot read/,
    ],
    [
      "an http issuer off loopback",
      { ...GOOD, issuer: "http://sso.example.com" },
      "identity_providers.oidc.0",
      /https/,
    ],
    [
      "docker_auth's label_claims",
      { ...GOOD, label_claims: ["groups"] },
      "identity_providers.oidc.0.label_claims",
      /unknown key.*labels_from_claims/,
    ],
    [
      "docker_auth's labels_claims",
      { ...GOOD, labels_claims: ["groups"] },
      "identity_providers.oidc.0.labels_claims",
      /unknown key.*labels_from_claims/,
    ],
    [
      "alg none",
      { ...GOOD, id_token_algorithms: ["none"] },
      "identity_providers.oidc.0.id_token_algorithms.0",
      /./,
    ],
    [
      "HS256 (keyed by the client secret)",
      { ...GOOD, id_token_algorithms: ["HS256"] },
      "identity_providers.oidc.0.id_token_algorithms.0",
      /./,
    ],
    [
      "authorization_params setting the state",
      { ...GOOD, authorization_params: { state: "fixed" } },
      "identity_providers.oidc.0",
      /cannot set state/,
    ],
    ["a name with a slash", { ...GOOD, name: "a/b" }, "identity_providers.oidc.0.name", /./],
    [
      "an unknown first_sign_in",
      { ...GOOD, first_sign_in: "takeover" },
      "identity_providers.oidc.0.first_sign_in",
      /./,
    ],
  ])("refuses %s", async (_name, provider, path, message) => {
    const problems = await problemsOf({
      identity_providers: { public_url: "https://r.example.com", oidc: [provider] },
    });
    const found = problems.find((p) => p.path === path);
    expect({ path, found: found !== undefined, problems }).toMatchObject({ path, found: true });
    expect(found?.message).toMatch(message);
  });

  it("max_unchecked_seconds: one day by default, never below revalidate_after_seconds", async () => {
    const loaded = await loadTestConfig(
      {
        identity_providers: {
          public_url: "https://r.example.com",
          oidc: [
            GOOD,
            {
              ...GOOD,
              name: "weekly",
              issuer: "https://b.example.com",
              revalidate_after_seconds: 86_400 * 2,
            },
          ],
          github: [{ client_id: "gh", client_secret: "s" }],
        },
      },
      makeTempDir(),
    );
    const { oidc, github } = loaded.config.identity_providers;
    expect(oidc.map(maxUncheckedSecondsOf)).toEqual([86_400, 86_400 * 4]);
    expect(github.map(maxUncheckedSecondsOf)).toEqual([86_400]);
    for (const [kind, provider] of [
      ["oidc", { ...GOOD, revalidate_after_seconds: 7200, max_unchecked_seconds: 3600 }],
      [
        "github",
        { client_id: "gh", client_secret: "s", revalidate_after_seconds: 7200, max_unchecked_seconds: 3600 },
      ],
    ] as const) {
      const problems = await problemsOf({
        identity_providers: { public_url: "https://r.example.com", [kind]: [provider] },
      });
      const found = problems.find((p) => p.path === `identity_providers.${kind}.0.max_unchecked_seconds`);
      expect({ kind, message: found?.message }).toEqual({
        kind,
        message:
          "max_unchecked_seconds (3600) must be at least revalidate_after_seconds (7200): an identity is re-checked only that often, so a shorter cap would end access at the first re-check the provider misses",
      });
    }
  });

  it("refuses providers when the web interface is off (nowhere to sign in)", async () => {
    const problems = await problemsOf({
      web: { enabled: false },
      identity_providers: { public_url: "https://r.example.com", oidc: [GOOD] },
    });
    expect(problems.map((p) => p.path)).toContain("identity_providers");
  });

  it("refuses a provider without redirect_url when public_url is not set, and two of one name", async () => {
    expect((await problemsOf({ identity_providers: { oidc: [GOOD] } }))[0]?.message).toMatch(
      /redirect_url.*public_url/,
    );
    const twice = await problemsOf({
      identity_providers: { public_url: "https://r.example.com", oidc: [GOOD, GOOD] },
    });
    expect(twice.map((p) => p.path)).toContain("identity_providers.oidc.1.name");
    const sameIssuer = await problemsOf({
      identity_providers: { public_url: "https://r.example.com", oidc: [GOOD, { ...GOOD, name: "other" }] },
    });
    expect(sameIssuer.map((p) => p.path)).toContain("identity_providers.oidc.1.issuer");
  });
});

describe("docker_auth's OAuth sections", () => {
  it.each([
    [
      "oidc_auth with labels_claims",
      {
        oidc_auth: {
          issuer: "https://dex.example.com",
          client_id: "dockerauth",
          client_secret_file: "/etc/s",
          labels_claims: ["groups"],
        },
      },
      [
        /identity_providers/,
        /issuer: https:\/\/dex\.example\.com/,
        /client_id: dockerauth/,
        /client_secret_file: \/etc\/s/,
        /groups_claim: groups/,
        /labels_from_claims: \[groups\]/,
        /label_claims/,
        /labels_claims/,
      ],
    ],
    [
      "oidc_auth with the reference's label_claims spelling",
      { oidc_auth: { issuer: "https://dex.example.com", client_id: "c", label_claims: ["roles"] } },
      [/groups_claim: roles/, /labels_from_claims: \[roles\]/, /silently ignores/, /never matched/],
    ],
    [
      "google_auth with a domain",
      {
        google_auth: {
          domain: "example.com",
          client_id: "123.apps.googleusercontent.com",
          client_secret: "x",
        },
      },
      [
        /issuer: https:\/\/accounts\.google\.com/,
        /allowed_email_domains: \[example\.com\]/,
        /user_claim: email/,
        /platform\.js/,
      ],
    ],
    [
      "gitlab_auth on a self-hosted GitLab",
      { gitlab_auth: { gitlab_web_uri: "https://git.example.com", client_id: "app", client_secret: "x" } },
      [/issuer: https:\/\/git\.example\.com/, /groups_claim: groups_direct/],
    ],
    [
      "github_auth on GitHub Enterprise",
      {
        github_auth: {
          organization: "acme",
          client_id: "gh",
          github_web_uri: "https://ghe.example.com",
          github_api_uri: "https://ghe.example.com/api/v3",
        },
      },
      [
        /github: \[\{name: github/,
        /organization: acme/,
        /web_url: https:\/\/ghe\.example\.com/,
        /api_url: https:\/\/ghe\.example\.com\/api\/v3/,
        /sign-in\/github\/github\/callback/,
      ],
    ],
  ])("%s is refused with what to write instead", async (_name, config, messages) => {
    const problems = await problemsOf(config);
    const key = Object.keys(config)[0] ?? "";
    const problem = problems.find((p) => p.path === key);
    expect(problem).toBeDefined();
    for (const message of messages) expect(problem?.message).toMatch(message);
    // The secret given in the section is never echoed.
    expect(problem?.message).not.toContain("client_secret: x");
  });
});
