/**
 * The web interface on Elysia (issue 14; docs/web.md): server-rendered pages over the same domain
 * functions and the same `decide` table as /api/v1 (src/management/). This file is the plumbing
 * every page shares: the security headers, the session cookie, CSRF checks on every POST, form
 * parsing, and errors rendered as pages (never the JSON envelope, never a stack trace).
 */
import type { Elysia } from "elysia";
import { createHash, randomBytes } from "node:crypto";
import type { ClientIp } from "../../acl.ts";
import { findUser } from "../../accounts/users.ts";
import { storeUnavailable } from "../../db/store-errors.ts";
import { AppError, Forbidden, PayloadTooLarge, TooManyRequests } from "../../errors.ts";
import type { TokenIssuer } from "../../issue-token.ts";
import type { IdentityService } from "../../identity/service.ts";
import { log } from "../../log.ts";
import { adminNamespacesOf } from "../../management/caller.ts";
import type { ManagementContext } from "../../management/context.ts";
import { APP_JS } from "../../web/assets/app-js.ts";
import APP_CSS from "../../web/assets/app.css" with { type: "text" };
import { type HtmlValue, html } from "../../web/html.ts";
import { csrfTokenMatches, findSession, type Session, type SessionLimits } from "../../web/sessions.ts";
import { type ApiOptions, throttledVerify } from "../api/plugin.ts";
import { resolveClientIp } from "../request-parts.ts";
import { readForm } from "./forms.ts";
import { renderPage, type Viewer } from "./layout.ts";

export interface PagesOptions {
  /** The management API's services (database, verifier, throttle, audit, token key, config). */
  api: ApiOptions;
  /** The issuer serving now: its authenticator chain, verifier, throttle and failure floor sign people in. */
  issuer: () => TokenIssuer;
  sessions: SessionLimits;
  /** Mark cookies Secure (server.certificate set, or web.secure_cookie). */
  secureCookie: boolean;
  /** The registry's host as clients use it, for the `docker login` command; null: a placeholder. */
  registryHost: string | null;
  /** Sign-in with identity providers (issue 15); absent: none configured. */
  identity?: IdentityService;
}

/**
 * Content-Security-Policy of every page (issue 14 item 4): nothing inline, nothing from anywhere
 * but this server, no framing, forms only to this server.
 */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const PAGE_HEADERS: Record<string, string> = {
  "content-type": "text/html; charset=utf-8",
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  // same-origin, not no-referrer: with no-referrer Chrome sends `Origin: null` on our own forms.
  "referrer-policy": "same-origin",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  // Pages show secrets (a new token) and account data: never cached, never stored.
  "cache-control": "no-store",
};

type PeerServer = { requestIP(r: Request): { address: string } | null } | null;

/** What a page handler gets: plain values, never Elysia's context. */
export interface PageRequest {
  request: Request;
  url: URL;
  ip: ClientIp | null;
  prefix: string;
  params: Record<string, string>;
  /** The form of a POST (its CSRF token already checked). */
  form: URLSearchParams | null;
  session: Session | null;
  sessionId: string | null;
  viewer: Viewer | null;
  /** The management context of a signed-in database account; null otherwise. */
  ctx: ManagementContext | null;
  nowUnix: number;
}

export interface PageRoute {
  method: "GET" | "POST";
  /** Relative to the prefix, Elysia syntax. */
  path: string;
  /** Signed-out visitors are sent to the sign-in page (GET) or refused (POST). */
  needsSession: boolean;
  /** POSTs only: the sign-in form's CSRF check is a cookie, there being no session yet. */
  csrf?: "session" | "sign-in";
  handle(r: PageRequest, kit: PageKit): Promise<Response> | Response;
}

/** What the handlers use to answer. */
export interface PageKit {
  options: PagesOptions;
  page(
    r: PageRequest,
    status: number,
    shell: {
      title: string;
      current?: string;
      body: HtmlValue;
      notice?: string | null;
      alert?: string | null;
    },
    headers?: Record<string, string>,
  ): Response;
  redirect(to: string, headers?: Record<string, string>): Response;
  cookies: CookieNames;
  sessionCookie(id: string): string;
  clearCookie(name: string): string;
  signInCookie(value: string): string;
}

export interface CookieNames {
  session: string;
  signIn: string;
}

/** `__Host-` needs Secure and Path=/; `__Secure-` needs Secure (RFC 6265bis §4.1.3). */
export function cookieNames(secure: boolean, prefix: string): CookieNames {
  const lead = secure ? (prefix === "" ? "__Host-" : "__Secure-") : "";
  return { session: `${lead}regauth_session`, signIn: `${lead}regauth_sign_in` };
}

