/**
 * The relying party of src/identity/oidc.ts against a real OpenID provider on loopback
 * (`oidc-provider`, test/identity/oidc-provider.ts) and, where that provider cannot be made to
 * misbehave, against a crafted one (a token endpoint answering ID tokens we forge with jose):
 * wrong or missing state, a replayed code, a wrong nonce, an expired ID token, another issuer,
 * another audience, `alg: none`, a key not in the JWKS; and the re-check after the user is
 * removed at the provider or leaves the allowed group.
 */
import { afterAll, describe, expect, it } from "bun:test";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { Value } from "@sinclair/typebox/value";
import { OidcProviderConfig } from "../../src/identity/config-schema.ts";
import { admissionProblem, claimFacts } from "../../src/identity/links.ts";
import {
  finishSignIn,
  makeProvider,
  type PendingSignIn,
  recheck,
  refreshedUserinfo,
  startSignIn,
} from "../../src/identity/oidc.ts";
import * as oauth from "oauth4webapi";
import { freePort } from "../e2e/free-port.ts";
import { loginAtProvider, startTestProvider } from "./oidc-provider.ts";

const REDIRECT = "http://127.0.0.1:1/sign-in/oidc/test/callback";

function providerConfig(fields: Record<string, unknown>) {
  return Value.Default(OidcProviderConfig, { name: "test", ...fields }) as OidcProviderConfig;
}

async function signInAtRealProvider(rp: ReturnType<typeof makeProvider>, login: string) {
  const now = Math.floor(Date.now() / 1000);
  const { url, pending } = await startSignIn(rp, "/", now);
  const callback = await loginAtProvider(url, login, REDIRECT);
  return { pending, callback };
}

