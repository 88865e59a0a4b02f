/**
 * The OpenID Connect relying party (issue 15 item 1), on oauth4webapi: the authorization-code flow
 * with PKCE (S256, RFC 7636), `state` and `nonce`; the ID token's signature checked against the
 * provider's JWKS and its iss, aud, exp, iat (60 s skew), nonce and alg (an allow-list of
 * asymmetric algorithms: never `none`). Plain functions over plain data; no HTTP framework here.
 * Refusals are values (`{ kind: "refused" }`), a provider that cannot be reached is an error.
 */
import { readFileSync } from "node:fs";
import * as oauth from "oauth4webapi";
import { declaredLengthExceeds, readAtMost } from "../streams/read-at-most.ts";
import type { OidcProviderConfig } from "./config-schema.ts";

/** OIDC Core §3.1.3.7 leaves the tolerance to us; a minute covers ordinary clock drift. */
export const CLOCK_TOLERANCE_SECONDS = 60;
/** Every request to the provider gives up after this long. */
export const PROVIDER_TIMEOUT_MS = 10_000;
/**
 * Every answer of the provider (discovery, JWKS, token, userinfo) is read at most this far: real
 * ones are a few kB (a JWKS with a dozen keys, an ID token with a few hundred groups). A larger
 * or endless one is a broken or hostile server: out of reach, never held in memory whole.
 */
export const MAX_PROVIDER_ANSWER_BYTES = 1024 * 1024;

/** The provider could not be asked: a network error, a timeout, an answer too large. */
export class ProviderUnreachable extends Error {}

/**
 * The fetch of every request to the provider (oauth4webapi's customFetch): the body is read
 * here, bounded, under the request's timeout signal, so a slow or huge answer ends as
 * ProviderUnreachable instead of a refusal (a network TypeError) or an unclassified crash.
 */
