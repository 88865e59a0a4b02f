/**
 * The token request, start to end: authenticate → authorize → sign → record. Everything
 * HTTP-specific has been peeled off by src/http/token-route.ts; this is plain data in, plain data
 * out. Recording (the audit log, src/audit/token-audit.ts) queues and never waits.
 */
import type { ClientIp } from "./acl.ts";
import {
  type AuthnContext,
  type AuthnDecision,
  type Authenticator,
  authenticate,
  type Credentials,
  type Principal,
} from "./authn/authenticator.ts";
import type { AccessTokenKey } from "./access-tokens/key.ts";
import { looksLikeAccessToken } from "./access-tokens/secret.ts";
import type { Registrar, RegistrationOutcome } from "./accounts/registration.ts";
import type { TokenAudit, TokenRequestFacts } from "./audit/token-audit.ts";
import type { PasswordVerifier } from "./authn/password-verifier.ts";
import type { FailureLatencyFloor } from "./authn/failure-latency.ts";
import type { InFlightLogins } from "./authn/in-flight-logins.ts";
import type { LoginAttempt, Throttle } from "./authn/throttle.ts";
import { type Authorizer, authorize } from "./authz/authorizer.ts";
import { BadRequest, keepsThrottleCharge, TooManyRequests, Unauthorized } from "./errors.ts";
import { log } from "./log.ts";
import { metrics } from "./metrics/recorder.ts";
import type { Scope } from "./scope.ts";
import type { LiveKeySet } from "./token/key-set.ts";
import type { SigningKey } from "./token/keys.ts";
import { claimedSubject, type RefreshRefusal, type RefreshTokens } from "./token/refresh-token.ts";
import { type Grant, signRegistryToken } from "./token/sign.ts";

export interface TokenIssuer {
  issuer: string;
  ttlSeconds: number;
  /** Accepted `service` values; null accepts any (docker_auth's behaviour). */
  services: ReadonlySet<string> | null;
  authenticators: readonly Authenticator[];
  authorizers: readonly Authorizer[];
  /** Signs when no key set is given (tests that build an issuer by hand). */
  signingKey: SigningKey;
  /** The rotating set (src/token/key-set.ts): the key that signs is the one current at issue time. */
  keySet?: LiveKeySet;
  verifier: PasswordVerifier;
  nowSeconds: () => number;
  /** Failed-login throttling for every authenticator; absent: none. */
  throttle?: Throttle;
  /** Registration by `docker login` when the whole chain answered "unknown"; absent: off. */
  registrar?: Registrar;
  /** Refresh tokens (docs/refresh-tokens.md); absent: none issued, every refresh grant refused. */
  refreshTokens?: RefreshTokens;
  /** Makes every failed login take at least a floor known at start (timing parity); absent: no padding. */
  failureLatency?: FailureLatencyFloor;
  /** Identical logins in flight share one authentication; absent: each runs its own. */
  inFlightLogins?: InFlightLogins<AuthnDecision>;
  /** Logins and token decisions in the audit log (src/audit/); absent: none recorded. */
  audit?: TokenAudit;
  /** The key access token secrets are hashed under, for the management layer; absent without a database. */
  accessTokenKey?: AccessTokenKey;
}

export interface TokenRequest {
  /** Null when the client sent no credentials (anonymous). */
  credentials: Credentials | null;
  /** The `account` parameter, when sent; it must name the authenticated user. */
  account: string | null;
  service: string;
  scopes: Scope[];
  ip: ClientIp | null;
  /** `client_id`, for the log only (token.md: free-form, for auditing). */
  clientId: string | null;
  /**
   * A refresh grant (oauth.md `grant_type=refresh_token`): this token replaces `credentials`,
   * which must then be null.
   */
  refreshToken?: string;
  /** The client asked for a refresh token (GET `offline_token=true`, POST `access_type=offline`). */
  wantsRefreshToken?: boolean;
}

export interface IssuedToken {
  token: string;
  /** For a refresh grant the one presented, unchanged (oauth.md; moby#39718); else a new one or none. */
  refreshToken?: string;
  expiresInSeconds: number;
  issuedAtSeconds: number;
  grants: Grant[];
}

/**
 * Longest `service` accepted. It becomes the token's `aud` verbatim, so without a bound one
 * request could mint a megabyte token (security.md §7.3 B10); registry service names are short.
 */
