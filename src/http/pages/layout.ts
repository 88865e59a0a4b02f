/**
 * The page shell and the small components every page uses: navigation, notices, labelled
 * fields with their error next to them, tables, empty states. All markup goes through the
 * escaping `html` tag (src/web/html.ts).
 */
import { type Html, html, type HtmlValue } from "../../web/html.ts";
import type { FormErrors } from "./forms.ts";

/** Who is signed in, as far as the navigation cares (the rules live in src/management/). */
export interface Viewer {
  account: string;
  isAdmin: boolean;
  adminNamespaces: readonly string[];
  /** Null for a database account, else the back-end that holds the account (LDAP, config). */
  externalBackend: string | null;
  csrfToken: string;
}

interface NavEntry {
  path: string;
  label: string;
  visible(viewer: Viewer): boolean;
}

/**
 * The navigation, in order. "Repositories" for database accounts (the catalog's viewer is one,
 * as in the API); "Webhooks" for whom `decide` lets list them: administrators and namespace
 * administrators (src/management/authorization.ts, listWebhooks).
 */
export const NAVIGATION: readonly NavEntry[] = [
  { path: "/account", label: "Account", visible: () => true },
  { path: "/tokens", label: "Access tokens", visible: (v) => v.externalBackend === null },
  { path: "/repositories", label: "Repositories", visible: (v) => v.externalBackend === null },
  { path: "/permissions", label: "Permissions", visible: (v) => v.externalBackend === null },
  { path: "/robots", label: "Robot accounts", visible: (v) => v.isAdmin || v.adminNamespaces.length > 0 },
  { path: "/admin/users", label: "Users", visible: (v) => v.isAdmin },
  { path: "/admin/groups", label: "Groups", visible: (v) => v.isAdmin },
  { path: "/webhooks", label: "Webhooks", visible: (v) => v.isAdmin || v.adminNamespaces.length > 0 },
  { path: "/admin/audit", label: "Audit log", visible: (v) => v.isAdmin },
];

export interface PageShell {
  prefix: string;
  title: string;
  /** The navigation entry to mark as current. */
  current?: string;
  viewer: Viewer | null;
  assetVersion: string;
  notice?: string | null;
  alert?: string | null;
  body: HtmlValue;
}

export function renderPage(page: PageShell): string {
  const p = page.prefix;
  const viewer = page.viewer;
  return `<!doctype html>\n${html`<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>${page.title} · regauth</title>
<link rel="stylesheet" href="${p}/assets/app.css?v=${page.assetVersion}">
<script src="${p}/assets/app.js?v=${page.assetVersion}" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="site">
<a class="brand" href="${p}/">regauth</a>
${
  viewer &&
  html`<nav class="main" aria-label="Main"><ul>${NAVIGATION.filter((entry) => entry.visible(viewer)).map(
    (entry) =>
      html`<li><a href="${p}${entry.path}"${page.current === entry.path ? html` aria-current="page"` : ""}>${entry.label}</a></li>`,
  )}</ul></nav>
<form method="post" action="${p}/sign-out"><input type="hidden" name="csrf" value="${viewer.csrfToken}"><span>${viewer.account}</span><button type="submit">Sign out</button></form>`
}
</header>
<main id="main" tabindex="-1">
${page.notice ? html`<p class="notice" role="status">${page.notice}</p>` : ""}
${page.alert ? html`<p class="alert" role="alert">${page.alert}</p>` : ""}
${page.body}
</main>
</body>
</html>`}\n`;
}

let fieldIds = 0;

export interface FieldOptions {
  label: string;
  name: string;
  type?: "text" | "password" | "search" | "datetime-local";
  value?: string;
  hint?: string;
  errors?: FormErrors;
  required?: boolean;
  autocomplete?: string;
  maxlength?: number;
}

