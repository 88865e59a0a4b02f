/**
 * Pages every signed-in person has: the start page, their account (change password), their
 * access tokens, and the permissions they may see. Every action calls the function the API
 * calls (src/management/), which asks the same `decide` table.
 */
import { Forbidden } from "../../errors.ts";
import { linksOfUser } from "../../identity/links.ts";
import { listAccessTokens, createAccessToken, revokeAccessToken } from "../../management/tokens.ts";
import { me, setPassword } from "../../management/users.ts";
import { grant, listPermissions, revoke } from "../../management/permissions.ts";
import * as S from "../../management/schemas.ts";
import type { ManagementContext } from "../../management/context.ts";
import { type Html, html, type HtmlValue } from "../../web/html.ts";
import { validated } from "../api/validate.ts";
import { asFormError, errorField, type FormErrors, formFields } from "./forms.ts";
import {
  actionButton,
  csrfField,
  emptyState,
  field,
  selectField,
  table,
  type Viewer,
  when,
} from "./layout.ts";
import type { PageKit, PageRequest, PageRoute } from "./plugin.ts";

/** Fixed texts for `?notice=`: a redirect after a change says what happened, never echoing input. */
export const NOTICES: Record<string, string> = {
  "token-revoked": "The access token was revoked. It stops working at once.",
  granted: "The permission was granted.",
  revoked: "The permission was revoked.",
};

export function noticeOf(r: PageRequest): string | null {
  return NOTICES[r.url.searchParams.get("notice") ?? ""] ?? null;
}

/** The management context of a database account; other back-ends' accounts manage nothing here. */
export function requireContext(r: PageRequest): ManagementContext {
  if (!r.ctx)
    throw new Forbidden(
      `your account is managed by ${r.viewer?.externalBackend ?? "another back-end"}; this page manages database accounts`,
    );
  return r.ctx;
}

export function viewerOf(r: PageRequest): Viewer {
  if (!r.viewer) throw new Forbidden("sign in first");
  return r.viewer;
}

const EXPIRY_CHOICES = [
  ["7", "7 days"],
  ["30", "30 days"],
  ["90", "90 days"],
  ["365", "1 year"],
  ["never", "Never"],
] as const;

const SCOPE_LABELS: Record<S.TokenScope, string> = {
  pull: "pull (read images)",
  push: "push (write images)",
  delete: "delete (remove images)",
  api: "api (the management API and the CLI)",
};

export function dockerLoginCommand(account: string, registryHost: string | null): string {
  return `docker login -u ${account} --password-stdin ${registryHost ?? "REGISTRY_HOST"}`;
}

/** The create-token form; `scopes` offered (robots never get api). */
export function tokenForm(options: {
  action: string;
  viewer: Viewer;
  scopes: readonly S.TokenScope[];
  values?: Record<string, string>;
  chosenScopes?: readonly string[];
  errors?: FormErrors;
  maxLifetimeDays: number | null;
}): Html {
  const v = options.values ?? {};
  const errors = options.errors ?? {};
  const chosen = options.chosenScopes ?? ["pull"];
  const expiry = EXPIRY_CHOICES.filter(
    ([value]) =>
      options.maxLifetimeDays === null || (value !== "never" && Number(value) <= options.maxLifetimeDays),
  );
  return html`<form class="panel" method="post" action="${options.action}" novalidate>
<h2>Create an access token</h2>
${csrfField(options.viewer)}
${field({ label: "Name", name: "name", value: v.name ?? "", errors, required: true, maxlength: 64, hint: "What it is for, e.g. ci or laptop." })}
<fieldset${errors.scopes ? html` aria-describedby="scopes-error"` : ""}><legend>Scopes</legend>
${options.scopes.map(
  (scope) =>
    html`<label><input type="checkbox" name="scopes" value="${scope}"${chosen.includes(scope) ? html` checked` : ""}> ${SCOPE_LABELS[scope]}</label>`,
)}
${errors.scopes ? html`<p class="error" id="scopes-error">${errors.scopes}</p>` : ""}</fieldset>
<div class="field"><label for="token-patterns">Repository patterns</label>
<textarea id="token-patterns" name="repository_patterns" aria-describedby="token-patterns-hint${errors.repository_patterns ? " token-patterns-error" : ""}"${errors.repository_patterns ? html` aria-invalid="true" autofocus` : ""}>${v.repository_patterns ?? "*"}</textarea>
<p class="hint" id="token-patterns-hint">One per line: <code>team/*</code>, <code>team/app</code>, or <code>*</code> for everything you may use.</p>
${errors.repository_patterns ? html`<p class="error" id="token-patterns-error">${errors.repository_patterns}</p>` : ""}</div>
${selectField({ label: "Expires", name: "expires", choices: expiry, value: v.expires ?? (expiry.some(([x]) => x === "30") ? "30" : expiry[0]?.[0]), errors })}
<button type="submit">Create token</button>
</form>`;
}

