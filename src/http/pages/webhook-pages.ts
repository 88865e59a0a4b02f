/**
 * Webhooks (issue 14 item 2, over issue 11 item 4): the list, create (the secret shown once),
 * a webhook's settings, enable and disable, rotate the secret, delete, send a test event, and the
 * delivery history with redeliver. Every action calls what /api/v1/webhooks... calls
 * (src/management/webhooks.ts), so `decide` alone says who may: administrators every webhook, a
 * namespace administrator those whose every pattern lies inside their namespaces (another's is
 * a 404), everyone else a 403. Webhooks declared in the config are shown read-only.
 */
import { Type } from "@sinclair/typebox";
import { BadRequest } from "../../errors.ts";
import * as S from "../../management/schemas.ts";
import {
  createWebhook,
  deleteWebhook,
  getWebhook,
  listDeliveries,
  listWebhooks,
  redeliver,
  rotateSecret,
  testWebhook,
  updateWebhook,
} from "../../management/webhooks.ts";
import { type Html, html } from "../../web/html.ts";
import { validated } from "../api/validate.ts";
import { FieldError, formErrorsOf, requireContext, viewerOf } from "./account-pages.ts";
import { type FormErrors, formFields } from "./forms.ts";
import { actionButton, csrfField, emptyState, field, table, type Viewer, when } from "./layout.ts";
import type { PageKit, PageRequest, PageRoute } from "./plugin.ts";

const EVENTS = [
  ["repository.created", "repository.created (a new repository)"],
  ["tag.pushed", "tag.pushed (every push of a tag)"],
  ["tag.deleted", "tag.deleted"],
] as const;

const NOTICES: Record<string, string> = {
  "webhook-updated": "The webhook was changed.",
  "webhook-enabled": "The webhook was enabled. Its waiting deliveries go now.",
  "webhook-disabled": "The webhook was disabled. Nothing is queued for it; its waiting deliveries wait.",
  "webhook-deleted": "The webhook was deleted with its queue and history.",
  "test-queued": "A test event was queued. Reload this page to see its delivery.",
  redelivered: "The delivery was queued again, behind the webhook's pending ones.",
};

const notice = (r: PageRequest) => NOTICES[r.url.searchParams.get("notice") ?? ""] ?? null;
const statusOf = (error: unknown) => (error as { status?: number }).status ?? 400;
const enc = encodeURIComponent;
/** The API's paging query (src/http/api/routes.ts PageOnly). */
const PageOnly = Type.Object(S.PageQuery, { additionalProperties: false });

/** The form's field for each word an error may name (errorField in forms.ts). */
const WEBHOOK_FIELDS: Record<string, string> = {
  name: "name",
  url: "url",
  repository_patterns: "repository_patterns",
  pattern: "repository_patterns",
  inside: "repository_patterns",
  events: "events",
  event: "events",
};

interface WebhookFormInput {
  /** As typed, to show again next to an error. */
  values: Record<string, string>;
  events: string[];
  /** The API's request body, before its schema checks it. */
  raw: { url: string; repository_patterns: string[]; events: string[] };
}

/** The webhook form's fields (a closed set: unknown or repeated ones are a 400 page). */
function webhookInputFrom(form: URLSearchParams, withName: boolean): WebhookFormInput {
  const { one, many } = formFields(
    form,
    withName ? ["name", "url", "repository_patterns"] : ["url", "repository_patterns"],
    ["events"],
  );
  const values = {
    name: one.name ?? "",
    url: one.url ?? "",
    repository_patterns: one.repository_patterns ?? "",
  };
  const events = many.events ?? [];
  const patterns = values.repository_patterns
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== "");
  return { values, events, raw: { url: values.url, repository_patterns: patterns, events } };
}

/** The API's schema errors for an empty events list read like a schema; this reads like a form. */
function checkEvents(input: WebhookFormInput): void {
  if (input.events.length === 0) throw new FieldError("events", "Choose at least one event.");
}

