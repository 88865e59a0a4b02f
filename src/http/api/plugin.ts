/**
 * The management API on Elysia (design §4): the only place that knows HTTP for it. Each handler
 * is thin: check the body's type and size → authenticate → parse and validate → call the
 * operation → return the view. Errors are thrown and become responses in src/http/app.ts
 * renderError, the one envelope.
 */
import type { Elysia } from "elysia";
import type { ClientIp } from "../../acl.ts";
import {
  BadRequest,
  NotFound,
  PayloadTooLarge,
  TooManyRequests,
  UnsupportedMediaType,
} from "../../errors.ts";
import type { AuditLog } from "../../audit/audit-log.ts";
import type { AccessTokenKeyRef, ManagementConfig, ManagementContext } from "../../management/context.ts";
import type { WebhookServices } from "../../webhooks/webhooks.ts";
import type { RegistryIndexAccess } from "../../registry-index/catalog.ts";
import { type RealIpConfig, resolveClientIp } from "../request-parts.ts";
import { type ApiAuthentication, authenticateApiCaller } from "./authenticate.ts";
import { readJsonBody } from "./json-body.ts";
import { API_ROUTES, type ApiRoute } from "./routes.ts";
import { validated } from "./validate.ts";

export const API_BASE_PATH = "/api/v1";
export const DEFAULT_MAX_BODY_BYTES = 65_536;

export interface ApiOptions extends ApiAuthentication {
  audit: AuditLog;
  config: ManagementConfig;
  maxBodyBytes: number;
  realIp: RealIpConfig;
  /** Outgoing webhooks' settings (src/webhooks/); absent: the webhook routes answer 503. */
  webhooks?: WebhookServices;
  /** The image index's pull checks and sync (issue 11; src/server.ts registryIndexAccess). */
  registryIndex?: RegistryIndexAccess;
}

const API_HEADERS = { "content-type": "application/json", "cache-control": "no-store" };

type PeerServer = { requestIP(r: Request): { address: string } | null } | null;

function queryObject(url: URL): Record<string, unknown> {
  const query: Record<string, unknown> = {};
  for (const [key, value] of url.searchParams) {
    if (Object.hasOwn(query, key)) throw new BadRequest(`query.${key}: given more than once`);
    // The numeric query fields; anything else stays a string for the schema to judge.
    query[key] = (key === "limit" || key === "after_id") && /^\d{1,15}$/.test(value) ? Number(value) : value;
  }
  return query;
}

function paramsObject(params: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(params))
    out[key] = key === "id" && /^[1-9]\d{0,14}$/.test(value) ? Number(value) : value;
  return out;
}

/** Refuses a body by its headers alone, before authentication and before reading a byte. */
function precheckBody(route: ApiRoute, request: Request, maxBytes: number): void {
  if (!route.body) return;
  const declared = request.headers.get("content-length");
  if (declared !== null && (!/^\d{1,15}$/.test(declared) || Number(declared) > maxBytes))
    throw new PayloadTooLarge(`the body is larger than ${maxBytes} bytes`);
  const type = (request.headers.get("content-type") ?? "").split(";")[0]?.trim().toLowerCase();
  if (type !== "application/json")
    throw new UnsupportedMediaType("the body must be JSON: send Content-Type: application/json");
}

function handlerFor(route: ApiRoute, options: ApiOptions, headers: Record<string, string>) {
  return async ({
    request,
    server,
    params,
  }: {
    request: Request;
    server: PeerServer;
    params: Record<string, string>;
  }): Promise<Response> => {
    precheckBody(route, request, options.maxBodyBytes);
    const ip = resolveClientIp(request.headers, server?.requestIP(request)?.address, options.realIp);
    // No credentials at all (not wrong ones): the routes that answer anonymous callers do.
    const isAnonymous = route.runAnonymous !== undefined && request.headers.get("authorization") === null;
    const actor = isAnonymous ? null : await authenticateApiCaller(options, request, ip);
    const url = new URL(request.url);
    const input = {
      params: route.params ? validated(route.params, paramsObject(params), "params") : {},
      query: route.query ? validated(route.query, queryObject(url), "query") : {},
      body: route.body
        ? validated(route.body, await readJsonBody(request, options.maxBodyBytes), "body")
        : undefined,
    };
    if (actor === null && route.runAnonymous) {
      const anonymous = {
        db: options.db,
        ip: ip?.text ?? "",
        audit: options.audit,
        accessTokenKey: options.accessTokenKey,
        config: options.config,
        nowUnix: Math.floor(Date.now() / 1000),
        ...(options.registryIndex ? { registryIndex: options.registryIndex } : {}),
      };
      const result = await route.runAnonymous(anonymous, input);
      return new Response(JSON.stringify(result), { status: route.status, headers });
    }
    if (actor === null) throw new Error("unreachable: a route without runAnonymous authenticates");
    const ctx: ManagementContext = {
      ...(options.registryIndex ? { registryIndex: options.registryIndex } : {}),
      db: options.db,
      actor,
      ip: ip?.text ?? "",
      audit: options.audit,
      accessTokenKey: options.accessTokenKey,
      config: options.config,
      nowUnix: Math.floor(Date.now() / 1000),
      passwords: {
        // current_password is a guess like any login: an API token must not be a way to try
        // passwords without the failed-login throttle (the same buckets as token requests).
        verify: (username, password, storedHash) =>
          throttledVerify(options, ip, username, password, storedHash),
        limited: (work) => options.verifier.limited(work),
      },
      ...(options.webhooks ? { webhooks: options.webhooks } : {}),
    };
    const result = await route.run(ctx, input);
    return new Response(JSON.stringify(result), { status: route.status, headers });
  };
}

