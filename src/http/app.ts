/**
 * The HTTP application: routes, and the one place where errors become HTTP responses.
 * createApp builds it without listening, so tests drive it with `app.handle(request)`.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { Elysia } from "elysia";
import { storeFault, storeUnavailable } from "../db/store-errors.ts";
import {
  AppError,
  PayloadTooLarge,
  ServerBusy,
  StoreUnavailable,
  TooManyRequests,
  Unauthorized,
} from "../errors.ts";
import type { TokenIssuer } from "../issue-token.ts";
import { log } from "../log.ts";
import { CurrentIssuer } from "../reload/current-issuer.ts";
import { publishedJwks } from "../token/key-set.ts";
import type { MetricsExporter } from "../metrics/exporter.ts";
import { metrics, type TokenRefusalReason } from "../metrics/recorder.ts";
import { type ApiOptions, mountApi } from "./api/plugin.ts";
import { handleRegistryEvents, type RegistryEventsOptions } from "./registry-events-route.ts";
import { mountPages, type PagesOptions } from "./pages/plugin.ts";
import { PAGE_ROUTES } from "./pages/routes.ts";
import { type RealIpConfig, resolveClientIp } from "./request-parts.ts";
import { handleTokenRequest, isBodyTooLarge, MAX_REQUEST_BODY_BYTES } from "./token-route.ts";
import { workerLabel } from "../serve/worker-label.ts";

export interface AppOptions {
  /** A CurrentIssuer when the config can be reloaded while serving (src/reload/). */
  issuer: TokenIssuer | CurrentIssuer;
  pathPrefix: string;
  realIp: RealIpConfig;
  hsts: boolean;
  /** Realm for `WWW-Authenticate: Basic` on 401 (docker_auth uses token.issuer); a function follows reloads. */
  basicRealm: string | (() => string);
  /** The accounts database, named in the log when it cannot answer (src/db/store-errors.ts). */
  databasePath?: string;
  /**
   * The management API (docs/api.md), mounted at `${pathPrefix}/api/v1`; absent when it is off
   * or served on its own listener (createApiApp).
   */
  api?: ApiOptions;
  /** `${pathPrefix}/metrics`, when metrics.enabled (src/metrics/exporter.ts); absent: 404. */
  metrics?: MetricsExporter;
  /** Why the server cannot answer token requests now (database, keys), or null: /readyz. */
  readinessProblem?: () => string | null;
  /** `${pathPrefix}/registry/events`, the registry's notifications (issue 11); absent: 404. */
  registryEvents?: RegistryEventsOptions;
  /** The web interface at `${pathPrefix}/` (docs/web.md); absent when web.enabled is false. */
  pages?: PagesOptions;
}