async function boundedFetch(url: string, init: RequestInit): Promise<Response> {
  const tooLarge = () => new ProviderUnreachable(`the answer is over ${MAX_PROVIDER_ANSWER_BYTES} bytes`);
  try {
    const response = await fetch(url, init);
    if (declaredLengthExceeds(response.headers, MAX_PROVIDER_ANSWER_BYTES)) {
      void response.body?.cancel().catch(() => {});
      throw tooLarge();
    }
    const body = await readAtMost(response.body, MAX_PROVIDER_ANSWER_BYTES, tooLarge);
    // 204, 205 and 304 may carry no body at all (the Response constructor refuses one).
    return new Response(body.length === 0 ? null : body, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  } catch (error) {
    if (error instanceof ProviderUnreachable) throw error;
    throw new ProviderUnreachable(error instanceof Error ? error.message : String(error));
  }
}

/**
 * Why a discovered endpoint may not be used, or null: each must be https, or, for a loopback
 * issuer (insecure), http on loopback too. oauth4webapi checks only the ones it calls itself
 * and, with allowInsecureRequests, not even those: a loopback issuer's document could otherwise
 * send the client secret in clear to any host, and the authorization endpoint (the browser goes
 * there) is not checked by it at all.
 */
export function endpointProblem(as: oauth.AuthorizationServer, insecure: boolean): string | null {
  const endpoints = ["authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"] as const;
  for (const name of endpoints) {
    const value = as[name];
    if (value === undefined) continue;
    const url = typeof value === "string" ? URL.parse(value) : null;
    const allowed =
      url !== null &&
      (url.protocol === "https:" || (insecure && url.protocol === "http:" && isLoopback(url)));
    if (!allowed)
      return `the discovery document's ${name} must be an https URL${insecure ? " (or http on loopback)" : ""}`;
  }
  return null;
}

export interface OidcProvider {
  config: OidcProviderConfig;
  displayName: string;
  redirectUrl: string;
  /** Discovered once, then cached; a failed discovery is retried at the next sign-in. */
  server(): Promise<oauth.AuthorizationServer>;
  client: oauth.Client;
  clientAuth: oauth.ClientAuth;
  /** Loopback issuers may be http (tests, a provider on the same host); everything else https. */
  insecure: boolean;
}

function isLoopback(url: URL): boolean {
  return url.hostname === "127.0.0.1" || url.hostname === "[::1]" || url.hostname === "localhost";
}

export function clientSecretOf(config: OidcProviderConfig): string {
  if (config.client_secret !== undefined) return config.client_secret;
  if (config.client_secret_file !== undefined)
    return readFileSync(config.client_secret_file, "utf8").replace(/\r?\n$/, "");
  throw new Error(`identity_providers.oidc ${config.name}: client_secret or client_secret_file is required`);
}

/** Why this provider's section cannot work, or null (checked at start-up, beside the schema). */
export function providerConfigProblem(
  config: OidcProviderConfig,
  publicUrl: string | undefined,
): string | null {
  if ((config.client_secret === undefined) === (config.client_secret_file === undefined))
    return "give exactly one of client_secret and client_secret_file";
  const issuer = new URL(config.issuer);
  if (issuer.protocol !== "https:" && !isLoopback(issuer))
    return "issuer must be an https URL (http only on loopback)";
  if (config.redirect_url === undefined && publicUrl === undefined)
    return "give redirect_url, or identity_providers.public_url to derive it";
  const reserved = Object.keys(config.authorization_params ?? {}).filter((k) => FLOW_PARAMETERS.has(k));
  if (reserved.length > 0) return `authorization_params cannot set ${reserved.join(", ")} (the flow's own)`;
  return null;
}

export function redirectUrlOf(
  config: OidcProviderConfig,
  publicUrl: string | undefined,
  pathPrefix: string,
): string {
  return config.redirect_url ?? `${publicUrl}${pathPrefix}/sign-in/oidc/${config.name}/callback`;
}

export function makeProvider(
  config: OidcProviderConfig,
  publicUrl: string | undefined,
  pathPrefix: string,
): OidcProvider {
  const issuer = new URL(config.issuer);
  const insecure = issuer.protocol === "http:" && isLoopback(issuer);
  let discovered: Promise<oauth.AuthorizationServer> | null = null;
  const client: oauth.Client = {
    client_id: config.client_id,
    // The alg allow-list: oauth4webapi refuses an ID token whose header names any other (`none` too).
    // (oauth4webapi takes an array here too, though its type says string.)
    id_token_signed_response_alg: [...config.id_token_algorithms] as unknown as string,
    [oauth.clockTolerance]: CLOCK_TOLERANCE_SECONDS,
  };
  return {
    config,
    displayName: config.display_name ?? config.name,
    redirectUrl: redirectUrlOf(config, publicUrl, pathPrefix),
    client,
    clientAuth: oauth.ClientSecretBasic(clientSecretOf(config)),
    insecure,
    server() {
      discovered ??= (async () => {
        const response = await oauth.discoveryRequest(issuer, requestOptions(insecure));
        const as = await oauth.processDiscoveryResponse(issuer, response);
        const problem = endpointProblem(as, insecure);
        if (problem) throw new Error(`provider ${config.name}: ${problem}`);
        return as;
      })();
      discovered.catch(() => {
        discovered = null;
      });
      return discovered;
    },
  };
}

function requestOptions(insecure: boolean) {
  return {
    [oauth.allowInsecureRequests]: insecure,
    [oauth.customFetch]: boundedFetch,
    signal: AbortSignal.timeout(PROVIDER_TIMEOUT_MS),
  };
}

/** The authorization URL's parameters authorization_params cannot override. */
export const FLOW_PARAMETERS: ReadonlySet<string> = new Set([
  "client_id",
  "redirect_uri",
  "response_type",
  "response_mode",
  "scope",
  "state",
  "nonce",
  "code_challenge",
  "code_challenge_method",
  "request",
  "request_uri",
]);

/** What the browser's short-lived flow cookie carries, sealed (src/identity/service.ts): used once. */
export interface PendingSignIn {
  provider: string;
  state: string;
  nonce: string;
  codeVerifier: string;
  next: string;
  createdAtUnix: number;
}

export async function startSignIn(
  provider: OidcProvider,
  next: string,
  nowUnix: number,
): Promise<{ url: URL; pending: PendingSignIn }> {
  const as = await provider.server();
  if (as.authorization_endpoint === undefined)
    throw new Error(`provider ${provider.config.name} has no authorization_endpoint`);
  const codeVerifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const nonce = oauth.generateRandomNonce();
  const url = new URL(as.authorization_endpoint);
  const scopes = new Set(["openid", ...provider.config.scopes]);
  url.searchParams.set("client_id", provider.config.client_id);
  url.searchParams.set("redirect_uri", provider.redirectUrl);
  url.searchParams.set("response_type", "code");
  url.searchParams.set("scope", [...scopes].join(" "));
  url.searchParams.set("code_challenge", await oauth.calculatePKCECodeChallenge(codeVerifier));
  url.searchParams.set("code_challenge_method", "S256");
  url.searchParams.set("state", state);
  url.searchParams.set("nonce", nonce);
  // offline_access needs the consent prompt at most providers (OIDC Core §11).
  if (scopes.has("offline_access")) url.searchParams.set("prompt", "consent");
  // The operator's extras (Google's access_type=offline), never over the flow's own parameters.
  for (const [key, value] of Object.entries(provider.config.authorization_params ?? {}))
    if (!FLOW_PARAMETERS.has(key)) url.searchParams.set(key, value);
  return {
    url,
    pending: { provider: provider.config.name, state, nonce, codeVerifier, next, createdAtUnix: nowUnix },
  };
}

export interface ProviderIdentity {
  issuer: string;
  subject: string;
  claims: Record<string, unknown>;
  refreshToken: string | null;
}

export type SignInResult = { kind: "ok"; identity: ProviderIdentity } | { kind: "refused"; reason: string };

/**
 * The callback: the state must match the pending sign-in's, the code is exchanged with the PKCE
 * verifier, and the ID token must be signed by a key of the provider's JWKS with an allowed alg
 * and carry our nonce. Any mismatch is a refusal with a reason for the log; the browser is told
 * less.
 */
export async function finishSignIn(
  provider: OidcProvider,
  pending: PendingSignIn,
  callbackUrl: URL,
): Promise<SignInResult> {
  const as = await provider.server();
  let params: URLSearchParams;
  try {
    params = oauth.validateAuthResponse(as, provider.client, callbackUrl, pending.state);
  } catch (error) {
    return refusal(error);
  }
  try {
    const response = await oauth.authorizationCodeGrantRequest(
      as,
      provider.client,
      provider.clientAuth,
      params,
      provider.redirectUrl,
      pending.codeVerifier,
      requestOptions(provider.insecure),
    );
    // A provider's outage is not the person's refusal: the page says it cannot be reached.
    if (response.status >= 500)
      throw new ProviderUnreachable(`the token endpoint answered ${response.status}`);
    const tokens = await oauth.processAuthorizationCodeResponse(as, provider.client, response, {
      expectedNonce: pending.nonce,
      requireIdToken: true,
    });
    return await identityFrom(provider, as, response, tokens);
  } catch (error) {
    return refusal(error);
  }
}

async function identityFrom(
  provider: OidcProvider,
  as: oauth.AuthorizationServer,
  response: Response,
  tokens: oauth.TokenEndpointResponse,
): Promise<SignInResult> {
  // The token endpoint is a direct TLS channel (OIDC Core §3.1.3.7 allows skipping the
  // signature there); we check it anyway, against the JWKS, as issue 15 asks.
  await oauth.validateApplicationLevelSignature(as, response, requestOptions(provider.insecure));
  const claims = oauth.getValidatedIdTokenClaims(tokens);
  if (!claims) return { kind: "refused", reason: "the provider returned no ID token" };
  // oauth4webapi checks exp and nbf; an iat from the future is a forged or broken token too
  // (OIDC Core §3.1.3.7 item 10 lets the client reject it).
  if (claims.iat > Math.floor(Date.now() / 1000) + CLOCK_TOLERANCE_SECONDS)
    return { kind: "refused", reason: "the ID token's iat is in the future" };
  const userinfo = await userinfoClaims(provider, as, tokens, claims);
  if ("refused" in userinfo) return { kind: "refused", reason: userinfo.refused };
  const merged: Record<string, unknown> = { ...userinfo.claims, ...claims };
  return {
    kind: "ok",
    identity: {
      issuer: claims.iss,
      subject: claims.sub,
      claims: merged,
      refreshToken: tokens.refresh_token ?? null,
    },
  };
}

/** The claims the rules read: the account's name, the address, the groups, the labels. */
function neededClaims(config: OidcProviderConfig): string[] {
  const needed = [config.user_claim, config.groups_claim, ...config.labels_from_claims];
  if (config.allowed_email_domains || config.user_claim === "email") needed.push("email", "email_verified");
  return needed;
}

/**
 * Some providers keep claims out of the ID token when an access token is issued too (OIDC Core
 * §5.4; oidc-provider's default, recent Authelia): when one the rules read is missing, the
 * userinfo endpoint is asked with the access token, and its `sub` must be the ID token's
 * (§5.3.2). The ID token's own claims win over userinfo's. A userinfo call that fails does not
 * let the sign-in go on without those claims: a group, or a label an ACL entry denies by
 * (actions: []), would silently be missing. Out of reach (or 5xx): ProviderUnreachable; refused
 * or broken: the reason (the sign-in is refused).
 */
async function userinfoClaims(
  provider: OidcProvider,
  as: oauth.AuthorizationServer,
  tokens: oauth.TokenEndpointResponse,
  idClaims: oauth.IDToken,
): Promise<{ claims: Record<string, unknown> } | { refused: string }> {
  if (as.userinfo_endpoint === undefined || !tokens.access_token) return { claims: {} };
  if (neededClaims(provider.config).every((claim) => idClaims[claim] !== undefined)) return { claims: {} };
  const response = await oauth.userInfoRequest(
    as,
    provider.client,
    tokens.access_token,
    requestOptions(provider.insecure),
  );
  if (response.status >= 500) throw new ProviderUnreachable(`userinfo answered ${response.status}`);
  try {
    const info = await oauth.processUserInfoResponse(as, provider.client, idClaims.sub, response);
    // Never the identity's own claims from there.
    const { iss: _iss, sub: _sub, aud: _aud, ...rest } = info as Record<string, unknown>;
    return { claims: rest };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { refused: `userinfo refused: ${reason}`.slice(0, 300) };
  }
}

/**
 * The re-check (revalidate_after_seconds): a refresh token grant. A provider that removed the user
 * or revoked the grant answers invalid_grant (a refusal); a new ID token, when it comes, must be
 * for the same subject and its claims replace the old ones (groups may have changed).
 */
export async function recheck(
  provider: OidcProvider,
  refreshToken: string,
  subject: string,
): Promise<SignInResult | { kind: "unreachable"; reason: string }> {
  let as: oauth.AuthorizationServer;
  try {
    as = await provider.server();
  } catch (error) {
    return { kind: "unreachable", reason: error instanceof Error ? error.message : String(error) };
  }
  let response: Response;
  try {
    response = await oauth.refreshTokenGrantRequest(
      as,
      provider.client,
      provider.clientAuth,
      refreshToken,
      requestOptions(provider.insecure),
    );
  } catch (error) {
    return { kind: "unreachable", reason: error instanceof Error ? error.message : String(error) };
  }
  if (response.status >= 500)
    return { kind: "unreachable", reason: `the provider answered ${response.status}` };
  try {
    const tokens = await oauth.processRefreshTokenResponse(as, provider.client, response);
    if (tokens.id_token === undefined) {
      // OIDC Core §12.2: a refresh need not bring a new ID token (Google's often does not). The
      // grant living is not enough when the rules name groups or domains: the user may have left
      // the allowed group. Their current claims then come from userinfo, for the same subject.
      const claims = await refreshedUserinfo(provider, as, tokens, subject);
      if (claims.kind !== "ok") return claims;
      return {
        kind: "ok",
        identity: {
          issuer: as.issuer,
          subject,
          claims: claims.claims,
          refreshToken: tokens.refresh_token ?? refreshToken,
        },
      };
    }
    const result = await identityFrom(provider, as, response, tokens);
    if (result.kind === "ok") {
      if (result.identity.subject !== subject)
        return { kind: "refused", reason: "the refreshed ID token is for another subject" };
      result.identity.refreshToken ??= refreshToken;
    }
    return result;
  } catch (error) {
    // The JWKS out of reach, or our own client refused (401 with a challenge, RFC 6749 §5.2
    // invalid_client): nothing said about the user, so postponed (max_unchecked_seconds caps it),
    // and never a throw that would end the sweep for every other identity.
    if (error instanceof ProviderUnreachable) return { kind: "unreachable", reason: error.message };
    if (error instanceof oauth.WWWAuthenticateChallengeError)
      return { kind: "unreachable", reason: `the provider refused regauth's client (${error.status})` };
    return refusal(error);
  }
}

/** Whether admission reads claims that can change at the provider (groups, the address's domain). */
function hasMembershipRules(config: OidcProviderConfig): boolean {
  return config.allowed_groups !== undefined || config.allowed_email_domains !== undefined;
}

/**
 * The user's current claims after a refresh without an ID token: userinfo with the new access
 * token (its `sub` must be the link's). Without a userinfo endpoint, the rules that read
 * membership cannot be re-checked, and access ends rather than outliving a removal from the group.
 */
export async function refreshedUserinfo(
  provider: OidcProvider,
  as: oauth.AuthorizationServer,
  tokens: oauth.TokenEndpointResponse,
  subject: string,
): Promise<
  | { kind: "ok"; claims: Record<string, unknown> }
  | { kind: "refused"; reason: string }
  | { kind: "unreachable"; reason: string }
> {
  if (as.userinfo_endpoint === undefined || !tokens.access_token) {
    return hasMembershipRules(provider.config)
      ? {
          kind: "refused",
          reason:
            "the refresh brought no ID token and the provider has no userinfo endpoint: membership cannot be re-checked",
        }
      : { kind: "ok", claims: {} };
  }
  let response: Response;
  try {
    response = await oauth.userInfoRequest(
      as,
      provider.client,
      tokens.access_token,
      requestOptions(provider.insecure),
    );
  } catch (error) {
    return { kind: "unreachable", reason: error instanceof Error ? error.message : String(error) };
  }
  if (response.status >= 500) return { kind: "unreachable", reason: `userinfo answered ${response.status}` };
  try {
    const info = await oauth.processUserInfoResponse(as, provider.client, subject, response);
    const { iss: _iss, sub: _sub, aud: _aud, ...rest } = info as Record<string, unknown>;
    // An empty answer still says who it is (sub): the rules then judge the claims it lacks.
    return { kind: "ok", claims: { ...rest, sub: subject } };
  } catch (error) {
    const refused = refusal(error);
    return refused.kind === "refused" ? refused : { kind: "refused", reason: "userinfo refused" };
  }
}

/**
 * A refusal for what the provider or the callback said; ProviderUnreachable (and anything
 * unexpected) is thrown on: the sign-in page says the provider cannot be reached.
 */
function refusal(error: unknown): SignInResult {
  if (error instanceof ProviderUnreachable) throw error;
  // A callback carrying an id_token or token (implicit or hybrid flow), which we never asked for.
  if (error instanceof oauth.UnsupportedOperationError) return { kind: "refused", reason: error.message };
  if (error instanceof oauth.WWWAuthenticateChallengeError)
    return { kind: "refused", reason: `the provider refused regauth's client (${error.status})` };
  if (error instanceof oauth.ResponseBodyError)
    return { kind: "refused", reason: `${error.error}: ${error.error_description ?? ""}`.trim() };
  if (error instanceof oauth.AuthorizationResponseError)
    return { kind: "refused", reason: `${error.error}: ${error.error_description ?? ""}`.trim() };
  if (error instanceof oauth.OperationProcessingError || error instanceof TypeError)
    return { kind: "refused", reason: error.message };
  throw error;
}
