/**
 * Sign in and out of the web interface. The password goes through the token server's own
 * authenticator chain (config users, database users, LDAP, ext_auth, xorm_auth), charged to the
 * same LoginThrottle with the same dummy hash for unknown names and the same failure-latency
 * floor (src/issue-token.ts), so the web form is no cheaper way to guess a password.
 */
import { looksLikeAccessToken } from "../../access-tokens/index.ts";
import { findUser } from "../../accounts/users.ts";
import { authenticate } from "../../authn/authenticator.ts";
import { log } from "../../log.ts";
import { html } from "../../web/html.ts";
import { createSession, deleteSession, pruneSessions } from "../../web/sessions.ts";
import { type FormErrors, formFields } from "./forms.ts";
import { field } from "./layout.ts";
import { newSignInNonce, parseCookies, type PageKit, type PageRequest, type PageRoute } from "./plugin.ts";

const MAX_USERNAME_FIELD = 256;
const MAX_PASSWORD_FIELD = 1024;

/** Only a path of this interface: never another host (`//evil`), never a scheme. */
export function safeNext(prefix: string, next: string | null | undefined): string {
  const home = `${prefix}/`;
  if (!next || next.length > 512) return home;
  // Printable ASCII only: a Location header holds nothing else, and no backslash (`/\\evil`).
  if (!next.startsWith(home) || next.startsWith("//") || !/^[\x21-\x5b\x5d-\x7e]+$/.test(next)) return home;
  if (next.startsWith(`${prefix}/sign-`)) return home;
  return next;
}

function signInPage(
  r: PageRequest,
  kit: PageKit,
  status: number,
  values: {
    username: string;
    next: string;
    errors: FormErrors;
    alert?: string | null;
    notice?: string | null;
  },
  headers: Record<string, string> = {},
): Response {
  // One nonce per browser, not per render: a second tab must not break the first one's form.
  const existing = parseCookies(r.request.headers.get("cookie")).get(kit.cookies.signIn);
  const nonce = existing !== undefined && /^[A-Za-z0-9_-]{32}$/.test(existing) ? existing : newSignInNonce();
  return kit.page(
    r,
    status,
    {
      title: "Sign in",
      alert: values.alert ?? null,
      notice: values.notice ?? null,
      body: html`<h1>Sign in to regauth</h1>
<form class="panel" method="post" action="${r.prefix}/sign-in" novalidate>
<input type="hidden" name="csrf" value="${nonce}">
<input type="hidden" name="next" value="${values.next}">
${field({ label: "User name", name: "username", value: values.username, errors: values.errors, required: true, autocomplete: "username", maxlength: MAX_USERNAME_FIELD })}
${field({ label: "Password", name: "password", type: "password", errors: values.errors, required: true, autocomplete: "current-password", maxlength: MAX_PASSWORD_FIELD })}
<button type="submit">Sign in</button>
</form>
${providerButtons(r.prefix, values.next, kit)}
<p class="muted">Use the account you use for <code>docker login</code>. Access tokens are for the registry and the API, not for this page.</p>`,
    },
    // The double-submit value for this form (login CSRF): a cookie another site cannot set or read.
    { "set-cookie": kit.signInCookie(nonce), ...headers },
  );
}

/** "Sign in with PROVIDER", one link per configured identity provider (issue 15). */
function providerButtons(prefix: string, next: string, kit: PageKit) {
  const providers = [...(kit.options.identity?.providers.values() ?? [])];
  if (providers.length === 0) return "";
  const query = next === `${prefix}/` ? "" : `?next=${encodeURIComponent(next)}`;
  // A panel of its own under the password form, styled by the stylesheet's .panel and .button.
  return html`<section class="panel" aria-labelledby="providers-heading">
<h2 id="providers-heading">Single sign-on</h2>
<p>${providers.map((p) => html`<a class="button" href="${prefix}/sign-in/${p.kind}/${p.name}${query}">Sign in with ${p.displayName}</a> `)}</p>
</section>`;
}

const NOTICES: Record<string, string> = {
  "signed-out": "You are signed out.",
  "password-changed":
    "Your password was changed, and every session of yours has ended. Sign in with the new one.",
};