export function createApp(options: AppOptions) {
  const prefix = options.pathPrefix;
  const extraHeaders: Record<string, string> = options.hsts
    ? { "strict-transport-security": "max-age=63072000; includeSubDomains" }
    : {};

  const current =
    options.issuer instanceof CurrentIssuer ? options.issuer : new CurrentIssuer(options.issuer);
  const tokenHandler = async ({
    request,
    server,
  }: {
    request: Request;
    server: { requestIP(r: Request): { address: string } | null } | null;
  }) => {
    const startedMs = performance.now();
    const ip = resolveClientIp(request.headers, server?.requestIP(request)?.address, options.realIp);
    let response: Response;
    try {
      // The issuer current when the request arrived answers it to the end, even across a reload.
      response = await current.use((issuer) => handleTokenRequest(issuer, request, ip));
    } catch (error) {
      const refusal = refusalOf(error);
      metrics.tokenRefused(refusal.reason);
      metrics.requestFinished("token", refusal.status, (performance.now() - startedMs) / 1000);
      throw error;
    }
    metrics.tokenIssued();
    metrics.requestFinished("token", response.status, (performance.now() - startedMs) / 1000);
    for (const [name, value] of Object.entries(extraHeaders)) response.headers.set(name, value);
    return response;
  };
  const json = (status: number, body: unknown) =>
    new Response(JSON.stringify(body), {
      status,
      headers: { "content-type": "application/json", "cache-control": "no-store", ...extraHeaders },
    });

  const app = withErrorRendering(new Elysia(), options, extraHeaders)
    // Both paths, as docker_auth serves them (/auth/token since its PR #397).
    .get(`${prefix}/auth`, tokenHandler, { parse: "none" })
    .post(`${prefix}/auth`, tokenHandler, { parse: "none" })
    .get(`${prefix}/auth/token`, tokenHandler, { parse: "none" })
    .post(`${prefix}/auth/token`, tokenHandler, { parse: "none" })
    // The published keys as an RFC 7517 JWK Set (issue 12 item 2); public, like the bundle.
    .get(
      `${prefix}/.well-known/jwks.json`,
      () =>
        new Response(JSON.stringify(publishedJwks(current.issuer)), {
          headers: { "content-type": "application/json", "cache-control": "max-age=60", ...extraHeaders },
        }),
    )
    // Alive: the process answers HTTP. Ready: it can also issue tokens (database and keys).
    .get(`${prefix}/healthz`, () => json(200, { status: "ok", ...workerLabel() }))
    .get(`${prefix}/readyz`, () => {
      const problem = options.readinessProblem?.() ?? null;
      return problem === null
        ? json(200, { status: "ready" })
        : json(503, { status: "unavailable", reason: problem });
    });
  // With the web interface, `/` is its start page (src/http/pages/); without, this one line.
  if (!options.pages)
    app.get(
      prefix === "" ? "/" : prefix,
      () =>
        new Response(`regauth: Docker Registry token server for ${realmOf(options)}\n`, {
          headers: extraHeaders,
        }),
    );
  const exporter = options.metrics;
  if (exporter)
    app.get(`${prefix}/metrics`, async ({ request }) => {
      if (
        exporter.bearerToken !== null &&
        !bearerMatches(request.headers.get("authorization"), exporter.bearerToken)
      )
        return new Response(
          '{"error":"unauthorized","error_description":"metrics need Authorization: Bearer"}',
          {
            status: 401,
            headers: {
              "content-type": "application/json",
              "www-authenticate": 'Bearer realm="metrics"',
              ...extraHeaders,
            },
          },
        );
      const { body, contentType } = await exporter.scrape();
      return new Response(body, {
        headers: { "content-type": contentType, "cache-control": "no-store", ...extraHeaders },
      });
    });
  if (options.api) mountApi(app, `${prefix}/api/v1`, options.api, extraHeaders);
  const registryEvents = options.registryEvents;
  if (registryEvents)
    app.post(
      `${prefix}/registry/events`,
      ({ request, server }) =>
        handleRegistryEvents(
          registryEvents,
          request,
          extraHeaders,
          server?.requestIP(request)?.address ?? null,
        ),
      { parse: "none" },
    );
  // `${prefix}` and `${prefix}/` are one route to Elysia (strictPath off): both open the interface.
  if (options.pages) mountPages(app, prefix, options.pages, PAGE_ROUTES, extraHeaders);
  return app;
}

/** Constant time whatever the lengths: both sides are hashed to 32 bytes first (security.md). */
function bearerMatches(header: string | null, expected: string): boolean {
  const presented = /^Bearer ([^\s]+)$/i.exec(header ?? "")?.[1] ?? "";
  const digest = (text: string) => createHash("sha256").update(text).digest();
  return timingSafeEqual(digest(presented), digest(expected)) && presented.length > 0;
}

/** A token request that ended in an error: why, for regauth_token_requests_refused_total, and its status. */
function refusalOf(error: unknown): { reason: TokenRefusalReason; status: number } {
  if (error instanceof StoreUnavailable || storeFault(error) !== null)
    return { reason: "unavailable", status: 503 };
  if (error instanceof TooManyRequests) return { reason: "throttled", status: 429 };
  if (error instanceof Unauthorized) return { reason: "unauthorized", status: 401 };
  if (error instanceof ServerBusy) return { reason: "busy", status: error.status };
  if (error instanceof PayloadTooLarge || isBodyTooLarge(error)) return { reason: "too_large", status: 413 };
  if (error instanceof AppError && error.status < 500) return { reason: "bad_request", status: error.status };
  return { reason: "error", status: error instanceof AppError ? error.status : 500 };
}

export type App = ReturnType<typeof createApp>;

/** The management API alone, for its own listener (`api.addr`). */
export function createApiApp(options: Omit<AppOptions, "issuer" | "api"> & { api: ApiOptions }) {
  const extraHeaders: Record<string, string> = options.hsts
    ? { "strict-transport-security": "max-age=63072000; includeSubDomains" }
    : {};
  const app = mountApi(
    withErrorRendering(new Elysia(), options, extraHeaders),
    `${options.pathPrefix}/api/v1`,
    options.api,
    extraHeaders,
  );
  // The web interface follows the API to its own listener (docs/web.md).
  if (options.pages) mountPages(app, options.pathPrefix, options.pages, PAGE_ROUTES, extraHeaders);
  return app;
}