export function parseCookies(header: string | null): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    // The first of two cookies with one name wins (the more specific path comes first).
    if (!cookies.has(name)) cookies.set(name, part.slice(eq + 1).trim());
  }
  return cookies;
}

/** How many cookies named `name` the header carries (a browser sends one per path and domain). */
export function cookieCount(header: string | null, name: string): number {
  let count = 0;
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) count++;
  }
  return count;
}

/**
 * Why a POST is not from one of our own pages, or null. Browsers send Sec-Fetch-Site (and
 * Origin on POST); a form posted from another site says so in both. Clients that send neither
 * (curl) still need the synchronizer token, which only our pages carry.
 */
export function crossOriginProblem(request: Request): string | null {
  // Browsers that send Sec-Fetch-Site say exactly where a form came from; it is the stronger
  // signal (Origin can be "null" for a same-origin form under some referrer policies).
  const site = request.headers.get("sec-fetch-site");
  if (site !== null)
    return site === "same-origin" || site === "none" ? null : "this form was sent from another site";
  const origin = request.headers.get("origin");
  if (origin === null) return null;
  try {
    if (new URL(origin).host === new URL(request.url).host) return null;
  } catch {}
  return "this form was sent from another origin";
}

function escapeBody(message: string): HtmlValue {
  return html`<h1>${message}</h1>`;
}

