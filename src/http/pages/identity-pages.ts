/**
 * Sign-in with an OpenID Connect provider or GitHub (issue 15; docs/identity-providers.md), the
 * HTTP face of src/identity/. `GET /sign-in/KIND/NAME` starts the authorization-code flow and sets
 * the flow cookie (the pending sign-in itself, sealed: state, nonce, PKCE verifier; ten minutes,
 * single use; src/identity/service.ts), so the server keeps nothing per started sign-in;
 * `GET /sign-in/KIND/NAME/callback` finishes it and opens a web session of the linked database
 * account, from which the tokens page makes tokens for `docker login`.
 */
import { findUser } from "../../accounts/users.ts";
import type { SignInDriver } from "../../identity/drivers.ts";
import { markChecked, resolveAccount, syncDatabaseGroups } from "../../identity/links.ts";
import type { IdentityService } from "../../identity/service.ts";
import { log } from "../../log.ts";
import { html } from "../../web/html.ts";
import { createSession, deleteSession, pruneSessions } from "../../web/sessions.ts";
import { parseCookies, type PageKit, type PageRequest, type PageRoute } from "./plugin.ts";
import { safeNext } from "./sign-in.ts";

export const FLOW_COOKIE_SECONDS = 600;

function flowCookieName(kit: PageKit): string {
  // Same prefix rules as the session cookie (__Host- needs Path=/, so __Secure- here).
  return kit.cookies.session.startsWith("__") ? "__Secure-regauth_oidc_flow" : "regauth_oidc_flow";
}

function flowCookie(
  kit: PageKit,
  r: PageRequest,
  value: string,
  maxAgeSeconds: number,
  kind = "oidc",
): string {
  const secure = kit.options.secureCookie ? "; Secure" : "";
  // Lax, not Strict: the provider's redirect back is a cross-site top-level GET, and a Strict
  // cookie would not come with it. The cookie is a sealed, single-use pending sign-in, nothing more.
  return `${flowCookieName(kit)}=${value}; Path=${r.prefix}/sign-in/${kind}; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Lax${secure}`;
}

function refusedPage(r: PageRequest, kit: PageKit, status: number, message: string, kind = "oidc"): Response {
  return kit.page(
    r,
    status,
    {
      title: "Sign-in refused",
      body: html`<h1>Sign-in refused</h1>
<p>${message}</p>
<p><a href="${r.prefix}/sign-in">Back to the sign-in page</a></p>`,
    },
    { "set-cookie": flowCookie(kit, r, "", 0, kind) },
  );
}

function serviceOf(kit: PageKit): IdentityService | null {
  return kit.options.identity ?? null;
}