export const MAX_SERVICE_LENGTH = 255;
/** `client_id` is free-form and only logged (token.md); longer values are cut in the log. */
const MAX_LOGGED_CLIENT_ID_LENGTH = 100;
/** A refused request's scopes in the log; an issued token's are logged whole (the client authenticated). */
const MAX_LOGGED_SCOPES_LENGTH = 1000;
/** The client is told only this; the log says why (expired, password changed, ...). */
const REFRESH_REFUSED_MESSAGE = "the refresh token is invalid, expired or revoked; log in again";

/** Issues a token, or throws BadRequest (malformed) / Unauthorized (bad credentials) / TooManyRequests. */
export async function issueToken(issuer: TokenIssuer, request: TokenRequest): Promise<IssuedToken> {
  checkService(issuer, request.service);
  const credentials = request.credentials ?? { username: "", password: "" };
  // The throttle key: the user name, or for a refresh grant the account the token claims.
  const account =
    request.refreshToken === undefined ? credentials.username : claimedSubject(request.refreshToken);
  // For a refresh grant the account is known once the token is checked (below): a bad token is a
  // 401. An access token says whose it is, so its user name (and `account`) may be anything
  // (issue 10: as with GitHub's and GitLab's tokens); the name claimed is recorded.
  const isAccessTokenLogin = request.refreshToken === undefined && looksLikeAccessToken(credentials.password);
  if (request.refreshToken === undefined && !isAccessTokenLogin) checkAccountParameter(request, account);
  using attempt = await admitAttempt(issuer, request, credentials, account);
  const startedMs = performance.now();
  const facts = requestFacts(request, credentials);
  const context: AuthnContext = { ip: request.ip, isKnownGood: attempt?.isKnownGood ?? false };
  const { decision, refusal } = await identify(issuer, request, credentials, context).catch(
    (error: unknown) => {
      // Not answered, so refunded on dispose, unless the failure was a verdict of sorts.
      if (keepsThrottleCharge(error)) attempt?.failed();
      throw error;
    },
  );
  if (decision.kind !== "allow") {
    attempt?.failed();
    if (!facts.isAnonymous) issuer.audit?.loginRefused(facts, account, decidedBy(decision, refusal), refusal);
    throw await refuse(issuer, request, account, decision, refusal, startedMs);
  }
  const principal = decision.principal;
  // Settled before the account check: the credential (or refresh token) was valid either way.
  attempt?.succeeded();
  if (request.refreshToken !== undefined) checkAccountParameter(request, principal.account);
  issuer.audit?.loggedIn(facts, principal);
  const grants = await authorize(issuer.authorizers, principal, request.scopes, request.service, request.ip);
  const issued = sign(issuer, request, principal, grants);
  issuer.audit?.decided(facts, principal, grants);
  return issued;
}

function requestFacts(
  request: TokenRequest,
  credentials: Credentials,
): TokenRequestFacts & { isAnonymous: boolean } {
  return {
    service: request.service,
    scopes: request.scopes,
    ip: request.ip,
    clientId: request.clientId,
    claimedAccount: credentials.username,
    grant: request.refreshToken === undefined ? "password" : "refresh_token",
    isAnonymous:
      request.refreshToken === undefined && credentials.username === "" && credentials.password === "",
  };
}

/** The back-end that refused a login, for the audit log: "none" when no back-end knew the name. */
function decidedBy(
  decision: AuthnDecision & { kind: "deny" | "unknown" },
  refusal: RefreshRefusal | undefined,
): string {
  if (refusal !== undefined) return "refresh-token";
  return decision.kind === "deny" ? (decision.authenticator ?? "none") : "none";
}

function checkService(issuer: TokenIssuer, service: string): void {
  if (service === "") throw new BadRequest("the service parameter is required");
  if (service.length > MAX_SERVICE_LENGTH)
    throw new BadRequest(`the service parameter is longer than ${MAX_SERVICE_LENGTH} characters`);
  if (issuer.services && !issuer.services.has(service)) {
    throw new BadRequest(
      `unknown service ${JSON.stringify(service)}; this server issues tokens for ${[...issuer.services].join(", ")}`,
    );
  }
}

function checkAccountParameter(request: TokenRequest, actual: string): void {
  if (request.account !== null && request.account !== "" && request.account !== actual) {
    throw new BadRequest("the account parameter does not match the authenticated user");
  }
}