/** Parses the token form into the API's request body, validated by the API's schema. */
export function tokenRequestFrom(
  form: URLSearchParams,
  nowUnix: number,
): { body: S.CreateRobotTokenBody; values: Record<string, string>; scopes: string[] } {
  const { one, many } = formFields(form, ["name", "repository_patterns", "expires"], ["scopes"]);
  const values = {
    name: one.name ?? "",
    repository_patterns: one.repository_patterns ?? "",
    expires: one.expires ?? "30",
  };
  const scopes = many.scopes ?? [];
  const patterns = values.repository_patterns
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== "");
  let expiresAt: string | null = null;
  if (values.expires !== "never") {
    const days = /^\d{1,4}$/.test(values.expires) ? Number(values.expires) : Number.NaN;
    if (!Number.isFinite(days) || days < 1) throw new FieldError("expires", "Choose when the token expires.");
    expiresAt = new Date((nowUnix + days * 86_400) * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
  }
  const raw = { name: values.name, scopes, repository_patterns: patterns, expires_at: expiresAt };
  const body = validated<S.CreateRobotTokenBody>(S.CreateRobotTokenBody, raw, "body");
  return { body, values, scopes };
}

/** A mistake in one field, found by the page itself (a choice outside the offered list). */
export class FieldError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

export const TOKEN_FIELDS: Record<string, string> = {
  name: "name",
  scopes: "scopes",
  scope: "scopes",
  repository_patterns: "repository_patterns",
  pattern: "repository_patterns",
  expires_at: "expires",
  expire: "expires",
  lifetime: "expires",
};

export function formErrorsOf(error: unknown, fields: Record<string, string>, fallback: string): FormErrors {
  if (error instanceof FieldError) return { [error.field]: error.message };
  const known = asFormError(error);
  return { [errorField(known, fields, fallback)]: sentence(known.message) };
}

