/**
 * Review of the OpenID Connect relying party's callback and discovery/JWKS handling (issue 15),
 * against a crafted provider on loopback (a stand-in we can make misbehave; the real
 * oidc-provider of test/identity/oidc-provider.ts cannot be): RFC 9207 `iss` mix-ups between two
 * providers, callbacks with both code and error, repeated or hybrid parameters, a huge, slow or
 * unreachable JWKS, an unknown kid (how many refetches), a token endpoint answering a challenge,
 * and discovery documents whose endpoints leave https or loopback.
 */
import { afterAll, beforeEach, describe, expect, it } from "bun:test";
import { Value } from "@sinclair/typebox/value";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { OidcProviderConfig } from "../../src/identity/config-schema.ts";
import { finishSignIn, makeProvider, recheck, startSignIn } from "../../src/identity/oidc.ts";

const REDIRECT = "http://127.0.0.1:1/sign-in/oidc/a/callback";
const now = () => Math.floor(Date.now() / 1000);

type Jwks = (request: Request) => Response | Promise<Response>;

async function craftedProvider(options: { issSupported?: boolean } = {}) {
  const { publicKey, privateKey } = await generateKeyPair("RS256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256", use: "sig" };
  const hits = { jwks: 0, token: 0 };
  const state = {
    issuer: "",
    kid: "k1",
    nonce: "",
    jwks: (() => Response.json({ keys: [jwk] })) as Jwks,
    token: null as null | ((request: Request) => Response | Promise<Response>),
    userinfo: (() => Response.json({ sub: "alice", groups: ["contractors"] })) as Jwks,
    discovery: {} as Record<string, unknown>,
  };
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(request) {
      const url = new URL(request.url);
      const issuer = state.issuer;
      if (url.pathname === "/.well-known/openid-configuration")
        return Response.json({
          issuer,
          authorization_endpoint: `${issuer}/auth`,
          token_endpoint: `${issuer}/token`,
          jwks_uri: `${issuer}/jwks`,
          userinfo_endpoint: `${issuer}/userinfo`,
          response_types_supported: ["code"],
          id_token_signing_alg_values_supported: ["RS256"],
          authorization_response_iss_parameter_supported: options.issSupported === true,
          ...state.discovery,
        });
      if (url.pathname === "/jwks") {
        hits.jwks++;
        return state.jwks(request);
      }
      if (url.pathname === "/userinfo") return state.userinfo(request);
      if (url.pathname === "/token") {
        hits.token++;
        if (state.token) return state.token(request);
        const t = now();
        const idToken = await new SignJWT({
          iss: issuer,
          aud: "regauth",
          sub: "alice",
          iat: t,
          exp: t + 300,
          ...(state.nonce ? { nonce: state.nonce } : {}),
        })
          .setProtectedHeader({ alg: "RS256", kid: state.kid })
          .sign(privateKey);
        return Response.json(
          { access_token: "at", token_type: "Bearer", id_token: idToken, refresh_token: "rt" },
          { headers: { "cache-control": "no-store" } },
        );
      }
      return new Response("not found", { status: 404 });
    },
  });
  state.issuer = `http://127.0.0.1:${server.port}`;
  const rp = (name = "a", fields: Record<string, unknown> = {}) =>
    makeProvider(
      Value.Default(OidcProviderConfig, {
        ...fields,
        name,
        issuer: state.issuer,
        client_id: "regauth",
        client_secret: "the-client-secret",
        redirect_url: REDIRECT,
      }) as OidcProviderConfig,
      undefined,
      "",
    );
  const reset = () => {
    state.kid = "k1";
    state.jwks = () => Response.json({ keys: [jwk] });
    state.token = null;
    state.discovery = {};
    state.userinfo = () => Response.json({ sub: "alice", groups: ["contractors"] });
  };
  return { state, hits, rp, reset, stop: () => server.stop(true) };
}

async function started(rp: ReturnType<typeof makeProvider>, nonceInto: { nonce: string }) {
  const { pending } = await startSignIn(rp, "/", now());
  nonceInto.nonce = pending.nonce;
  return pending;
}

function callbackWith(query: string): URL {
  return new URL(`${REDIRECT}?${query}`);
}