function withErrorRendering<App extends Elysia>(
  app: App,
  options: Pick<AppOptions, "databasePath" | "basicRealm">,
  extraHeaders: Record<string, string>,
) {
  // Elysia applies a hook only to routes registered after it: onError must come first, or
  // errors thrown by the routes bypass it (plain-text bodies, no WWW-Authenticate on 401).
  app.onRequest(({ request }) => unparseableUrl(request, extraHeaders));
  return app.onError(({ error, code, request }) =>
    renderError(
      // A locked, full or failing database is a 503 with Retry-After, never a 500 (issue 9).
      storeUnavailable(error, options.databasePath ?? "regauth.db") ??
        // A body Bun refused while Elysia read it (a route that parses): 413, not a 500 (finding 11).
        (isBodyTooLarge(error)
          ? new PayloadTooLarge(`request body larger than ${MAX_REQUEST_BODY_BYTES} bytes`)
          : error),
      code,
      request,
      realmOf(options),
      extraHeaders,
    ),
  );
}

/**
 * Bun builds request.url from the Host header: without one (HTTP/1.0) or with one that is no host
 * (`[::1`, `a b`) it is no URL, and every new URL(request.url) threw, the error renderer's too:
 * Bun's bare 500 and a stack trace in the log. A client's mistake: 400 (review of issue 16).
 */
function unparseableUrl(request: Request, extraHeaders: Record<string, string>): Response | undefined {
  if (URL.parse(request.url) !== null) return undefined;
  const message = "malformed request: a Host header naming a host is required";
  return new Response(
    JSON.stringify({
      errors: [{ code: "BAD_REQUEST", message }],
      error: "bad_request",
      error_description: message,
    }),
    {
      status: 400,
      headers: {
        "content-type": "application/json",
        ...extraHeaders,
        "x-content-type-options": "nosniff",
        "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
      },
    },
  );
}

function realmOf(options: Pick<AppOptions, "basicRealm">): string {
  return typeof options.basicRealm === "function" ? options.basicRealm() : options.basicRealm;
}

/** Elysia's ValidationError, as `body.field: problem` (the API validates itself; this is the net). */
function validationMessage(error: unknown): string | undefined {
  const first = (error as { all?: { path?: string; message?: string }[]; type?: string } | null)?.all?.[0];
  if (!first?.message) return undefined;
  const where = (error as { type?: string }).type ?? "request";
  return `${where}${(first.path ?? "").replaceAll("/", ".")}: ${first.message}`;
}

/**
 * Every error response. AppErrors carry their status and a message meant for the client;
 * anything else is our bug or a back-end failure, so the client gets a generic 500 and the
 * details go to the log. The body has the registry's error envelope plus OAuth2's `error` pair,
 * which containerd prints when a POST fails.
 */
function renderError(
  error: unknown,
  code: unknown,
  request: Request,
  realm: string,
  extraHeaders: Record<string, string>,
): Response {
  let status = 500;
  let errorCode = "INTERNAL_ERROR";
  let message = "internal error; see the server log";
  const headers: Record<string, string> = { "content-type": "application/json", ...extraHeaders };
  // An error body is data, never a document: not sniffed into HTML, nothing run, never framed
  // (the web interface's 404s and wrong methods land here too; review of issue 14).
  headers["x-content-type-options"] = "nosniff";
  headers["content-security-policy"] = "default-src 'none'; frame-ancestors 'none'";
  if (error instanceof AppError) {
    status = error.status;
    errorCode = error.code;
    message = error.message;
    if (error.status >= 500 && !(error instanceof ServerBusy))
      log.error(error.message, { cause: error.cause, path: new URL(request.url).pathname });
    if (error instanceof Unauthorized) headers["www-authenticate"] = `Basic realm=${JSON.stringify(realm)}`;
    if (error instanceof TooManyRequests || error instanceof ServerBusy)
      headers["retry-after"] = String(error.retryAfterSeconds);
    // The rest of the body is not read: the connection ends with this answer (RFC 9112 §9.6),
    // or a client still writing would wait on it.
    if (error instanceof PayloadTooLarge) headers.connection = "close";
  } else if (code === "NOT_FOUND") {
    status = 404;
    errorCode = "NOT_FOUND";
    message = "not found";
  } else if (code === "PARSE" || code === "VALIDATION" || code === "INVALID_COOKIE_SIGNATURE") {
    status = 400;
    errorCode = "BAD_REQUEST";
    message = validationMessage(error) ?? "malformed request";
  } else {
    log.error("request failed", {
      error: error instanceof Error ? (error.stack ?? error.message) : String(error),
      path: new URL(request.url).pathname,
    });
  }
  const body = {
    errors: [{ code: errorCode, message }],
    error: errorCode.toLowerCase(),
    error_description: message,
  };
  return new Response(JSON.stringify(body), { status, headers });
}