/** A labelled input with its hint and its error (aria-describedby), the error next to the field. */
export function field(options: FieldOptions): Html {
  const id = `f-${options.name}-${++fieldIds}`;
  const error = options.errors?.[options.name];
  const described = [options.hint ? `${id}-hint` : "", error ? `${id}-error` : ""].filter(Boolean).join(" ");
  return html`<div class="field"><label for="${id}">${options.label}</label>
<input id="${id}" name="${options.name}" type="${options.type ?? "text"}" value="${options.value ?? ""}"${
    options.required ? html` required` : ""
  }${options.autocomplete ? html` autocomplete="${options.autocomplete}"` : ""}${
    options.maxlength ? html` maxlength="${options.maxlength}"` : ""
  }${error ? html` aria-invalid="true" autofocus` : ""}${described ? html` aria-describedby="${described}"` : ""}>
${options.hint ? html`<p class="hint" id="${id}-hint">${options.hint}</p>` : ""}
${error ? html`<p class="error" id="${id}-error">${error}</p>` : ""}</div>`;
}

export function selectField(options: {
  label: string;
  name: string;
  choices: readonly (readonly [value: string, label: string])[];
  value?: string;
  errors?: FormErrors;
  hint?: string;
}): Html {
  const id = `f-${options.name}-${++fieldIds}`;
  const error = options.errors?.[options.name];
  const described = [options.hint ? `${id}-hint` : "", error ? `${id}-error` : ""].filter(Boolean).join(" ");
  return html`<div class="field"><label for="${id}">${options.label}</label>
<select id="${id}" name="${options.name}"${error ? html` aria-invalid="true" autofocus` : ""}${
    described ? html` aria-describedby="${described}"` : ""
  }>${options.choices.map(
    ([value, label]) =>
      html`<option value="${value}"${value === options.value ? html` selected` : ""}>${label}</option>`,
  )}</select>
${options.hint ? html`<p class="hint" id="${id}-hint">${options.hint}</p>` : ""}
${error ? html`<p class="error" id="${id}-error">${error}</p>` : ""}</div>`;
}

/** A hidden CSRF field, in every form that changes something. */
export function csrfField(viewer: Viewer): Html {
  return html`<input type="hidden" name="csrf" value="${viewer.csrfToken}">`;
}

/** A one-button form (revoke, delete, enable, ...), with an optional confirmation question. */
export function actionButton(options: {
  action: string;
  label: string;
  viewer: Viewer;
  fields?: Record<string, string>;
  danger?: boolean;
  confirm?: string;
  /** Names the object for screen readers: "Revoke token ci". */
  accessibleLabel?: string;
}): Html {
  return html`<form class="inline" method="post" action="${options.action}"${
    options.confirm ? html` data-confirm="${options.confirm}"` : ""
  }>${csrfField(options.viewer)}${Object.entries(options.fields ?? {}).map(
    ([name, value]) => html`<input type="hidden" name="${name}" value="${value}">`,
  )}<button type="submit"${options.danger ? html` class="danger"` : html` class="secondary"`}${
    options.accessibleLabel ? html` aria-label="${options.accessibleLabel}"` : ""
  }>${options.label}</button></form>`;
}

/** `wide`: keeps a readable width and scrolls sideways on a phone rather than squeezing. */
export function table(
  headers: readonly string[],
  rows: readonly HtmlValue[][],
  caption: string,
  options: { wide?: boolean } = {},
): Html {
  return html`<div class="table-wrap" role="region" aria-label="${caption}" tabindex="0"><table${options.wide ? html` class="wide"` : ""}><caption class="muted">${caption}</caption><thead><tr>${headers.map(
    (h) => html`<th scope="col">${h}</th>`,
  )}</tr></thead><tbody>${rows.map((row) => html`<tr>${row.map((cell) => html`<td>${cell}</td>`)}</tr>`)}</tbody></table></div>`;
}

export function emptyState(text: HtmlValue): Html {
  return html`<div class="empty">${text}</div>`;
}

/** An RFC 3339 time as a short UTC text, or "never". */
export function when(time: string | null): string {
  if (time === null) return "never";
  return `${time.slice(0, 16).replace("T", " ")} UTC`;
}