describe("callbacks (RFC 9207 iss, code with error, repeated parameters)", async () => {
  const a = await craftedProvider({ issSupported: true });
  const b = await craftedProvider({ issSupported: true });
  afterAll(() => {
    a.stop();
    b.stop();
  });
  const rpA = a.rp("a");

  it("the control case: A's callback with A's iss signs in", async () => {
    const pending = await started(rpA, a.state);
    const iss = encodeURIComponent(a.state.issuer);
    const result = await finishSignIn(rpA, pending, callbackWith(`code=c&state=${pending.state}&iss=${iss}`));
    expect(result.kind).toBe("ok");
  });

  it.each([
    [
      "B's iss at A's callback (mix-up)",
      (s: string) => `code=c&state=${s}&iss=${encodeURIComponent(b.state.issuer)}`,
    ],
    ["no iss though A announces it", (s: string) => `code=c&state=${s}`],
    [
      "both code and error",
      (s: string) => `code=c&error=access_denied&state=${s}&iss=${encodeURIComponent(a.state.issuer)}`,
    ],
    ["two codes", (s: string) => `code=c&code=d&state=${s}&iss=${encodeURIComponent(a.state.issuer)}`],
    ["two states", (s: string) => `code=c&state=${s}&state=${s}&iss=${encodeURIComponent(a.state.issuer)}`],
    [
      "two iss",
      (s: string) =>
        `code=c&state=${s}&iss=${encodeURIComponent(a.state.issuer)}&iss=${encodeURIComponent(a.state.issuer)}`,
    ],
    [
      "an id_token (hybrid flow)",
      (s: string) => `code=c&id_token=x.y.z&state=${s}&iss=${encodeURIComponent(a.state.issuer)}`,
    ],
    ["a JARM response", (s: string) => `response=x.y.z&state=${s}`],
    [
      "an error with a 10 kB HTML description",
      (s: string) =>
        `error=access_denied&error_description=${encodeURIComponent(`<script>alert(1)</script>${"x".repeat(10_000)}`)}&state=${s}&iss=${encodeURIComponent(a.state.issuer)}`,
    ],
  ])("%s: refused before the token endpoint", async (_name, query) => {
    const pending = await started(rpA, a.state);
    a.hits.token = 0;
    const result = await finishSignIn(rpA, pending, callbackWith(query(pending.state)));
    expect(result.kind).toBe("refused");
    expect(a.hits.token).toBe(0);
  });
});

describe("the JWKS", async () => {
  const op = await craftedProvider();
  afterAll(() => op.stop());
  beforeEach(() => op.reset());

  it("a kid not in the JWKS: refused, and the JWKS fetched at most once a minute however often it comes", async () => {
    const rp = op.rp();
    op.state.kid = "k-unknown";
    op.hits.jwks = 0;
    for (let i = 0; i < 5; i++) {
      const pending = await started(rp, op.state);
      const result = await finishSignIn(rp, pending, callbackWith(`code=c&state=${pending.state}`));
      expect(result.kind).toBe("refused");
    }
    expect(op.hits.jwks).toBe(1);
  });

  it("a 5 MB JWKS is not read whole: the sign-in fails as the provider out of reach", async () => {
    const rp = op.rp();
    op.state.jwks = () =>
      new Response(`{"keys":[],"pad":"${"x".repeat(5 * 1024 * 1024)}"}`, {
        headers: { "content-type": "application/json" },
      });
    const pending = await started(rp, op.state);
    await expect(finishSignIn(rp, pending, callbackWith(`code=c&state=${pending.state}`))).rejects.toThrow();
  });

  it("an endless JWKS is cut off quickly", async () => {
    const rp = op.rp();
    op.state.jwks = () =>
      new Response(
        new ReadableStream({
          pull(controller) {
            controller.enqueue(new TextEncoder().encode(" ".repeat(64 * 1024)));
          },
        }),
      );
    const pending = await started(rp, op.state);
    const t = performance.now();
    await expect(finishSignIn(rp, pending, callbackWith(`code=c&state=${pending.state}`))).rejects.toThrow();
    expect(performance.now() - t).toBeLessThan(5000);
  });
});

describe("the code exchange when the provider fails", async () => {
  const op = await craftedProvider();
  afterAll(() => op.stop());
  beforeEach(() => op.reset());

  it("a 503 from the token endpoint: the provider cannot be reached (502 page), not a refusal", async () => {
    op.state.token = () => Response.json({ error: "temporarily_unavailable" }, { status: 503 });
    const rp = op.rp();
    const pending = await started(rp, op.state);
    await expect(finishSignIn(rp, pending, callbackWith(`code=c&state=${pending.state}`))).rejects.toThrow();
  });

  it("a 400 invalid_grant (a used code) stays a refusal", async () => {
    op.state.token = () => Response.json({ error: "invalid_grant" }, { status: 400 });
    const rp = op.rp();
    const pending = await started(rp, op.state);
    const result = await finishSignIn(rp, pending, callbackWith(`code=c&state=${pending.state}`));
    expect(result).toMatchObject({ kind: "refused" });
  });
});