describe("the relying party against a real OpenID provider", async () => {
  const port = await freePort();
  const op = await startTestProvider({
    port,
    redirectUris: [REDIRECT],
    accounts: {
      alice: { email: "alice@example.com", groups: ["registry-users", "dev"] },
      bob: { email: "bob@example.com", groups: ["registry-users"] },
    },
  });
  afterAll(() => op.stop());
  const config = providerConfig({
    issuer: op.issuer,
    client_id: op.clientId,
    client_secret: op.clientSecret,
    redirect_url: REDIRECT,
    scopes: ["openid", "profile", "email", "groups"],
    allowed_groups: ["registry-users"],
  });
  const rp = makeProvider(config, undefined, "");

  it("the authorization URL carries PKCE S256, state and nonce", async () => {
    const { url, pending } = await startSignIn(rp, "/", 0);
    expect(url.searchParams.get("code_challenge_method")).toBe("S256");
    expect(url.searchParams.get("code_challenge")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(url.searchParams.get("state")).toBe(pending.state);
    expect(url.searchParams.get("nonce")).toBe(pending.nonce);
    expect(url.searchParams.get("redirect_uri")).toBe(REDIRECT);
    expect(url.searchParams.get("code_challenge")).not.toBe(pending.codeVerifier);
  });

  it("authorization_params add to the URL, never over the flow's own", async () => {
    const extra = makeProvider(
      providerConfig({ ...config, authorization_params: { access_type: "offline", prompt: "consent" } }),
      undefined,
      "",
    );
    const { url } = await startSignIn(extra, "/", 0);
    expect(url.searchParams.get("access_type")).toBe("offline");
    expect(url.searchParams.get("prompt")).toBe("consent");
  });

  it("a sign-in gives the identity, its groups and a refresh token", async () => {
    const { pending, callback } = await signInAtRealProvider(rp, "alice");
    const result = await finishSignIn(rp, pending, callback);
    if (result.kind !== "ok") throw new Error(result.reason);
    expect(result.identity.issuer).toBe(op.issuer);
    expect(result.identity.subject).toBe("alice");
    expect(result.identity.claims.groups).toEqual(["registry-users", "dev"]);
    expect(result.identity.refreshToken).toBeString();
    expect(admissionProblem(config, claimFacts(config, result.identity.claims))).toBeNull();
  });

  it("refuses a wrong state, a missing state, a replayed code and a wrong nonce", async () => {
    const cases: [string, (p: PendingSignIn, c: URL) => [PendingSignIn, URL]][] = [
      ["wrong state", (p, c) => [{ ...p, state: "another-state" }, c]],
      [
        "missing state",
        (p, c) => {
          const url = new URL(c);
          url.searchParams.delete("state");
          return [p, url];
        },
      ],
      ["wrong nonce", (p, c) => [{ ...p, nonce: "another-nonce" }, c]],
      ["wrong PKCE verifier", (p, c) => [{ ...p, codeVerifier: "x".repeat(43) }, c]],
    ];
    for (const [name, tamper] of cases) {
      const { pending, callback } = await signInAtRealProvider(rp, "alice");
      const [p, c] = tamper(pending, callback);
      const result = await finishSignIn(rp, p, c);
      expect({ name, kind: result.kind }).toEqual({ name, kind: "refused" });
    }
    // The replay: the same code twice (the flow cookie's single use aside, the provider refuses too).
    const { pending, callback } = await signInAtRealProvider(rp, "alice");
    expect((await finishSignIn(rp, pending, callback)).kind).toBe("ok");
    const replay = await finishSignIn(rp, pending, callback);
    expect(replay).toMatchObject({ kind: "refused", reason: expect.stringContaining("invalid_grant") });
  });

  it("an error from the provider (access denied) is a refusal, not a crash", async () => {
    const { pending } = await signInAtRealProvider(rp, "alice");
    const callback = new URL(REDIRECT);
    callback.searchParams.set("error", "access_denied");
    callback.searchParams.set("state", pending.state);
    callback.searchParams.set("iss", op.issuer);
    expect(await finishSignIn(rp, pending, callback)).toMatchObject({ kind: "refused" });
  });

  it("a user outside the allowed group or domain is not admitted", () => {
    const domains = providerConfig({ ...config, allowed_email_domains: ["example.org"] });
    expect(
      admissionProblem(domains, {
        email: "alice@example.com",
        emailVerified: true,
        groups: ["registry-users"],
      }),
    ).toContain("example.org");
    expect(
      admissionProblem(domains, {
        email: "alice@example.org",
        emailVerified: false,
        groups: ["registry-users"],
      }),
    ).toContain("verified");
    expect(
      admissionProblem(domains, {
        email: "alice@EXAMPLE.org",
        emailVerified: true,
        groups: ["registry-users"],
      }),
    ).toBeNull();
    expect(admissionProblem(config, { email: null, emailVerified: false, groups: ["dev"] })).toContain(
      "registry-users",
    );
  });

  it("the re-check: passes while the user is there, refuses once removed or out of the group", async () => {
    const { pending, callback } = await signInAtRealProvider(rp, "bob");
    const first = await finishSignIn(rp, pending, callback);
    if (first.kind !== "ok" || first.identity.refreshToken === null) throw new Error("no refresh token");
    const again = await recheck(rp, first.identity.refreshToken, "bob");
    if (again.kind !== "ok") throw new Error(`re-check failed: ${again.reason}`);
    expect(admissionProblem(config, claimFacts(config, again.identity.claims))).toBeNull();
    // Out of the allowed group: the refreshed ID token says so.
    op.accounts.set("bob", { email: "bob@example.com", groups: ["other"] });
    const outOfGroup = await recheck(rp, again.identity.refreshToken ?? "", "bob");
    if (outOfGroup.kind !== "ok") throw new Error("expected a new ID token");
    expect(admissionProblem(config, claimFacts(config, outOfGroup.identity.claims))).toContain(
      "registry-users",
    );
    // Removed at the provider: the refresh grant itself is refused.
    op.accounts.delete("bob");
    const removed = await recheck(rp, outOfGroup.identity.refreshToken ?? "", "bob");
    expect(removed.kind).toBe("refused");
  });

  it("a refresh without a new ID token: membership is re-checked through userinfo (OIDC Core §12.2)", async () => {
    op.accounts.set("bob", { email: "bob@example.com", groups: ["registry-users"] });
    const { pending, callback } = await signInAtRealProvider(rp, "bob");
    const first = await finishSignIn(rp, pending, callback);
    if (first.kind !== "ok" || first.identity.refreshToken === null) throw new Error("no refresh token");
    // What a provider that sends no ID token on refresh (Google often) gives: the new access token.
    const as = await rp.server();
    const refreshed = await oauth.processRefreshTokenResponse(
      as,
      rp.client,
      await oauth.refreshTokenGrantRequest(as, rp.client, rp.clientAuth, first.identity.refreshToken, {
        [oauth.allowInsecureRequests]: true,
      }),
    );
    const { id_token: _dropped, ...withoutIdToken } = refreshed;
    op.accounts.set("bob", { email: "bob@example.com", groups: ["other"] });
    const current = await refreshedUserinfo(rp, as, withoutIdToken as oauth.TokenEndpointResponse, "bob");
    if (current.kind !== "ok") throw new Error(`userinfo failed: ${current.reason}`);
    expect(current.claims.groups).toEqual(["other"]);
    expect(admissionProblem(config, claimFacts(config, current.claims))).toContain("registry-users");
    // Another subject's access token is not this link's answer.
    const other = await refreshedUserinfo(rp, as, withoutIdToken as oauth.TokenEndpointResponse, "alice");
    expect(other.kind).toBe("refused");
    // No userinfo endpoint and rules that read groups: access ends rather than outlive a removal.
    const blind = await refreshedUserinfo(
      rp,
      { ...as, userinfo_endpoint: undefined },
      withoutIdToken as oauth.TokenEndpointResponse,
      "bob",
    );
    expect(blind.kind).toBe("refused");
  });

  it("a provider that cannot be reached is 'unreachable' at a re-check, not a removal", async () => {
    const gone = makeProvider(
      providerConfig({ ...config, issuer: `http://127.0.0.1:${await freePort()}` }),
      undefined,
      "",
    );
    expect((await recheck(gone, "rt", "alice")).kind).toBe("unreachable");
  });
});

describe("claims only in userinfo (oidc-provider's default, recent Authelia)", async () => {
  const port = await freePort();
  const op = await startTestProvider({
    port,
    redirectUris: [REDIRECT],
    accounts: { dana: { email: "dana@example.com", groups: ["registry-users"] } },
    claimsInUserinfoOnly: true,
  });
  afterAll(() => op.stop());
  const config = providerConfig({
    issuer: op.issuer,
    client_id: op.clientId,
    client_secret: op.clientSecret,
    redirect_url: REDIRECT,
    scopes: ["openid", "profile", "email", "groups"],
  });
  const rp = makeProvider(config, undefined, "");

  it("the missing claims come from userinfo, for the same subject", async () => {
    const { pending, callback } = await signInAtRealProvider(rp, "dana");
    const result = await finishSignIn(rp, pending, callback);
    if (result.kind !== "ok") throw new Error(result.reason);
    expect(result.identity.subject).toBe("dana");
    expect(result.identity.claims.preferred_username).toBe("dana");
    expect(result.identity.claims.groups).toEqual(["registry-users"]);
    expect(result.identity.claims.iss).toBe(op.issuer);
  });
});

describe("the relying party against forged ID tokens", async () => {
  const { publicKey, privateKey } = await generateKeyPair("RS256");
  const stranger = await generateKeyPair("RS256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256", use: "sig" };
  let forge: (nonce: string) => Promise<string> = async () => "";
  let issuer = "";
  const server: ReturnType<typeof Bun.serve> = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(request: Request): Promise<Response> {
      const url = new URL(request.url);
      if (url.pathname === "/.well-known/openid-configuration")
        return Response.json({
          issuer,
          authorization_endpoint: `${issuer}/auth`,
          token_endpoint: `${issuer}/token`,
          jwks_uri: `${issuer}/jwks`,
          response_types_supported: ["code"],
          id_token_signing_alg_values_supported: ["RS256"],
        });
      if (url.pathname === "/jwks") return Response.json({ keys: [jwk] });
      if (url.pathname === "/token") {
        const body = new URLSearchParams(await request.text());
        return Response.json(
          { access_token: "at", token_type: "Bearer", id_token: await forge(body.get("code") ?? "") },
          { headers: { "cache-control": "no-store" } },
        );
      }
      return new Response("not found", { status: 404 });
    },
  });
  issuer = `http://127.0.0.1:${server.port}`;
  afterAll(() => server.stop(true));
  const rp = makeProvider(
    providerConfig({ issuer, client_id: "regauth", client_secret: "s", redirect_url: REDIRECT }),
    undefined,
    "",
  );
  const now = () => Math.floor(Date.now() / 1000);
  const good = { iss: issuer, aud: "regauth", sub: "alice", iat: 0, exp: 0 };
  const signed = (claims: Record<string, unknown>, key = privateKey, kid = "k1") =>
    new SignJWT(claims).setProtectedHeader({ alg: "RS256", kid }).sign(key);
  const unsigned = (claims: Record<string, unknown>) =>
    `${Buffer.from(JSON.stringify({ alg: "none" })).toString("base64url")}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.`;

  async function attempt(
    make: (claims: Record<string, unknown>) => Promise<string> | string,
    change: Record<string, unknown> = {},
  ) {
    const { pending } = await startSignIn(rp, "/", now());
    forge = async () => make({ ...good, iat: now(), exp: now() + 300, nonce: pending.nonce, ...change });
    const callback = new URL(REDIRECT);
    callback.searchParams.set("code", "c");
    callback.searchParams.set("state", pending.state);
    return finishSignIn(rp, pending, callback);
  }

  it("accepts a well-formed ID token (the control case)", async () => {
    expect((await attempt((c) => signed(c))).kind).toBe("ok");
  });

  it("accepts several audiences when azp is this client (OIDC Core §3.1.3.7 items 4 and 5)", async () => {
    expect((await attempt((c) => signed(c), { aud: ["regauth", "other"], azp: "regauth" })).kind).toBe("ok");
  });

  it.each([
    [
      "expired (past the 60 s tolerance)",
      (c: Record<string, unknown>) => signed(c),
      { exp: Math.floor(Date.now() / 1000) - 120 },
    ],
    [
      "issued in the future",
      (c: Record<string, unknown>) => signed(c),
      { iat: Math.floor(Date.now() / 1000) + 3600 },
    ],
    ["from another issuer", (c: Record<string, unknown>) => signed(c), { iss: "https://evil.example" }],
    ["for another audience", (c: Record<string, unknown>) => signed(c), { aud: "another-client" }],
    ["with another nonce", (c: Record<string, unknown>) => signed(c), { nonce: "forged" }],
    ["without a nonce", (c: Record<string, unknown>) => signed(c), { nonce: undefined }],
    ["unsigned (alg none)", unsigned, {}],
    ["signed by a key not in the JWKS", (c: Record<string, unknown>) => signed(c, stranger.privateKey), {}],
    ["with a kid not in the JWKS", (c: Record<string, unknown>) => signed(c, privateKey, "k2"), {}],
    ["not a JWT at all", () => "garbage", {}],
    [
      "for several audiences without azp",
      (c: Record<string, unknown>) => signed(c),
      { aud: ["regauth", "other"] },
    ],
    [
      "for several audiences with another azp",
      (c: Record<string, unknown>) => signed(c),
      { aud: ["regauth", "other"], azp: "other" },
    ],
    [
      "HMAC-signed with the client secret (HS256: not on the allow-list)",
      (c: Record<string, unknown>) =>
        new SignJWT(c).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode("s")),
      {},
    ],
    ["without a subject", (c: Record<string, unknown>) => signed(c), { sub: undefined }],
  ] as const)("refuses an ID token %s", async (_name, make, change) => {
    const result = await attempt(make, change);
    expect(result.kind).toBe("refused");
  });
});