export function mountPages<App>(
  target: App,
  prefix: string,
  options: PagesOptions,
  routes: readonly PageRoute[],
  extraHeaders: Record<string, string> = {},
): App {
  const app = target as unknown as Elysia;
  const cookies = cookieNames(options.secureCookie, prefix);
  const cookiePath = prefix === "" ? "/" : prefix;
  const secure = options.secureCookie ? "; Secure" : "";
  const assetVersion = createHash("sha256").update(APP_CSS).update(APP_JS).digest("hex").slice(0, 12);
  const db = options.api.db;

  const kit: PageKit = {
    options,
    cookies,
    page(r, status, shell, headers = {}) {
      return new Response(renderPage({ prefix, assetVersion, viewer: r.viewer, ...shell }), {
        status,
        headers: { ...PAGE_HEADERS, ...extraHeaders, ...headers },
      });
    },
    redirect(to, headers = {}) {
      return new Response(null, {
        status: 303,
        headers: { ...PAGE_HEADERS, ...extraHeaders, location: to, ...headers },
      });
    },
    sessionCookie: (id) =>
      `${cookies.session}=${id}; Path=${cookiePath}; Max-Age=${options.sessions.maxSeconds}; HttpOnly; SameSite=Strict${secure}`,
    signInCookie: (value) =>
      `${cookies.signIn}=${value}; Path=${cookiePath}; Max-Age=3600; HttpOnly; SameSite=Strict${secure}`,
    clearCookie: (name) => `${name}=; Path=${cookiePath}; Max-Age=0; HttpOnly; SameSite=Strict${secure}`,
  };

  const viewerOf = (session: Session): Viewer | null => {
    if (session.userId === null)
      return {
        account: session.account,
        isAdmin: false,
        adminNamespaces: [],
        externalBackend: session.authenticator,
        csrfToken: session.csrfToken,
      };
    const user = findUser(db, session.account);
    if (!user || user.id !== session.userId || !user.isEnabled || user.kind !== "person") return null;
    const adminNamespaces = adminNamespacesOf(db, user.id);
    return {
      account: user.name,
      isAdmin: user.isAdmin,
      adminNamespaces,
      externalBackend: null,
      csrfToken: session.csrfToken,
    };
  };

  const contextFor = (r: PageRequest, userId: number, isAdmin: boolean): ManagementContext => ({
    db,
    actor: { kind: "account", name: r.viewer?.account ?? "", userId, isAdmin, via: "password" },
    ip: r.ip?.text ?? "",
    audit: options.api.audit,
    accessTokenKey: options.api.accessTokenKey,
    config: options.api.config,
    nowUnix: r.nowUnix,
    passwords: {
      // current_password is a guess like any login: the same throttle as token requests.
      verify: (username, password, storedHash) =>
        throttledVerify(options.api, r.ip, username, password, storedHash),
      limited: (work) => options.api.verifier.limited(work),
    },
    // The same services the API's context carries (src/http/api/plugin.ts), for the
    // Repositories and Webhooks pages.
    ...(options.api.webhooks ? { webhooks: options.api.webhooks } : {}),
    ...(options.api.registryIndex ? { registryIndex: options.api.registryIndex } : {}),
  });

  const errorPage = (r: PageRequest, error: unknown): Response => {
    const unavailable = storeUnavailable(error, "regauth.db");
    const known = error instanceof AppError ? error : unavailable;
    if (known instanceof AppError) {
      const headers: Record<string, string> =
        known instanceof TooManyRequests ? { "retry-after": String(known.retryAfterSeconds) } : {};
      // The rest of an oversized form is not read: end the connection with the answer (src/http/app.ts).
      if (known instanceof PayloadTooLarge) headers.connection = "close";
      if (known.status >= 500) log.error(known.message, { cause: known.cause, path: r.url.pathname });
      return kit.page(
        r,
        known.status,
        { title: known.status === 404 ? "Not found" : "Refused", body: escapeBody(known.message) },
        headers,
      );
    }
    log.error("page failed", {
      error: error instanceof Error ? (error.stack ?? error.message) : String(error),
      path: r.url.pathname,
    });
    return kit.page(r, 500, {
      title: "Error",
      body: escapeBody("Something went wrong; see the server log."),
    });
  };

  const handlerFor =
    (route: PageRoute) =>
    async ({
      request,
      server,
      params,
    }: {
      request: Request;
      server: PeerServer;
      params: Record<string, string>;
    }): Promise<Response> => {
      const url = new URL(request.url);
      const r: PageRequest = {
        request,
        url,
        ip: null,
        prefix,
        params: {},
        form: null,
        session: null,
        sessionId: null,
        viewer: null,
        ctx: null,
        nowUnix: Math.floor(Date.now() / 1000),
      };
      try {
        r.ip = resolveClientIp(request.headers, server?.requestIP(request)?.address, options.api.realIp);
        for (const [key, value] of Object.entries(params ?? {})) r.params[key] = decodeParam(value);
        const jar = parseCookies(request.headers.get("cookie"));
        const id = jar.get(cookies.session) ?? null;
        // Two session cookies mean one was tossed (a sibling host's Domain= cookie, or a longer
        // Path, which the browser sends first): using either could sign the person in as the
        // tosser's account, so neither is used (review of issue 14, cookie tossing).
        const tossed = cookieCount(request.headers.get("cookie"), cookies.session) > 1;
        const session = id === null || tossed ? null : findSession(db, id, r.nowUnix, options.sessions);
        const signedIn = session ? viewerOf(session) : null;
        if (session && signedIn) {
          r.session = session;
          r.sessionId = id;
          r.viewer = signedIn;
          if (session.userId !== null) r.ctx = contextFor(r, session.userId, signedIn.isAdmin);
        }
        if (route.method === "POST") {
          const problem = crossOriginProblem(request);
          if (problem) throw new Forbidden(`${problem}; reload the page and try again`);
        }
        if (route.needsSession && !r.viewer) {
          const next = `${url.pathname}${url.search}`;
          const headers: Record<string, string> =
            id !== null && !tossed ? { "set-cookie": kit.clearCookie(cookies.session) } : {};
          return kit.redirect(
            `${prefix}/sign-in${route.method === "GET" ? `?next=${encodeURIComponent(next)}` : ""}`,
            headers,
          );
        }
        if (route.method === "POST") {
          r.form = await readForm(request);
          const submitted = r.form.get("csrf");
          const expected =
            route.csrf === "sign-in" ? (jar.get(cookies.signIn) ?? null) : (r.session?.csrfToken ?? null);
          if (expected === null || !csrfTokenMatches(expected, submitted))
            throw new Forbidden(
              "the form's security token is missing or out of date; reload the page and try again",
            );
        }
        return await route.handle(r, kit);
      } catch (error) {
        return errorPage(r, error);
      }
    };

  for (const route of routes)
    app.route(route.method, `${prefix}${route.path}`, handlerFor(route) as never, { parse: "none" } as never);

  const assetHeaders = (type: string) => ({
    "content-type": type,
    "x-content-type-options": "nosniff",
    "cross-origin-resource-policy": "same-origin",
    // The URL carries the content's hash (?v=): a new binary's assets get new URLs.
    "cache-control": "public, max-age=86400",
    ...extraHeaders,
  });
  app.get(
    `${prefix}/assets/app.css`,
    () => new Response(APP_CSS, { headers: assetHeaders("text/css; charset=utf-8") }),
  );
  app.get(
    `${prefix}/assets/app.js`,
    () => new Response(APP_JS, { headers: assetHeaders("text/javascript; charset=utf-8") }),
  );
  return target;
}

function decodeParam(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** A fresh random value for the sign-in form's double-submit cookie. */
export function newSignInNonce(): string {
  return randomBytes(24).toString("base64url");
}