describe("the re-check when the provider misbehaves is unreachable, never a crash or a refusal", async () => {
  const op = await craftedProvider();
  afterAll(() => op.stop());
  beforeEach(() => op.reset());

  it("the JWKS out of reach (connection refused)", async () => {
    op.state.discovery = { jwks_uri: "http://127.0.0.1:1/jwks" };
    const result = await recheck(op.rp(), "rt", "alice");
    expect(result.kind).toBe("unreachable");
  });

  it("the token endpoint answering 401 with a WWW-Authenticate challenge (our client refused)", async () => {
    op.state.token = () =>
      Response.json(
        { error: "invalid_client" },
        { status: 401, headers: { "www-authenticate": 'Basic realm="op"' } },
      );
    const result = await recheck(op.rp(), "rt", "alice");
    expect(result.kind).toBe("unreachable");
  });

  it("a 5 MB token answer", async () => {
    op.state.token = () => new Response(`{"access_token":"x","pad":"${"x".repeat(5 * 1024 * 1024)}"}`);
    const result = await recheck(op.rp(), "rt", "alice");
    expect(result.kind).toBe("unreachable");
  });

  it("the control case: a good refresh is ok", async () => {
    const result = await recheck(op.rp(), "rt", "alice");
    expect(result.kind === "refused" ? result.reason : result.kind).toBe("ok");
  });
});

describe("discovery documents", async () => {
  const op = await craftedProvider();
  afterAll(() => op.stop());
  beforeEach(() => op.reset());

  it.each([
    ["a token endpoint on another host over http", { token_endpoint: "http://10.0.0.1/token" }],
    ["an authorization endpoint over http elsewhere", { authorization_endpoint: "http://evil.example/auth" }],
    ["a JWKS over http elsewhere", { jwks_uri: "http://evil.example/jwks" }],
    ["a userinfo endpoint over http elsewhere", { userinfo_endpoint: "http://evil.example/userinfo" }],
    ["an authorization endpoint that is not http at all", { authorization_endpoint: "javascript:alert(1)" }],
  ])("%s (loopback http issuer): refused, nothing sent there", async (_name, fields) => {
    op.state.discovery = fields;
    const rp = op.rp();
    await expect(startSignIn(rp, "/", now())).rejects.toThrow(/endpoint|jwks_uri|https/);
  });
});

describe("claims the rules read, missing from the ID token, come from userinfo or the sign-in fails", async () => {
  const op = await craftedProvider();
  afterAll(() => op.stop());
  beforeEach(() => op.reset());
  // The groups become labels: an ACL entry may deny by one (actions: []), so a silently missing
  // label could let someone in.
  const rp = () => op.rp("a", { labels_from_claims: ["groups"] });
  const attempt = async () => {
    const provider = rp();
    const pending = await started(provider, op.state);
    return finishSignIn(provider, pending, callbackWith(`code=c&state=${pending.state}`));
  };

  it("the control case: userinfo's groups are read", async () => {
    const result = await attempt();
    if (result.kind !== "ok") throw new Error(result.reason);
    expect(result.identity.claims.groups).toEqual(["contractors"]);
  });

  it("userinfo answering 503 or out of reach: the provider cannot be reached (not a sign-in without groups)", async () => {
    op.state.userinfo = () => new Response("down", { status: 503 });
    await expect(attempt()).rejects.toThrow();
    op.state.userinfo = () => new Response(`{"pad":"${"x".repeat(2 * 1024 * 1024)}"}`);
    await expect(attempt()).rejects.toThrow();
  });

  it.each([
    ["for another subject", () => Response.json({ sub: "mallory", groups: [] })],
    ["refusing the access token (401)", () => Response.json({ error: "invalid_token" }, { status: 401 })],
    ["not JSON", () => new Response("<html>", { headers: { "content-type": "text/html" } })],
  ])("userinfo %s: refused", async (_name, answer) => {
    op.state.userinfo = answer;
    expect((await attempt()).kind).toBe("refused");
  });
});