function sentence(message: string): string {
  const text = message.replace(
    /^(?:body|query|params)\.([a-z_]+)(\.\d+)?: /,
    (_, name: string) => `${name.replaceAll("_", " ")}: `,
  );
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function secretPanel(options: {
  secret: string;
  tokenName: string;
  account: string;
  registryHost: string | null;
}): Html {
  const command = dockerLoginCommand(options.account, options.registryHost);
  return html`<section class="secret" aria-labelledby="secret-heading">
<h2 id="secret-heading">Your new token ${options.tokenName}</h2>
<p><strong>Copy it now: it is shown only this once.</strong> regauth keeps only a keyed hash of it.</p>
<pre id="token-secret">${options.secret}</pre>
<p><button type="button" data-copy="token-secret" hidden>Copy token</button> <span id="token-secret-status" role="status"></span></p>
<p>Log in with it (paste the token when asked, then press Enter and Ctrl-D):</p>
<pre id="login-command">${command}</pre>
<p><button type="button" data-copy="login-command" hidden>Copy command</button> <span id="login-command-status" role="status"></span></p>
${options.registryHost === null ? html`<p class="muted">Replace REGISTRY_HOST with your registry's address (an administrator can set <code>notifications.registry_host</code>).</p>` : ""}
</section>`;
}

export function tokenTable(
  tokens: readonly S.AccessTokenView[],
  viewer: Viewer,
  revokeAction: (id: number) => string,
  caption: string,
): Html {
  return table(
    ["Name", "Scopes", "Repositories", "Created", "Expires", "Last used", ""],
    tokens.map((t) => [
      t.name,
      t.scopes.join(", "),
      html`${t.repository_patterns.map((p, i) => html`${i > 0 ? ", " : ""}<code>${p}</code>`)}`,
      when(t.created_at),
      when(t.expires_at),
      t.last_used_at === null
        ? "never"
        : `${when(t.last_used_at)}${t.last_used_ip ? ` from ${t.last_used_ip}` : ""}`,
      actionButton({
        action: revokeAction(t.id),
        label: "Revoke",
        viewer,
        danger: true,
        confirm: `Revoke the token ${t.name}? Whatever uses it stops working.`,
        accessibleLabel: `Revoke token ${t.name}`,
      }),
    ]),
    caption,
    { wide: true },
  );
}

function tokensPage(
  r: PageRequest,
  kit: PageKit,
  status: number,
  extra: {
    created?: S.CreatedAccessTokenView;
    errors?: FormErrors;
    values?: Record<string, string>;
    scopes?: string[];
  } = {},
): Response {
  const ctx = requireContext(r);
  const viewer = viewerOf(r);
  const tokens = listAccessTokens(ctx, { owner: viewer.account, limit: 500 }).items;
  const body: HtmlValue = html`<h1>Your access tokens</h1>
${extra.created ? secretPanel({ secret: extra.created.secret, tokenName: extra.created.name, account: viewer.account, registryHost: kit.options.registryHost }) : ""}
<p>Use a token as the password for <code>docker login</code>, skopeo, podman or CI, instead of your own password. It can do at most what you can, limited to its scopes and repositories, and you can revoke it at any time.</p>
${
  tokens.length === 0
    ? emptyState(html`You have no access tokens yet. Create one below for your laptop or a CI job.`)
    : tokenTable(tokens, viewer, (id) => `${r.prefix}/tokens/${id}/revoke`, "Your access tokens")
}
${tokenForm({ action: `${r.prefix}/tokens`, viewer, scopes: S.TOKEN_SCOPES, values: extra.values ?? {}, chosenScopes: extra.scopes ?? ["pull"], errors: extra.errors ?? {}, maxLifetimeDays: ctx.config.maxTokenLifetimeDays })}`;
  return kit.page(r, status, { title: "Access tokens", current: "/tokens", body, notice: noticeOf(r) });
}

function accountPage(r: PageRequest, kit: PageKit, status: number, errors: FormErrors = {}): Response {
  const viewer = viewerOf(r);
  if (!r.ctx) {
    return kit.page(r, status, {
      title: "Account",
      current: "/account",
      body: html`<h1>Your account</h1><dl class="facts"><dt>Name</dt><dd>${viewer.account}</dd><dt>Managed by</dt><dd>${viewer.externalBackend}</dd></dl>
<p>Your password and your rights come from ${viewer.externalBackend}; change them there. Access tokens and the other pages are for accounts in regauth's own database.</p>`,
    });
  }
  const who = me(r.ctx);
  const user = who.user;
  // An account made by an identity provider's first sign-in has no password ("!", src/identity/links.ts).
  const providers = passwordlessProviders(r.ctx, viewer.account);
  const body = html`<h1>Your account</h1>
<dl class="facts">
<dt>Name</dt><dd>${viewer.account}</dd>
<dt>Role</dt><dd>${user?.is_admin ? "administrator" : "user"}</dd>
<dt>Namespaces you administer</dt><dd>${who.admin_namespaces.length === 0 ? "none" : who.admin_namespaces.map((ns, i) => html`${i > 0 ? ", " : ""}<code>${ns}/*</code>`)}</dd>
<dt>Created</dt><dd>${when(user?.created_at ?? null)}</dd>
<dt>Last login</dt><dd>${when(user?.last_login_at ?? null)}</dd>
</dl>
<section class="panel" aria-labelledby="next-steps"><h2 id="next-steps">What next</h2><ul>
<li><a href="${r.prefix}/tokens">Create an access token</a> for docker login or CI, so your password stays here.</li>
<li><a href="${r.prefix}/permissions">See what you may pull and push</a>.</li>
${viewer.isAdmin ? html`<li><a href="${r.prefix}/admin/users">Add users</a> and <a href="${r.prefix}/permissions">grant them repositories</a>.</li>` : ""}
</ul></section>
${
  providers !== null
    ? html`<section class="panel" aria-labelledby="signs-in"><h2 id="signs-in">How you sign in</h2><p>You sign in through ${providers.length === 0 ? "an identity provider" : providers.map((p, i) => html`${i > 0 ? ", " : ""}<strong>${p}</strong>`)}; this account has no password to change here.</p></section>`
    : html`<form class="panel" method="post" action="${r.prefix}/account/password" novalidate>
<h2>Change your password</h2>
${csrfField(viewer)}
<input type="text" name="username" value="${viewer.account}" autocomplete="username" hidden>
${field({ label: "Current password", name: "current_password", type: "password", errors, required: true, autocomplete: "current-password", maxlength: 1024 })}
${field({ label: "New password", name: "password", type: "password", errors, required: true, autocomplete: "new-password", maxlength: 1024, hint: "At least 8 characters. Every session of yours ends, and you sign in again." })}
${field({ label: "New password again", name: "password_again", type: "password", errors, required: true, autocomplete: "new-password", maxlength: 1024 })}
<button type="submit">Change password</button>
</form>`
}`;
  return kit.page(r, status, { title: "Account", current: "/account", body, notice: noticeOf(r) });
}

/** The identity providers of an account that has no password of its own; null when it has one. */
function passwordlessProviders(ctx: ManagementContext, account: string): string[] | null {
  const row = ctx.db
    .query<{ id: number; password_hash: string }, [string]>(
      "SELECT id, password_hash FROM users WHERE name = ?",
    )
    .get(account);
  if (row === null || row.password_hash !== "!") return null;
  return linksOfUser(ctx.db, row.id).map((link) => link.provider);
}