function webhookForm(options: {
  action: string;
  viewer: Viewer;
  title: string;
  submit: string;
  withName: boolean;
  values: Record<string, string>;
  events: readonly string[];
  errors: FormErrors;
  patternsHint: string;
}): Html {
  const { values: v, errors } = options;
  return html`<form class="panel" method="post" action="${options.action}" novalidate>
<h2>${options.title}</h2>
${csrfField(options.viewer)}
${options.withName ? field({ label: "Name", name: "name", value: v.name ?? "", errors, required: true, maxlength: 64, hint: "A lowercase letter, then letters, digits, '.', '_' or '-'." }) : ""}
${field({ label: "URL", name: "url", value: v.url ?? "", errors, required: true, maxlength: 2048, hint: `http(s) URL that receives a signed POST per event. Loopback and private addresses are refused unless webhooks.allow_private_networks allows them.${options.withName ? "" : " A user name and password in it are shown as ***; leave it as it is to keep them."}` })}
<div class="field"><label for="webhook-patterns">Repository patterns</label>
<textarea id="webhook-patterns" name="repository_patterns" aria-describedby="webhook-patterns-hint${errors.repository_patterns ? " webhook-patterns-error" : ""}"${errors.repository_patterns ? html` aria-invalid="true" autofocus` : ""}>${v.repository_patterns ?? ""}</textarea>
<p class="hint" id="webhook-patterns-hint">${options.patternsHint}</p>
${errors.repository_patterns ? html`<p class="error" id="webhook-patterns-error">${errors.repository_patterns}</p>` : ""}</div>
<fieldset${errors.events ? html` aria-describedby="events-error"` : ""}><legend>Events</legend>
${EVENTS.map(
  ([event, label]) =>
    html`<label><input type="checkbox" name="events" value="${event}"${options.events.includes(event) ? html` checked` : ""}> ${label}</label>`,
)}
${errors.events ? html`<p class="error" id="events-error">${errors.events}</p>` : ""}</fieldset>
<button type="submit">${options.submit}</button>
</form>`;
}