/**
 * Charges the throttle before anything is awaited, so parallel guesses cannot all pass one check
 * (a worker's throttle is the supervisor's, which charges in one step: src/serve/shared-throttle.ts);
 * the caller settles the attempt (`using`: a request that ends in an error instead is refunded).
 * Requests carrying a password or refresh token are guesses; anonymous ones are never throttled.
 */
async function admitAttempt(
  issuer: TokenIssuer,
  request: TokenRequest,
  credentials: Credentials,
  account: string,
): Promise<LoginAttempt | undefined> {
  // A name with an empty password is a guess too (and would otherwise probe names for free).
  const throttle =
    credentials.username === "" && credentials.password === "" && request.refreshToken === undefined
      ? undefined
      : issuer.throttle;
  const admission = await throttle?.admit(request.ip, account, request.refreshToken ?? credentials.password);
  if (admission?.kind !== "refused") return admission?.attempt;
  throttle?.reportRefusal(request.ip, account);
  metrics.throttled();
  throw new TooManyRequests(
    `too many failed logins; try again in ${admission.retryAfterSeconds} seconds`,
    admission.retryAfterSeconds,
  );
}

/** Who is asking: a redeemed refresh token, or the authentication chain (then registration). */
async function identify(
  issuer: TokenIssuer,
  request: TokenRequest,
  credentials: Credentials,
  context: AuthnContext,
): Promise<{ decision: AuthnDecision; refusal?: RefreshRefusal }> {
  if (request.refreshToken !== undefined) {
    const redeemed = issuer.refreshTokens?.redeem(
      request.refreshToken,
      request.service,
      issuer.nowSeconds(),
    ) ?? {
      kind: "deny",
      reason: "expired", // refresh_expiration is 0: every token issued before is over
    };
    if (redeemed.kind === "allow") return { decision: redeemed };
    return { decision: { kind: "deny", reason: REFRESH_REFUSED_MESSAGE }, refusal: redeemed.reason };
  }
  const authenticateOrRegister = async (): Promise<AuthnDecision> => {
    const decision = await authenticate(issuer.authenticators, credentials, context);
    // Registration needs a password: an empty one must not tell which names are free.
    if (
      decision.kind === "unknown" &&
      issuer.registrar &&
      credentials.username !== "" &&
      credentials.password !== ""
    ) {
      return registerByLogin(issuer, issuer.registrar, credentials, request, context);
    }
    // A name nobody knows costs what a known name's wrong password costs (timing parity); done
    // here so that identical requests in flight share this one hash too.
    if (decision.kind === "unknown") await issuer.verifier.verifyDummy(credentials.password, context);
    return decision;
  };
  const isAnonymous = credentials.username === "" && credentials.password === "";
  const decision =
    issuer.inFlightLogins && !isAnonymous
      ? await issuer.inFlightLogins.run(credentials, authenticateOrRegister)
      : await authenticateOrRegister();
  return { decision };
}

/**
 * A failed login: logs one line (never the refresh token itself), waits out the failure-latency
 * floor, and returns the 401 to throw.
 */
async function refuse(
  issuer: TokenIssuer,
  request: TokenRequest,
  account: string,
  decision: AuthnDecision & { kind: "deny" | "unknown" },
  refusal: RefreshRefusal | undefined,
  startedMs: number,
): Promise<Unauthorized> {
  // A token whose MAC did not verify names no one: what it claims is logged as such.
  const isForged = refusal === "malformed" || refusal === "bad signature";
  log.info("authentication failed", {
    ...(isForged ? { claimed_account: account } : { account }),
    ip: request.ip?.text,
    client_id: request.clientId?.slice(0, MAX_LOGGED_CLIENT_ID_LENGTH),
    service: request.service,
    // Anyone can send a refused request: its scopes are cut, as client_id is.
    scopes_asked: request.scopes.map(scopeText).join(" ").slice(0, MAX_LOGGED_SCOPES_LENGTH),
    ...(refusal ? { grant: "refresh_token", reason: refusal } : {}),
  });
  await issuer.failureLatency?.equalize(performance.now() - startedMs);
  return new Unauthorized(decision.kind === "deny" ? decision.reason : undefined);
}