function routesOf(kind: SignInDriver["kind"]): PageRoute[] {
  const driverOf = (kit: PageKit, r: PageRequest) => {
    const driver = serviceOf(kit)?.providers.get(r.params.provider ?? "");
    return driver?.kind === kind ? driver : null;
  };
  return [
    {
      method: "GET",
      path: `/sign-in/${kind}/:provider`,
      needsSession: false,
      async handle(r, kit) {
        const provider = driverOf(kit, r);
        if (!provider) return refusedPage(r, kit, 404, "There is no such identity provider here.", kind);
        const next = safeNext(r.prefix, r.url.searchParams.get("next"));
        let started: Awaited<ReturnType<SignInDriver["start"]>>;
        try {
          started = await provider.start(next, r.nowUnix);
        } catch (error) {
          log.warn("identity provider unreachable", {
            provider: provider.name,
            error: error instanceof Error ? error.message : String(error),
          });
          return refusedPage(
            r,
            kit,
            502,
            `${provider.displayName} cannot be reached just now. Try again in a moment.`,
            kind,
          );
        }
        const sealed = serviceOf(kit)?.sealFlow(started.pending) ?? "";
        return kit.redirect(started.url.href, {
          "set-cookie": flowCookie(kit, r, sealed, FLOW_COOKIE_SECONDS, kind),
        });
      },
    },
    {
      method: "GET",
      path: `/sign-in/${kind}/:provider/callback`,
      needsSession: false,
      async handle(r, kit) {
        const service = serviceOf(kit);
        const provider = driverOf(kit, r);
        if (!service || !provider)
          return refusedPage(r, kit, 404, "There is no such identity provider here.", kind);
        const name = provider.name;
        const authenticator = `${kind}:${name}`;
        // This browser's own pending sign-in, or nothing: a callback URL opened in another browser
        // (login CSRF, RFC 6749 §10.12) or replayed after its exchange has none that opens.
        const flow = service.openFlow(
          parseCookies(r.request.headers.get("cookie")).get(flowCookieName(kit)),
          name,
          r.nowUnix,
        );
        const refuse = (status: number, message: string, why: string, account = "") => {
          log.info("identity sign-in refused", {
            provider: name,
            account: account.slice(0, 160),
            ip: r.ip?.text,
            reason: why.slice(0, 300),
          });
          kit.options.api.audit.record({
            kind: "login",
            actor: account.slice(0, 160),
            ip: r.ip?.text ?? "",
            repository: null,
            outcome: "denied",
            details: { via: "web", authenticator, reason: why.slice(0, 200) },
          });
          return refusedPage(r, kit, status, message, kind);
        };
        const expiredOrUsed = (why: string) =>
          refuse(400, "This sign-in expired or was already used. Start again from the sign-in page.", why);
        if (!flow)
          return expiredOrUsed(
            "no pending sign-in for this browser (flow cookie missing, expired, used or not ours)",
          );
        const { pending } = flow;
        let result: Awaited<ReturnType<SignInDriver["finish"]>>;
        try {
          result = await provider.finish(pending, r.url);
        } catch (error) {
          log.warn("identity provider unreachable", {
            provider: name,
            error: error instanceof Error ? error.message : String(error),
          });
          return refusedPage(
            r,
            kit,
            502,
            `${provider.displayName} cannot be reached just now. Try again in a moment.`,
            kind,
          );
        }
        if (result.kind !== "ok")
          return refuse(
            400,
            `${provider.displayName} did not confirm who you are. Start again from the sign-in page.`,
            result.reason,
          );
        // The code was exchanged: from now on the flow cookie is spent. Only here, so refused
        // callbacks (anyone can make those) never grow the set of used flows.
        if (!service.useFlow(flow, r.nowUnix))
          return expiredOrUsed("flow cookie used by a concurrent callback");
        const { identity } = result;
        const config = provider.rules;
        const notAdmitted = provider.admission(identity.claims);
        const { db } = kit.options.api;
        if (notAdmitted)
          return refuse(
            403,
            notAdmitted,
            "not in the allowed domains or groups",
            String(identity.claims[config.user_claim] ?? ""),
          );
        const resolved = resolveAccount(db, config, identity, r.nowUnix, service.reservedNames);
        if (resolved.kind === "refused")
          return refuse(
            resolved.status,
            resolved.message,
            resolved.log,
            String(identity.claims[config.user_claim] ?? ""),
          );
        const { user, link } = resolved;
        syncDatabaseGroups(db, config, user.id, provider.groups(identity.claims), r.nowUnix);
        markChecked(
          db,
          link.id,
          // Sealed for the database (src/identity/credential-key.ts); a sign-in without one keeps the old.
          service.seal(link.id, identity.refreshToken) ?? link.refreshToken,
          r.nowUnix,
          provider.labels(identity.claims),
        );
        const current = findUser(db, user.name) ?? user;
        log.info("web sign-in", {
          account: user.name,
          ip: r.ip?.text,
          authenticator,
          created: resolved.created,
        });
        kit.options.api.audit.record({
          kind: "login",
          actor: user.name,
          ip: r.ip?.text ?? "",
          repository: null,
          outcome: "ok",
          details: {
            via: "web",
            authenticator,
            ...(resolved.created ? { created: true } : {}),
          },
        });
        if (r.sessionId) deleteSession(db, r.sessionId);
        const sessionId = createSession(db, {
          account: user.name,
          authenticator,
          userId: user.id,
          credentialEpoch: current.credentialEpoch,
          nowUnix: r.nowUnix,
          ip: r.ip?.text ?? "",
        });
        pruneSessions(db, r.nowUnix, kit.options.sessions);
        // A page, not a redirect: the session cookie is SameSite=Strict, and a redirect chain that
        // began at the provider (another site) would not send it to the next page. The Refresh is
        // this page's own navigation, so same-site.
        const response = kit.page(
          r,
          200,
          {
            title: "Signed in",
            body: html`<h1>Signed in as ${user.name}</h1>
<p><a href="${pending.next}">Continue</a></p>`,
          },
          { refresh: `0; url=${pending.next}` },
        );
        response.headers.append("set-cookie", kit.sessionCookie(sessionId));
        response.headers.append("set-cookie", flowCookie(kit, r, "", 0, kind));
        return response;
      },
    },
  ];
}

export const IDENTITY_ROUTES: readonly PageRoute[] = [...routesOf("oidc"), ...routesOf("github")];