const LEVEL_CHOICES = [
  ["read", "read (pull)"],
  ["write", "write (pull, push)"],
  ["admin", "admin (pull, push, delete, grant)"],
] as const;

function permissionsPage(
  r: PageRequest,
  kit: PageKit,
  status: number,
  extra: { errors?: FormErrors; values?: Record<string, string> } = {},
): Response {
  const ctx = requireContext(r);
  const viewer = viewerOf(r);
  const filter = r.url.searchParams.get("pattern") ?? "";
  const items = listPermissions(ctx, {
    limit: 500,
    ...(filter !== "" && filter.length <= 256 ? { pattern: filter } : {}),
  }).items;
  const mayGrant = viewer.isAdmin || viewer.adminNamespaces.length > 0;
  const errors = extra.errors ?? {};
  const v = extra.values ?? {};
  const levels = viewer.isAdmin ? LEVEL_CHOICES : LEVEL_CHOICES.filter(([level]) => level !== "admin");
  const body = html`<h1>Permissions</h1>
<p>${
    viewer.isAdmin
      ? "Every grant in the database. Grantees: a user or robot name, @group, or * for everyone (read only)."
      : mayGrant
        ? html`Grants you hold, and grants inside the namespaces you administer (${viewer.adminNamespaces.map((ns, i) => html`${i > 0 ? ", " : ""}<code>${ns}/*</code>`)}).`
        : "The grants that give you access (yours, your groups', and public ones). Your own namespace is yours without a grant."
  }</p>
<form class="filters" method="get" action="${r.prefix}/permissions" role="search">
${field({ label: "Repository or pattern", name: "pattern", type: "search", value: filter, maxlength: 256 })}
<div class="field"><button type="submit" class="secondary">Filter</button></div>
</form>
${
  items.length === 0
    ? emptyState(
        mayGrant
          ? "No grants here yet. Grant a user write on a namespace (team/*) with the form below."
          : "No grants name you yet. Ask an administrator for access to a namespace.",
      )
    : table(
        ["Grantee", "Pattern", "Level", "Granted", ...(mayGrant ? [""] : [])],
        items.map((p) => [
          p.grantee,
          html`<code>${p.pattern}</code>`,
          p.level,
          when(p.created_at),
          ...(mayGrant
            ? [
                actionButton({
                  action: `${r.prefix}/permissions/revoke`,
                  label: "Revoke",
                  viewer,
                  fields: { grantee: p.grantee, pattern: p.pattern },
                  danger: true,
                  confirm: `Revoke ${p.level} on ${p.pattern} from ${p.grantee}?`,
                  accessibleLabel: `Revoke ${p.level} on ${p.pattern} from ${p.grantee}`,
                }),
              ]
            : []),
        ]),
        "Grants",
      )
}
${
  mayGrant
    ? html`<form class="panel" method="post" action="${r.prefix}/permissions" novalidate>
<h2>Grant</h2>
${csrfField(viewer)}
${field({ label: "Grantee", name: "grantee", value: v.grantee ?? "", errors, required: true, maxlength: 160, hint: "alice, @devs, team+ci, or * (everyone)" })}
${field({ label: "Repository pattern", name: "pattern", value: v.pattern ?? (viewer.adminNamespaces[0] ? `${viewer.adminNamespaces[0]}/*` : ""), errors, required: true, maxlength: 256, hint: "team/* for a namespace, team/app for one repository" })}
${selectField({ label: "Level", name: "level", choices: levels, value: v.level ?? "write", errors })}
<button type="submit">Grant</button>
</form>`
    : ""
}`;
  return kit.page(r, status, { title: "Permissions", current: "/permissions", body, notice: noticeOf(r) });
}

const GRANT_FIELDS: Record<string, string> = {
  grantee: "grantee",
  user: "grantee",
  group: "grantee",
  pattern: "pattern",
  level: "level",
  namespace: "pattern",
  inside: "pattern",
};

