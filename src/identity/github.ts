/**
 * GitHub OAuth app sign-in (issue 15 item 2). GitHub is not OpenID Connect: no ID token, so the
 * identity is what its API says with the user's token. The authorize link carries `state` and
 * PKCE (S256); the code is exchanged once; `GET /user` gives the login (the account name) and the
 * numeric id (the subject: logins can be renamed, ids cannot); organization membership
 * (`GET /orgs/ORG/members/LOGIN`, 204) and teams (`GET /user/teams`, paginated, with parents) are
 * checked at every sign-in and re-check, not only configured (docker_auth's gitlab_auth never
 * called its check, §2.3). GitHub Enterprise Server: web_url and api_url.
 */
import { readFileSync } from "node:fs";
import * as oauth from "oauth4webapi";
import type { GithubProviderConfig } from "./config-schema.ts";
import { declaredLengthExceeds, readAtMost } from "../streams/read-at-most.ts";
import type { PendingSignIn, ProviderIdentity } from "./oidc.ts";
import { PROVIDER_TIMEOUT_MS } from "./oidc.ts";

/** Team pages followed at most (100 teams a page). */
const MAX_TEAM_PAGES = 10;
const MAX_CODE_LENGTH = 512;
/**
 * An answer of GitHub's read at most: a page of 100 teams is about 250 kB. A bigger one (or an
 * endless one) is a broken or hostile server, not a user to judge: "unreachable".
 */
export const MAX_GITHUB_ANSWER_BYTES = 2 * 1024 * 1024;
/** A whole sign-in or re-check (up to 13 requests) gives up after this long. */
const CHECK_TIMEOUT_MS = 2 * PROVIDER_TIMEOUT_MS;
/** The scopes that let the token read private organization membership and teams (GitHub's scope docs). */
const ORG_READING_SCOPES = ["read:org", "write:org", "admin:org"];

export interface GithubProvider {
  config: GithubProviderConfig;
  displayName: string;
  redirectUrl: string;
  secret: string;
}

export function githubSecretOf(config: GithubProviderConfig): string {
  if (config.client_secret !== undefined) return config.client_secret;
  if (config.client_secret_file !== undefined)
    return readFileSync(config.client_secret_file, "utf8").replace(/\r?\n$/, "");
  throw new Error(
    `identity_providers.github ${config.name}: client_secret or client_secret_file is required`,
  );
}

export function makeGithubProvider(
  config: GithubProviderConfig,
  publicUrl: string | undefined,
  pathPrefix: string,
): GithubProvider {
  return {
    config,
    displayName: config.display_name ?? "GitHub",
    redirectUrl: config.redirect_url ?? `${publicUrl}${pathPrefix}/sign-in/github/${config.name}/callback`,
    secret: githubSecretOf(config),
  };
}

const trimSlash = (url: string) => url.replace(/\/+$/, "");

export async function startGithubSignIn(
  provider: GithubProvider,
  next: string,
  nowUnix: number,
): Promise<{ url: URL; pending: PendingSignIn }> {
  const codeVerifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = new URL(`${trimSlash(provider.config.web_url)}/login/oauth/authorize`);
  url.searchParams.set("client_id", provider.config.client_id);
  url.searchParams.set("redirect_uri", provider.redirectUrl);
  // Least privilege: GET /user needs no scope (public profile); read:org makes private
  // organization memberships and teams visible to the check, so only when there is one.
  if (provider.config.organization !== undefined) url.searchParams.set("scope", "read:org");
  url.searchParams.set("state", state);
  url.searchParams.set("code_challenge", await oauth.calculatePKCECodeChallenge(codeVerifier));
  url.searchParams.set("code_challenge_method", "S256");
  url.searchParams.set("allow_signup", "false");
  return {
    url,
    pending: { provider: provider.config.name, state, nonce: "", codeVerifier, next, createdAtUnix: nowUnix },
  };
}

export type GithubResult =
  | { kind: "ok"; identity: ProviderIdentity }
  | { kind: "refused"; reason: string }
  | { kind: "unreachable"; reason: string };

async function api(
  provider: GithubProvider,
  token: string,
  path: string,
  deadline: AbortSignal,
): Promise<Response> {
  return fetch(`${trimSlash(provider.config.api_url)}${path}`, {
    headers: {
      authorization: `Bearer ${token}`,
      accept: "application/vnd.github+json",
      "x-github-api-version": "2022-11-28",
      "user-agent": "regauth",
    },
    redirect: "manual",
    signal: AbortSignal.any([deadline, AbortSignal.timeout(PROVIDER_TIMEOUT_MS)]),
  });
}