export async function throttledVerify(
  options: ApiOptions,
  ip: ClientIp | null,
  username: string,
  password: string,
  storedHash: string,
): Promise<boolean> {
  const admission = await options.throttle?.admit(ip, username, password);
  if (admission?.kind === "refused")
    throw new TooManyRequests(
      `too many failed password checks; try again in ${admission.retryAfterSeconds} seconds`,
      admission.retryAfterSeconds,
    );
  using attempt = admission?.attempt;
  const ok = await options.verifier.verify(username, password, storedHash);
  if (ok) attempt?.succeeded();
  else attempt?.failed();
  return ok;
}

/**
 * Registers the API under `base` (`${path_prefix}/api/v1`) on `app`, which must already have the
 * onError hook (Elysia applies hooks to routes registered after them).
 */
export function mountApi<App>(
  target: App,
  base: string,
  options: ApiOptions,
  /** Headers every response carries (Strict-Transport-Security with server.hsts). */
  extraHeaders: Record<string, string> = {},
): App {
  const headers = { ...API_HEADERS, ...extraHeaders };
  // Elysia's types track every route; this table is typed by its own schemas instead.
  const app = target as unknown as Elysia;
  for (const route of API_ROUTES) {
    app.route(
      route.method,
      `${base}${route.path}`,
      handlerFor(route, options, headers) as never,
      {
        parse: "none",
      } as never,
    );
  }
  let document: string | undefined;
  app.get(`${base}/openapi.json`, async () => {
    document ??= JSON.stringify(await openApiDocument(base));
    return new Response(document, { headers });
  });
  // Anything else under the API is a JSON 404, not the token server's text.
  app.all(`${base}/*`, () => {
    throw new NotFound("no such API route; see /api/v1/openapi.json");
  });
  return target;
}

/**
 * The OpenAPI 3.1 document, from the route table's TypeBox schemas through Elysia's OpenAPI
 * plugin's generator. Imported on first use: the plugin is ~260 KB of JavaScript that serve's
 * start-up (and every CLI command) would otherwise parse for nothing.
 */
export async function openApiDocument(base: string): Promise<Record<string, unknown>> {
  const [{ Elysia }, { toOpenAPISchema }] = await Promise.all([
    import("elysia"),
    import("@elysiajs/openapi"),
  ]);
  const docApp = new Elysia();
  for (const route of API_ROUTES) {
    docApp.route(
      route.method,
      `${base}${route.path}`,
      (() => null) as never,
      {
        ...(route.params ? { params: route.params } : {}),
        ...(route.query ? { query: route.query } : {}),
        ...(route.body ? { body: route.body } : {}),
        response: { [route.status]: route.response },
        detail: {
          summary: route.summary,
          tags: [route.tag],
          // {}: the route also answers callers without credentials (the public repositories).
          security: [...(route.runAnonymous ? [{}] : []), { basic: [] }, { bearer: [] }],
        },
      } as never,
    );
  }
  const { paths, components } = toOpenAPISchema(docApp as never) as {
    paths: Record<string, unknown>;
    components: { schemas?: Record<string, unknown> };
  };
  return {
    openapi: "3.1.0",
    info: {
      title: "regauth management API",
      version: "1",
      description:
        "Users, groups, permissions, access tokens, robot accounts and the audit log (docs/api.md).",
    },
    paths,
    components: {
      ...components,
      securitySchemes: {
        basic: { type: "http", scheme: "basic" },
        bearer: {
          type: "http",
          scheme: "bearer",
          description: "an access token (regauth_pat_...) with scope api",
        },
      },
    },
  };
}