export const ACCOUNT_ROUTES: readonly PageRoute[] = [
  {
    method: "GET",
    path: "/",
    needsSession: true,
    handle: (r, kit) => kit.redirect(`${r.prefix}/account`),
  },
  { method: "GET", path: "/account", needsSession: true, handle: (r, kit) => accountPage(r, kit, 200) },
  {
    method: "POST",
    path: "/account/password",
    needsSession: true,
    async handle(r, kit) {
      const ctx = requireContext(r);
      const { one } = formFields(r.form ?? new URLSearchParams(), [
        "username",
        "current_password",
        "password",
        "password_again",
      ]);
      const errors: FormErrors = {};
      if (!one.current_password) errors.current_password = "Enter your current password.";
      if (!one.password) errors.password = "Enter a new password.";
      else if (one.password !== one.password_again) errors.password_again = "The two new passwords differ.";
      if (Object.keys(errors).length > 0) return accountPage(r, kit, 400, errors);
      try {
        const body = validated<S.SetPasswordBody>(
          S.SetPasswordBody,
          { password: one.password, current_password: one.current_password },
          "body",
        );
        await setPassword(ctx, { ...body, name: viewerOf(r).account });
      } catch (error) {
        const fieldErrors = formErrorsOf(
          error,
          { current: "current_password", current_password: "current_password", password: "password" },
          "password",
        );
        return accountPage(r, kit, (error as { status?: number }).status ?? 400, fieldErrors);
      }
      // The epoch moved: this session (and every other) has ended; say so on the sign-in page.
      return kit.redirect(`${r.prefix}/sign-in?notice=password-changed`, {
        "set-cookie": kit.clearCookie(kit.cookies.session),
      });
    },
  },
  { method: "GET", path: "/tokens", needsSession: true, handle: (r, kit) => tokensPage(r, kit, 200) },
  {
    method: "POST",
    path: "/tokens",
    needsSession: true,
    handle(r, kit) {
      const ctx = requireContext(r);
      let parsed: ReturnType<typeof tokenRequestFrom> | undefined;
      try {
        parsed = tokenRequestFrom(r.form ?? new URLSearchParams(), r.nowUnix);
        const created = createAccessToken(ctx, parsed.body);
        return tokensPage(r, kit, 201, { created });
      } catch (error) {
        const values =
          parsed?.values ??
          Object.fromEntries([...(r.form ?? [])].filter(([k]) => k !== "scopes" && k !== "csrf"));
        const scopes = parsed?.scopes ?? r.form?.getAll("scopes") ?? [];
        const errors = formErrorsOf(error, TOKEN_FIELDS, "name");
        return tokensPage(r, kit, (error as { status?: number }).status ?? 400, { errors, values, scopes });
      }
    },
  },
  {
    method: "POST",
    path: "/tokens/:id/revoke",
    needsSession: true,
    handle(r, kit) {
      const ctx = requireContext(r);
      formFields(r.form ?? new URLSearchParams(), []);
      const id = validated<{ id: number }>(
        S.IdParam,
        { id: /^[1-9]\d{0,14}$/.test(r.params.id ?? "") ? Number(r.params.id) : r.params.id },
        "params",
      ).id;
      revokeAccessToken(ctx, id);
      return kit.redirect(`${r.prefix}/tokens?notice=token-revoked`);
    },
  },
  {
    method: "GET",
    path: "/permissions",
    needsSession: true,
    handle: (r, kit) => permissionsPage(r, kit, 200),
  },
  {
    method: "POST",
    path: "/permissions",
    needsSession: true,
    handle(r, kit) {
      const ctx = requireContext(r);
      const { one } = formFields(r.form ?? new URLSearchParams(), ["grantee", "pattern", "level"]);
      try {
        const body = validated<S.GrantRequest>(
          S.GrantRequest,
          { grantee: one.grantee ?? "", pattern: one.pattern ?? "", level: one.level ?? "" },
          "body",
        );
        grant(ctx, body);
      } catch (error) {
        return permissionsPage(r, kit, (error as { status?: number }).status ?? 400, {
          errors: formErrorsOf(error, GRANT_FIELDS, "grantee"),
          values: one,
        });
      }
      return kit.redirect(`${r.prefix}/permissions?notice=granted`);
    },
  },
  {
    method: "POST",
    path: "/permissions/revoke",
    needsSession: true,
    handle(r, kit) {
      const ctx = requireContext(r);
      const { one } = formFields(r.form ?? new URLSearchParams(), ["grantee", "pattern"]);
      const query = validated<S.RevokeRequest>(
        S.RevokeQuery,
        { grantee: one.grantee ?? "", pattern: one.pattern ?? "" },
        "body",
      );
      revoke(ctx, query);
      return kit.redirect(`${r.prefix}/permissions?notice=revoked`);
    },
  },
];
