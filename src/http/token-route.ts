/**
 * The token endpoint (distribution docs/spec/auth/token.md for GET, oauth.md for POST). This
 * module turns an HTTP request into a TokenRequest and an IssuedToken into JSON; the decisions
 * are in src/issue-token.ts.
 */
import { declaredLengthExceeds, readAtMost } from "../streams/read-at-most.ts";
import type { ClientIp } from "../acl.ts";
import type { Credentials } from "../authn/authenticator.ts";
import { BadRequest, PayloadTooLarge } from "../errors.ts";
import { type IssuedToken, issueToken, type TokenIssuer, type TokenRequest } from "../issue-token.ts";
import { MAX_SCOPES_PER_REQUEST, parseScopes } from "../scope.ts";
import { checkedCredentials, parseBasicAuthorization } from "./request-parts.ts";

const JSON_HEADERS = {
  "content-type": "application/json",
  // RFC 6749 §5.1: responses carrying tokens must not be cached.
  "cache-control": "no-store",
  pragma: "no-cache",
};

/** Longest request body we read (the POST form; token requests are tiny): Bun.serve's maxRequestBodySize. */
export const MAX_REQUEST_BODY_BYTES = 64 * 1024;

/** Handles GET and POST on the token path. Throws AppErrors; the app maps them. */
export async function handleTokenRequest(
  issuer: TokenIssuer,
  request: Request,
  ip: ClientIp | null,
): Promise<Response> {
  const query = new URL(request.url).searchParams;
  const basic = parseBasicAuthorization(request.headers.get("authorization"));
  if (request.method !== "POST") {
    const tokenRequest = toTokenRequest(query, null, basic, ip);
    // token.md: `offline_token=true` asks for a refresh token (docker login sends it).
    tokenRequest.wantsRefreshToken = single(query, "offline_token")?.toLowerCase() === "true";
    return tokenResponse(await issueToken(issuer, tokenRequest), false);
  }
  const contentType = request.headers.get("content-type") ?? "";
  if (!/^application\/x-www-form-urlencoded\b/i.test(contentType)) {
    throw new BadRequest(
      "POST to the token endpoint takes an application/x-www-form-urlencoded form (oauth.md)",
      "INVALID_REQUEST",
    );
  }
  const form = new URLSearchParams(await readBody(request));
  const grantType = single(form, "grant_type");
  let credentials = basic;
  if (grantType === "password" || grantType === null) {
    const username = single(form, "username");
    const password = single(form, "password");
    if (username !== null || password !== null) {
      const fromForm = checkedCredentials(username ?? "", password ?? "");
      if (basic && (basic.username !== fromForm.username || basic.password !== fromForm.password)) {
        throw new BadRequest(
          "credentials given both in the Authorization header and in the form, and they differ",
          "INVALID_REQUEST",
        );
      }
      credentials = fromForm;
    }
    if (grantType === "password" && (credentials === null || credentials.username === "")) {
      throw new BadRequest("grant_type=password needs username and password", "INVALID_REQUEST");
    }
  } else if (grantType === "refresh_token") {
    // oauth.md: the refresh token stands in for the credentials; a Basic header is ignored.
    const refreshToken = single(form, "refresh_token");
    if (refreshToken === null || refreshToken === "") {
      throw new BadRequest("grant_type=refresh_token needs refresh_token", "INVALID_REQUEST");
    }
    const tokenRequest = toTokenRequest(query, form, null, ip);
    tokenRequest.refreshToken = refreshToken;
    return tokenResponse(await issueToken(issuer, tokenRequest), true);
  } else {
    throw new BadRequest(
      `unsupported grant_type ${JSON.stringify(grantType.slice(0, 40))}`,
      "UNSUPPORTED_GRANT_TYPE",
    );
  }
  const tokenRequest = toTokenRequest(query, form, credentials, ip);
  // oauth.md: `access_type=offline` asks for a refresh token (nerdctl login, containerd).
  tokenRequest.wantsRefreshToken = param(query, form, "access_type") === "offline";
  return tokenResponse(await issueToken(issuer, tokenRequest), true);
}

function toTokenRequest(
  query: URLSearchParams,
  form: URLSearchParams | null,
  credentials: Credentials | null,
  ip: ClientIp | null,
): TokenRequest {
  const scopeValues = [...query.getAll("scope"), ...(form?.getAll("scope") ?? [])];
  // Count before parsing: a request with 10,000 scopes costs nothing beyond this check.
  if (scopeValues.length > MAX_SCOPES_PER_REQUEST) parseScopes(scopeValues);
  return {
    credentials,
    account: param(query, form, "account"),
    service: param(query, form, "service") ?? "",
    scopes: parseScopes(scopeValues),
    ip,
    clientId: param(query, form, "client_id"),
  };
}

/** A form field, else the query parameter; a parameter given twice is ambiguous and refused. */
function param(query: URLSearchParams, form: URLSearchParams | null, name: string): string | null {
  return (form ? single(form, name) : null) ?? single(query, name);
}

function single(params: URLSearchParams, name: string): string | null {
  const values = params.getAll(name);
  if (values.length > 1) throw new BadRequest(`parameter ${name} given more than once`);
  return values[0] ?? null;
}

function tokenResponse(issued: IssuedToken, isOAuth: boolean): Response {
  const body: Record<string, unknown> = {
    token: issued.token,
    access_token: issued.token,
    expires_in: issued.expiresInSeconds,
    issued_at: new Date(issued.issuedAtSeconds * 1000).toISOString(),
  };
  if (issued.refreshToken !== undefined) body.refresh_token = issued.refreshToken;
  if (isOAuth) {
    // oauth.md: `scope` is required in the POST response and lists what was granted.
    body.scope = issued.grants
      .filter((g) => g.actions.length > 0)
      .map((g) => `${g.type}${g.class ? `(${g.class})` : ""}:${g.name}:${g.actions.join(",")}`)
      .join(" ");
  }
  return new Response(JSON.stringify(body), { headers: JSON_HEADERS });
}

/**
 * The body as text. Bun refuses a body beyond maxRequestBodySize while it is read (a chunked
 * body has no Content-Length to refuse up front) with a plain Error; that is the client's
 * mistake, a 413, not a failure to log with a stack (review finding 11).
 */
async function readBody(request: Request): Promise<string> {
  // Our own bound too: Bun's is the largest of every route's (notifications.max_body_bytes, 8 MiB
  // by default), so the token route, which anyone may call, holds to its own while it reads.
  const tooLarge = () => new PayloadTooLarge(`request body larger than ${MAX_REQUEST_BODY_BYTES} bytes`);
  if (declaredLengthExceeds(request.headers, MAX_REQUEST_BODY_BYTES)) throw tooLarge();
  try {
    return (await readAtMost(request.body, MAX_REQUEST_BODY_BYTES, tooLarge)).toString("utf8");
  } catch (error) {
    if (isBodyTooLarge(error)) throw tooLarge();
    throw error;
  }
}

/** Bun's refusal of an oversized body (src/js/.../maxRequestBodySize: no error code, only this text). */
export function isBodyTooLarge(error: unknown): boolean {
  return error instanceof Error && /maxRequestBodySize/.test(error.message);
}