function patternsHintFor(viewer: Viewer): string {
  return viewer.isAdmin
    ? "One per line: team/*, team/app, or * for every repository."
    : `One per line, each inside a namespace you administer: ${viewer.adminNamespaces.map((ns) => `${ns}/*`).join(", ")}.`;
}

/** The secret of a new webhook or a rotation, shown in this answer only. */
function secretPanel(r: PageRequest, webhook: S.CreatedWebhookView, rotated: boolean): Html {
  return html`<section class="secret" aria-labelledby="secret-heading">
<h2 id="secret-heading">${rotated ? "The new signing secret" : "The signing secret"} of ${webhook.name}</h2>
<p><strong>Copy it now: it is shown only this once.</strong> ${rotated ? "The old secret stopped working at once; deliveries still queued are signed with this one." : "regauth stores only what it needs to compute it again when it signs."}</p>
<pre id="webhook-secret">${webhook.secret}</pre>
<p><button type="button" data-copy="webhook-secret" hidden>Copy secret</button> <span id="webhook-secret-status" role="status"></span></p>
<p>Give it to the receiver. Each delivery carries <code>X-Regauth-Signature: t=SECONDS,v1=HEX</code>: the HMAC-SHA256 with this secret over the timestamp, a dot and the raw body. The receiver computes it, compares it in constant time, and refuses a timestamp more than a few minutes old. regauth's documentation, docs/webhooks.md "Verifying a delivery", has the code for JavaScript and Python.</p>
<details><summary>How a receiver verifies (JavaScript)</summary><pre>${VERIFY_EXAMPLE}</pre></details>
<p><a href="${r.prefix}/webhooks/${enc(webhook.name)}">Go to ${webhook.name}</a> to send a test event.</p>
</section>`;
}

/** docs/webhooks.md "Verifying a delivery", the JavaScript one. */
const VERIFY_EXAMPLE = `import { createHmac, timingSafeEqual } from "node:crypto";

// body: the raw request body, before any JSON parsing
function verify(secret, header, body, toleranceSeconds = 300) {
  const parts = Object.fromEntries(header.split(",").map((kv) => kv.split("=", 2)));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || Math.abs(Date.now() / 1000 - t) > toleranceSeconds) return false;
  const expected = createHmac("sha256", secret).update(\`\${t}.\${body}\`).digest();
  const given = Buffer.from(parts.v1 ?? "", "hex");
  return given.length === expected.length && timingSafeEqual(given, expected);
}`;

function stateText(w: S.WebhookView): string {
  if (w.state === "switched-off") return "switched off (webhooks.enabled: false)";
  return w.state === "active" ? "active" : "disabled";
}

function webhooksPage(
  r: PageRequest,
  kit: PageKit,
  code: number,
  extra: {
    created?: S.CreatedWebhookView;
    errors?: FormErrors;
    values?: Record<string, string>;
    events?: readonly string[];
  } = {},
): Response {
  const ctx = requireContext(r);
  const viewer = viewerOf(r);
  const cursor = r.url.searchParams.get("cursor") ?? "";
  for (const key of r.url.searchParams.keys())
    if (key !== "cursor" && key !== "notice") throw new BadRequest(`${key.slice(0, 64)}: unknown parameter`);
  const page = listWebhooks(
    ctx,
    validated<S.PageRequest>(PageOnly, { limit: 100, ...(cursor !== "" ? { cursor } : {}) }, "query"),
  );
  const base = `${r.prefix}/webhooks`;
  const body = html`<h1>Webhooks</h1>
${extra.created ? secretPanel(r, extra.created, false) : ""}
<p>Each webhook gets a signed POST when a repository is created or a tag is pushed or deleted in the repositories it names (${viewer.isAdmin ? "you manage every webhook" : "you manage those inside the namespaces you administer"}).</p>
${
  page.items.length === 0
    ? emptyState(
        cursor !== ""
          ? "No more webhooks."
          : "No webhooks yet. Create one below to tell your CI or chat when an image is pushed.",
      )
    : table(
        ["Name", "URL", "Repositories", "Events", "State"],
        page.items.map((w) => [
          html`<a href="${base}/${enc(w.name)}">${w.name}</a>${w.declared ? html` <span class="badge">config</span>` : ""}`,
          html`<code>${w.url}</code>`,
          html`${w.repository_patterns.map((p, i) => html`${i > 0 ? ", " : ""}<code>${p}</code>`)}`,
          w.events.join(", "),
          stateText(w),
        ]),
        "Webhooks you may manage",
        { wide: true },
      )
}
<nav class="pager" aria-label="Pages">${page.next_cursor ? html`<a href="${base}?${new URLSearchParams({ cursor: page.next_cursor }).toString()}">Next page</a>` : ""}${cursor !== "" ? html`<a href="${base}">First page</a>` : ""}</nav>
${webhookForm({
  action: base,
  viewer,
  title: "Create a webhook",
  submit: "Create webhook",
  withName: true,
  values: extra.values ?? {
    repository_patterns: viewer.isAdmin ? "*" : viewer.adminNamespaces.map((ns) => `${ns}/*`).join("\n"),
  },
  events: extra.events ?? EVENTS.map(([event]) => event),
  errors: extra.errors ?? {},
  patternsHint: patternsHintFor(viewer),
})}`;
  return kit.page(r, code, { title: "Webhooks", current: "/webhooks", body, notice: notice(r) });
}

/** An RFC 3339 time to the second, UTC: deliveries follow each other within a minute. */
function seconds(time: string): string {
  return `${time.slice(11, 19)} UTC`;
}

function deliveryStatus(d: S.DeliveryView): Html {
  if (d.status === "pending")
    return html`<span class="badge">pending</span>${d.next_attempt_at ? html`<br><span class="muted">next try ${when(d.next_attempt_at)}</span>` : ""}`;
  return d.status === "delivered" ? html`delivered` : html`<strong>failed</strong>`;
}

function webhookPage(
  r: PageRequest,
  kit: PageKit,
  code: number,
  extra: {
    rotated?: S.CreatedWebhookView;
    errors?: FormErrors;
    values?: Record<string, string>;
    events?: readonly string[];
    alert?: string;
  } = {},
): Response {
  const ctx = requireContext(r);
  const viewer = viewerOf(r);
  const name = validated<{ name: string }>(S.WebhookParam, { name: r.params.name ?? "" }, "params").name;
  const cursor = r.url.searchParams.get("cursor") ?? "";
  for (const key of r.url.searchParams.keys())
    if (key !== "cursor" && key !== "notice") throw new BadRequest(`${key.slice(0, 64)}: unknown parameter`);
  const webhook = getWebhook(ctx, name);
  const deliveries = listDeliveries(
    ctx,
    webhook.name,
    validated<S.PageRequest>(PageOnly, { limit: 50, ...(cursor !== "" ? { cursor } : {}) }, "query"),
  );
  const base = `${r.prefix}/webhooks/${enc(webhook.name)}`;
  const act = (action: string, label: string, options: { danger?: boolean; confirm?: string } = {}) =>
    actionButton({
      action: `${base}/${action}`,
      label,
      viewer,
      accessibleLabel: `${label} ${webhook.name}`,
      ...(options.danger ? { danger: true } : {}),
      ...(options.confirm ? { confirm: options.confirm } : {}),
    });
  const mayTest = webhook.state === "active";
  const body = html`<h1>Webhook ${webhook.name}</h1>
<p><a href="${r.prefix}/webhooks">All webhooks</a></p>
${extra.rotated ? secretPanel(r, extra.rotated, true) : ""}
${webhook.declared ? html`<p class="notice" role="note">This webhook is declared in the config (<code>webhooks.declared</code>): change or delete it there. Here you can send it a test event and redeliver.</p>` : ""}
<dl class="facts">
<dt>URL</dt><dd><code>${webhook.url}</code></dd>
<dt>Repositories</dt><dd>${webhook.repository_patterns.map((p, i) => html`${i > 0 ? ", " : ""}<code>${p}</code>`)}</dd>
<dt>Events</dt><dd>${webhook.events.join(", ")}</dd>
<dt>State</dt><dd>${stateText(webhook)}</dd>
<dt>Created</dt><dd>${when(webhook.created_at)} by ${webhook.created_by}</dd>
<dt>Changed</dt><dd>${when(webhook.updated_at)}</dd>
</dl>
<p class="actions">${mayTest ? act("test", "Send a test event") : html`<span class="muted">Test events and redeliveries need the webhook active.</span>`}
${
  webhook.declared
    ? ""
    : html`${webhook.enabled ? act("disable", "Disable") : act("enable", "Enable")}
${act("secret", "Rotate secret", { confirm: `Rotate the secret of ${webhook.name}? The old one stops working at once.` })}
${act("delete", "Delete", { danger: true, confirm: `Delete the webhook ${webhook.name} with its queue and history?` })}`
}</p>
<h2>Deliveries</h2>
${
  deliveries.items.length === 0
    ? emptyState(
        cursor !== ""
          ? "No older deliveries."
          : "Nothing sent yet. Send a test event, or push to a repository it names.",
      )
    : table(
        [
          "Queued",
          "Event",
          "Status",
          "Response",
          "Latency",
          "Attempts",
          "Last error",
          "Response excerpt",
          "",
        ],
        deliveries.items.map((d) => [
          html`${when(d.created_at)}<br><span class="muted">#${d.id}${d.redelivery_of !== null ? ` (again of #${d.redelivery_of})` : ""}${d.last_attempt_at !== null ? html`<br>last attempt ${seconds(d.last_attempt_at)}` : ""}</span>`,
          html`${d.type}${d.test ? html` <span class="badge">test</span>` : ""}`,
          deliveryStatus(d),
          d.response_status === null ? html`<span class="muted">none</span>` : d.response_status,
          d.latency_ms === null ? "" : `${d.latency_ms} ms`,
          d.attempts,
          d.last_error === null ? "" : html`<code>${d.last_error}</code>`,
          d.response_excerpt === null || d.response_excerpt === ""
            ? ""
            : html`<code>${d.response_excerpt}</code>`,
          d.status === "pending" || !mayTest
            ? ""
            : actionButton({
                action: `${r.prefix}/deliveries/${d.id}/redeliver`,
                label: "Redeliver",
                viewer,
                accessibleLabel: `Redeliver delivery ${d.id}`,
              }),
        ]),
        `Deliveries of ${webhook.name}, newest first`,
        { wide: true },
      )
}
<nav class="pager" aria-label="Pages">${deliveries.next_cursor ? html`<a href="${base}?${new URLSearchParams({ cursor: deliveries.next_cursor }).toString()}">Older deliveries</a>` : ""}${cursor !== "" ? html`<a href="${base}">Newest</a>` : ""}</nav>
${
  webhook.declared
    ? ""
    : webhookForm({
        action: base,
        viewer,
        title: "Change the webhook",
        submit: "Save changes",
        withName: false,
        values: extra.values ?? {
          url: webhook.url,
          repository_patterns: webhook.repository_patterns.join("\n"),
        },
        events: extra.events ?? webhook.events,
        errors: extra.errors ?? {},
        patternsHint: patternsHintFor(viewer),
      })
}`;
  return kit.page(r, code, {
    title: webhook.name,
    current: "/webhooks",
    body,
    notice: notice(r),
    alert: extra.alert ?? null,
  });
}

/** The webhook an action's path names, as the API's :name (validated the same way). */
function nameParam(r: PageRequest): string {
  return validated<{ name: string }>(S.WebhookParam, { name: r.params.name ?? "" }, "params").name;
}

/** The form again, as typed, with the error next to its field. */
function shownAgain(error: unknown, input: WebhookFormInput) {
  return { errors: formErrorsOf(error, WEBHOOK_FIELDS, "url"), values: input.values, events: input.events };
}

export const WEBHOOK_ROUTES: readonly PageRoute[] = [
  { method: "GET", path: "/webhooks", needsSession: true, handle: (r, kit) => webhooksPage(r, kit, 200) },
  {
    method: "POST",
    path: "/webhooks",
    needsSession: true,
    handle(r, kit) {
      const ctx = requireContext(r);
      const input = webhookInputFrom(r.form ?? new URLSearchParams(), true);
      try {
        checkEvents(input);
        const body = validated<S.CreateWebhookRequest>(
          S.CreateWebhookRequest,
          { name: input.values.name, ...input.raw },
          "body",
        );
        const created = createWebhook(ctx, body);
        return webhooksPage(r, kit, 201, { created });
      } catch (error) {
        // A mistake in a field (400), a name taken (409) or patterns outside the caller's
        // namespaces (403) are shown next to the field; the list page itself may be refused.
        const shown = shownAgain(error, input);
        return webhooksPage(r, kit, statusOf(error), shown);
      }
    },
  },
  {
    method: "GET",
    path: "/webhooks/:name",
    needsSession: true,
    handle: (r, kit) => webhookPage(r, kit, 200),
  },
  {
    method: "POST",
    path: "/webhooks/:name",
    needsSession: true,
    handle(r, kit) {
      const ctx = requireContext(r);
      const name = nameParam(r);
      const input = webhookInputFrom(r.form ?? new URLSearchParams(), false);
      try {
        checkEvents(input);
        // The form shows the URL as the API does, a user name and password as ***: the URL as
        // shown is "unchanged", so saving other settings keeps the credentials.
        const { url, ...rest } = input.raw;
        const unchanged = url === getWebhook(ctx, name).url;
        const body = validated<S.UpdateWebhookBody>(
          S.UpdateWebhookBody,
          unchanged ? rest : input.raw,
          "body",
        );
        updateWebhook(ctx, name, body);
      } catch (error) {
        // Not found (404) and declared (409) are the page's answer; a field's mistake (400) and
        // new patterns outside the caller's namespaces (403) are shown next to the field.
        const status = statusOf(error);
        if (!(error instanceof FieldError) && status !== 400 && status !== 403) throw error;
        return webhookPage(r, kit, status, shownAgain(error, input));
      }
      return kit.redirect(`${r.prefix}/webhooks/${enc(name)}?notice=webhook-updated`);
    },
  },
  ...(["enable", "disable"] as const).map(
    (action): PageRoute => ({
      method: "POST",
      path: `/webhooks/:name/${action}`,
      needsSession: true,
      handle(r, kit) {
        const ctx = requireContext(r);
        formFields(r.form ?? new URLSearchParams(), []);
        const name = nameParam(r);
        updateWebhook(ctx, name, { enabled: action === "enable" });
        return kit.redirect(`${r.prefix}/webhooks/${enc(name)}?notice=webhook-${action}d`);
      },
    }),
  ),
  {
    method: "POST",
    path: "/webhooks/:name/secret",
    needsSession: true,
    handle(r, kit) {
      const ctx = requireContext(r);
      formFields(r.form ?? new URLSearchParams(), []);
      const rotated = rotateSecret(ctx, nameParam(r));
      return webhookPage(r, kit, 200, { rotated });
    },
  },
  {
    method: "POST",
    path: "/webhooks/:name/delete",
    needsSession: true,
    handle(r, kit) {
      const ctx = requireContext(r);
      formFields(r.form ?? new URLSearchParams(), []);
      deleteWebhook(ctx, nameParam(r));
      return kit.redirect(`${r.prefix}/webhooks?notice=webhook-deleted`);
    },
  },
  {
    method: "POST",
    path: "/webhooks/:name/test",
    needsSession: true,
    handle(r, kit) {
      const ctx = requireContext(r);
      formFields(r.form ?? new URLSearchParams(), []);
      const name = nameParam(r);
      testWebhook(ctx, name);
      return kit.redirect(`${r.prefix}/webhooks/${enc(name)}?notice=test-queued`);
    },
  },
  {
    method: "POST",
    path: "/deliveries/:id/redeliver",
    needsSession: true,
    handle(r, kit) {
      const ctx = requireContext(r);
      formFields(r.form ?? new URLSearchParams(), []);
      const id = validated<{ id: number }>(
        S.IdParam,
        { id: /^[1-9]\d{0,14}$/.test(r.params.id ?? "") ? Number(r.params.id) : r.params.id },
        "params",
      ).id;
      const delivery = redeliver(ctx, id);
      return kit.redirect(`${r.prefix}/webhooks/${enc(delivery.webhook)}?notice=redelivered`);
    },
  },
];