function sign(
  issuer: TokenIssuer,
  request: TokenRequest,
  principal: Principal,
  grants: Grant[],
): IssuedToken {
  const issuedAtSeconds = issuer.nowSeconds();
  const key = issuer.keySet ? issuer.keySet.signingKeyAt(issuedAtSeconds) : issuer.signingKey;
  const token = signRegistryToken(key, {
    issuer: issuer.issuer,
    subject: principal.account,
    audience: request.service,
    access: grants,
    issuedAtSeconds,
    ttlSeconds: issuer.ttlSeconds,
  });
  // Never for an access token (issue 10): it is already the long-lived credential, revocable on
  // its own; a refresh token would outlive its revocation (artifact-keeper PR #1166 does the same).
  const newRefreshToken =
    request.refreshToken === undefined && request.wantsRefreshToken && principal.accessToken === undefined
      ? issuer.refreshTokens?.issue(principal, request.service, issuedAtSeconds)
      : undefined;
  // One line per token decision at info (issue 12, item 5): who, for what, what was asked and granted.
  log.info("token issued", {
    account: principal.account,
    authenticator:
      request.refreshToken === undefined
        ? principal.authenticator
        : `refresh_token(${principal.authenticator})`,
    ip: request.ip?.text,
    client_id: request.clientId?.slice(0, MAX_LOGGED_CLIENT_ID_LENGTH),
    service: request.service,
    scopes_asked: request.scopes.map(scopeText).join(" "),
    scopes_granted: grants.map(scopeText).join(" "),
    ...(principal.accessToken
      ? { token_id: principal.accessToken.id, claimed_account: request.account ?? "" }
      : {}),
    ...(newRefreshToken ? { refresh_token_issued: true } : {}),
  });
  const refreshTokenOut = request.refreshToken ?? newRefreshToken ?? undefined;
  return {
    token,
    expiresInSeconds: issuer.ttlSeconds,
    issuedAtSeconds,
    grants,
    ...(refreshTokenOut ? { refreshToken: refreshTokenOut } : {}),
  };
}

/**
 * Registration by `docker login` for a name no authenticator knows. Returns the decision to use
 * instead of "unknown": a new enabled account logs in at once; a new account awaiting approval
 * is refused with a message saying so; a name someone registered a moment earlier is an
 * ordinary login against their password.
 */
async function registerByLogin(
  issuer: TokenIssuer,
  registrar: Registrar,
  credentials: Credentials,
  request: TokenRequest,
  context: AuthnContext,
): Promise<AuthnDecision> {
  // An IPv6 /48 creates accounts like one address does (its 65,536 /64s each have a budget):
  // charged before the password is hashed, given back unless an account is created.
  const waitSeconds = (await issuer.throttle?.reserveRegistration(request.ip)) ?? 0;
  if (waitSeconds > 0) {
    metrics.throttled();
    throw new TooManyRequests(
      `too many accounts created from this network; try again in ${waitSeconds} seconds`,
      waitSeconds,
    );
  }
  let outcome: RegistrationOutcome | undefined;
  try {
    outcome = await registrar.register(credentials, issuer.nowSeconds());
  } finally {
    if (outcome?.kind !== "created") issuer.throttle?.releaseRegistration(request.ip);
  }
  switch (outcome.kind) {
    case "created":
      // Each new account spends from the address's failed-login budget: one address cannot
      // create accounts in bulk (100 at once, then one every 3 s by default).
      issuer.throttle?.chargeAddress(request.ip);
      log.info("account registered", {
        account: credentials.username,
        ip: request.ip?.text,
        awaiting_approval: !outcome.enabled,
      });
      if (!outcome.enabled) {
        return {
          kind: "deny",
          reason: `account ${credentials.username} was created and awaits approval by an administrator`,
        };
      }
      return {
        kind: "allow",
        principal: {
          account: credentials.username,
          labels: {},
          isAnonymous: false,
          authenticator: "registration",
        },
      };
    case "taken":
      return authenticate(issuer.authenticators, credentials, context);
    case "refused":
      return { kind: "deny", reason: outcome.reason };
  }
}

/** `type:name:actions`, as the client wrote it (scope.md); an empty grant has no actions. */
function scopeText(scope: { type: string; name: string; actions: readonly string[] }): string {
  return `${scope.type}:${scope.name}:${scope.actions.join(",")}`;
}