export const SIGN_IN_ROUTES: readonly PageRoute[] = [
  {
    method: "GET",
    path: "/sign-in",
    needsSession: false,
    handle(r, kit) {
      const next = safeNext(r.prefix, r.url.searchParams.get("next"));
      if (r.viewer) return kit.redirect(next);
      const notice = NOTICES[r.url.searchParams.get("notice") ?? ""] ?? null;
      return signInPage(r, kit, 200, { username: "", next, errors: {}, notice });
    },
  },
  {
    method: "POST",
    path: "/sign-in",
    needsSession: false,
    csrf: "sign-in",
    async handle(r, kit) {
      const { one } = formFields(r.form ?? new URLSearchParams(), ["username", "password", "next"]);
      const username = one.username ?? "";
      const password = one.password ?? "";
      const next = safeNext(r.prefix, one.next);
      const errors: FormErrors = {};
      if (username === "") errors.username = "Enter your user name.";
      else if (username.length > MAX_USERNAME_FIELD)
        errors.username = `A user name has at most ${MAX_USERNAME_FIELD} characters.`;
      if (password === "") errors.password = "Enter your password.";
      else if (password.length > MAX_PASSWORD_FIELD)
        errors.password = `A password has at most ${MAX_PASSWORD_FIELD} characters.`;
      else if (looksLikeAccessToken(password))
        errors.password =
          "That is an access token. Sign in with your password; tokens are for docker login and the API.";
      if (Object.keys(errors).length > 0)
        return signInPage(r, kit, 400, { username: username.slice(0, MAX_USERNAME_FIELD), next, errors });

      const issuer = kit.options.issuer();
      const { db, audit } = kit.options.api;
      const admission = await issuer.throttle?.admit(r.ip, username, password);
      if (admission?.kind === "refused") {
        issuer.throttle?.reportRefusal(r.ip, username);
        return signInPage(
          r,
          kit,
          429,
          {
            username,
            next,
            errors: {},
            alert: `Too many failed sign-ins. Try again in ${admission.retryAfterSeconds} seconds.`,
          },
          { "retry-after": String(admission.retryAfterSeconds) },
        );
      }
      using attempt = admission?.attempt;
      const startedMs = performance.now();
      const context = { ip: r.ip, isKnownGood: attempt?.isKnownGood ?? false };
      // The epoch before the check: a password changed while this one was verified must not count.
      const before = findUser(db, username);
      const decision = await authenticate(issuer.authenticators, { username, password }, context);
      if (decision.kind === "unknown") await issuer.verifier.verifyDummy(password, context);
      const principal = decision.kind === "allow" ? decision.principal : null;
      let userId: number | null = null;
      let epoch = 0;
      let refused = principal === null || principal.accessToken !== undefined || principal.isAnonymous;
      if (principal && !refused && principal.authenticator === "database") {
        const user = findUser(db, principal.account);
        refused =
          !user ||
          !user.isEnabled ||
          user.kind !== "person" ||
          (before !== null && before.credentialEpoch !== user.credentialEpoch);
        if (user) {
          userId = user.id;
          epoch = user.credentialEpoch;
        }
      }
      const record = (outcome: "ok" | "denied", authenticator: string) =>
        audit.record({
          kind: "login",
          actor: username.slice(0, 160),
          ip: r.ip?.text ?? "",
          repository: null,
          outcome,
          details: { via: "web", authenticator },
        });
      if (refused || !principal) {
        attempt?.failed();
        // One line per refused sign-in, as for token requests; never the password.
        log.info("web sign-in refused", {
          account: username.slice(0, 160),
          ip: r.ip?.text,
          authenticator: decision.kind === "deny" ? (decision.authenticator ?? "none") : "none",
        });
        record("denied", decision.kind === "deny" ? (decision.authenticator ?? "none") : "none");
        await issuer.failureLatency?.equalize(performance.now() - startedMs);
        const reason = decision.kind === "deny" && decision.reason ? decision.reason : null;
        return signInPage(r, kit, 401, {
          username,
          next,
          errors: { password: reason ?? "The user name or the password is wrong." },
        });
      }
      attempt?.succeeded();
      log.info("web sign-in", {
        account: principal.account,
        ip: r.ip?.text,
        authenticator: principal.authenticator,
      });
      record("ok", principal.authenticator);
      // A new id at every sign-in (no session fixation); the one the browser had ends.
      if (r.sessionId) deleteSession(db, r.sessionId);
      const id = createSession(db, {
        account: principal.account,
        authenticator: principal.authenticator,
        userId,
        credentialEpoch: epoch,
        nowUnix: r.nowUnix,
        ip: r.ip?.text ?? "",
      });
      // Expired rows go at each sign-in: no timer, and the table stays as small as its live sessions.
      pruneSessions(db, r.nowUnix, kit.options.sessions);
      const response = kit.redirect(next);
      response.headers.append("set-cookie", kit.sessionCookie(id));
      response.headers.append("set-cookie", kit.clearCookie(kit.cookies.signIn));
      return response;
    },
  },
  {
    method: "POST",
    path: "/sign-out",
    needsSession: true,
    handle(r, kit) {
      if (r.sessionId) deleteSession(kit.options.api.db, r.sessionId);
      return kit.redirect(`${r.prefix}/sign-in?notice=signed-out`, {
        "set-cookie": kit.clearCookie(kit.cookies.session),
      });
    },
  },
];

export { NOTICES as SIGN_IN_NOTICES };