/** The JSON of an answer, read at most MAX_GITHUB_ANSWER_BYTES; throws past that or on bad JSON. */
async function jsonOf(response: Response): Promise<unknown> {
  const tooLarge = () => new Error(`GitHub's answer is over ${MAX_GITHUB_ANSWER_BYTES} bytes`);
  if (declaredLengthExceeds(response.headers, MAX_GITHUB_ANSWER_BYTES)) {
    void response.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  const bytes = await readAtMost(response.body, MAX_GITHUB_ANSWER_BYTES, tooLarge);
  return JSON.parse(bytes.toString("utf8"));
}

/**
 * GitHub's rate limits answer 403 (primary: x-ratelimit-remaining 0; secondary: retry-after) or
 * 429. That says nothing about the user: "unreachable", never a refusal that ends access.
 */
function isRateLimited(response: Response): boolean {
  return (
    response.status === 429 ||
    (response.status === 403 &&
      (response.headers.get("x-ratelimit-remaining") === "0" || response.headers.has("retry-after")))
  );
}

export async function finishGithubSignIn(
  provider: GithubProvider,
  pending: PendingSignIn,
  callbackUrl: URL,
): Promise<GithubResult> {
  const params = callbackUrl.searchParams;
  // One value each, as oauth4webapi insists for OpenID Connect: with two, which one counts is a guess.
  if (["state", "code", "error"].some((key) => params.getAll(key).length > 1))
    return { kind: "refused", reason: "a callback parameter given twice" };
  if (params.get("state") !== pending.state) return { kind: "refused", reason: "wrong or missing state" };
  const error = params.get("error");
  if (error !== null) return { kind: "refused", reason: `GitHub answered ${error.slice(0, 100)}` };
  const code = params.get("code");
  if (!code || code.length > MAX_CODE_LENGTH) return { kind: "refused", reason: "no code" };
  const deadline = AbortSignal.timeout(CHECK_TIMEOUT_MS);
  let response: Response;
  let body: { access_token?: unknown; error?: unknown; scope?: unknown } | null;
  try {
    response = await fetch(`${trimSlash(provider.config.web_url)}/login/oauth/access_token`, {
      method: "POST",
      headers: {
        accept: "application/json",
        "content-type": "application/x-www-form-urlencoded",
        "user-agent": "regauth",
      },
      body: new URLSearchParams({
        client_id: provider.config.client_id,
        client_secret: provider.secret,
        code,
        redirect_uri: provider.redirectUrl,
        code_verifier: pending.codeVerifier,
      }),
      // Never followed: a 307 or 308 would post the client secret and the code to wherever it points.
      redirect: "manual",
      signal: AbortSignal.any([deadline, AbortSignal.timeout(PROVIDER_TIMEOUT_MS)]),
    });
    if (
      response.status >= 500 ||
      (response.status >= 300 && response.status < 400) ||
      isRateLimited(response)
    ) {
      void response.body?.cancel().catch(() => {});
      return { kind: "unreachable", reason: `GitHub's token endpoint answered ${response.status}` };
    }
    // GitHub answers errors (a used or expired code, a wrong verifier) with 200 and `error`.
    body = (await jsonOf(response).catch((error) => {
      if (error instanceof SyntaxError) return null;
      throw error;
    })) as typeof body;
  } catch (error) {
    return { kind: "unreachable", reason: error instanceof Error ? error.message : String(error) };
  }
  if (!body || typeof body !== "object" || typeof body.access_token !== "string" || body.access_token === "")
    return {
      kind: "refused",
      reason: `code exchange refused: ${String(body?.error ?? response.status).slice(0, 100)}`,
    };
  // The person may narrow the scopes at GitHub's consent page: without read:org private
  // memberships and teams look absent, and the refusal would wrongly say "not a member".
  if (provider.config.organization !== undefined && typeof body.scope === "string") {
    const granted = body.scope.split(/[,\s]+/);
    if (!ORG_READING_SCOPES.some((scope) => granted.includes(scope)))
      return {
        kind: "refused",
        reason: "the token was granted without read:org, so organization membership cannot be checked",
      };
  }
  return identityOf(provider, body.access_token, null, deadline);
}

/** The re-check: the stored token must still work and the user still pass the org and team checks. */
export function recheckGithub(
  provider: GithubProvider,
  token: string,
  subject: string,
): Promise<GithubResult> {
  return identityOf(provider, token, subject, AbortSignal.timeout(CHECK_TIMEOUT_MS));
}

/**
 * Who the token is, and their organization membership and teams. Only GitHub saying so is a
 * refusal: the token revoked (401), the user suspended (403 without a rate limit), not a member
 * (404, or 302 to the public list). A rate limit, a 5xx, a network error, a timeout, an answer
 * too large or not JSON is "unreachable" (the re-check is postponed, max_unchecked_seconds).
 */
async function identityOf(
  provider: GithubProvider,
  token: string,
  subject: string | null,
  deadline: AbortSignal,
): Promise<GithubResult> {
  try {
    const userResponse = await api(provider, token, "/user", deadline);
    if (userResponse.status === 401 || (userResponse.status === 403 && !isRateLimited(userResponse)))
      return { kind: "refused", reason: `GitHub refused the token (${userResponse.status})` };
    if (!userResponse.ok) return { kind: "unreachable", reason: `GET /user answered ${userResponse.status}` };
    const user = ((await jsonOf(userResponse)) ?? {}) as { login?: unknown; id?: unknown };
    if (typeof user.login !== "string" || typeof user.id !== "number")
      return { kind: "refused", reason: "GET /user gave no login and id" };
    if (subject !== null && String(user.id) !== subject)
      return { kind: "refused", reason: "the token is another user's now" };
    const org = provider.config.organization;
    const teams: string[] = [];
    let isMember = true;
    if (org !== undefined) {
      const member = await api(
        provider,
        token,
        `/orgs/${encodeURIComponent(org)}/members/${encodeURIComponent(user.login)}`,
        deadline,
      );
      void member.body?.cancel().catch(() => {});
      // 204: a member; 404, or 302 to the public members: not one (GitHub's "check organization
      // membership for a user"). 401: the token was revoked between the two calls.
      if (member.status === 401) return { kind: "refused", reason: "GitHub refused the token (401)" };
      if (member.status === 403 && !isRateLimited(member))
        return {
          kind: "refused",
          reason: "GitHub refused the membership check (403; the organization may restrict OAuth apps)",
        };
      if (member.status !== 204 && member.status !== 404 && member.status !== 302)
        return { kind: "unreachable", reason: `membership check answered ${member.status}` };
      isMember = member.status === 204;
      for (let page = 1; isMember && page <= MAX_TEAM_PAGES; page++) {
        const response = await api(provider, token, `/user/teams?per_page=100&page=${page}`, deadline);
        if (!response.ok) {
          void response.body?.cancel().catch(() => {});
          return { kind: "unreachable", reason: `GET /user/teams answered ${response.status}` };
        }
        const list = (await jsonOf(response)) as {
          slug?: unknown;
          organization?: { login?: unknown };
          parent?: { slug?: unknown } | null;
        }[];
        if (!Array.isArray(list)) return { kind: "unreachable", reason: "GET /user/teams gave no list" };
        for (const team of list) {
          const teamOrg = team.organization?.login;
          if (typeof teamOrg !== "string" || teamOrg.toLowerCase() !== org.toLowerCase()) continue;
          if (typeof team.slug === "string") teams.push(team.slug);
          // A member of a child team is a member of its parent too (docker_auth PR #219).
          if (typeof team.parent?.slug === "string") teams.push(team.parent.slug);
        }
        if (!/rel="next"/.test(response.headers.get("link") ?? "")) break;
        // Cut short, the list could lack a team an ACL entry denies by label (`teams`): refused.
        if (page === MAX_TEAM_PAGES)
          return {
            kind: "refused",
            reason: `member of more than ${MAX_TEAM_PAGES * 100} teams: the list cannot be read whole`,
          };
      }
    }
    return {
      kind: "ok",
      identity: {
        issuer: trimSlash(provider.config.web_url),
        subject: String(user.id),
        // GitHub logins are case-insensitive; account names are lower case.
        claims: {
          login: user.login.toLowerCase(),
          organization_member: isMember,
          teams: [...new Set(teams)],
        },
        refreshToken: token,
      },
    };
  } catch (error) {
    return { kind: "unreachable", reason: error instanceof Error ? error.message : String(error) };
  }
}

/** Null when the user may sign in (organization and teams as identityOf found them), else why not. */
export function githubAdmissionProblem(
  config: GithubProviderConfig,
  claims: Record<string, unknown>,
): string | null {
  if (config.organization !== undefined && claims.organization_member !== true)
    return `Only members of the GitHub organization ${config.organization} may sign in here.`;
  if (!config.allowed_teams) return null;
  const teams = Array.isArray(claims.teams) ? claims.teams : [];
  return teams.some((t) => config.allowed_teams?.includes(t as string))
    ? null
    : `Only members of the ${config.organization} teams ${config.allowed_teams.join(", ")} may sign in here.`;
}
