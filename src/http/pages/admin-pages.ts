/**
 * Pages for administrators (users, groups, audit log) and for namespace administrators (robot
 * accounts). The navigation hides what a viewer may not use, but the rule is the domain's: each
 * page calls the management function, and a refusal from `decide` is the page's answer.
 */
import { AUDIT_KINDS } from "../../audit/audit-log.ts";
import { queryAudit } from "../../management/audit.ts";
import { addMember, createGroup, deleteGroup, listGroups, removeMember } from "../../management/groups.ts";
import { createRobot, deleteRobot, getRobot, listRobots } from "../../management/robots.ts";
import * as S from "../../management/schemas.ts";
import { createRobotToken, listAccessTokens, revokeAccessToken } from "../../management/tokens.ts";
import { createUser, deleteUser, listUsers, updateUser } from "../../management/users.ts";
import { BadRequest } from "../../errors.ts";
import { type Html, html } from "../../web/html.ts";
import { validated } from "../api/validate.ts";
import {
  FieldError,
  formErrorsOf,
  requireContext,
  secretPanel,
  TOKEN_FIELDS,
  tokenForm,
  tokenRequestFrom,
  tokenTable,
  viewerOf,
} from "./account-pages.ts";
import { type FormErrors, formFields } from "./forms.ts";
import { actionButton, csrfField, emptyState, field, selectField, table, when } from "./layout.ts";
import type { PageKit, PageRequest, PageRoute } from "./plugin.ts";

const NOTICES: Record<string, string> = {
  "user-created": "The user was created. Grant them a namespace on the Permissions page.",
  "user-updated": "The user was changed.",
  "user-deleted": "The user was deleted. The name stays retired until released.",
  "group-created": "The group was created.",
  "group-deleted": "The group was deleted with its grants.",
  "member-added": "The member was added.",
  "member-removed": "The member was removed.",
  "robot-created": "The robot account was created. Create a token for it below.",
  "robot-deleted": "The robot account was deleted with its tokens and grants.",
  "token-revoked": "The access token was revoked. It stops working at once.",
};

const notice = (r: PageRequest) => NOTICES[r.url.searchParams.get("notice") ?? ""] ?? null;
const status = (error: unknown) => (error as { status?: number }).status ?? 400;
const enc = encodeURIComponent;

// ---- Users ----

const USER_STATES = [
  ["", "All"],
  ["enabled", "Enabled"],
  ["disabled", "Disabled"],
  ["pending", "Awaiting approval"],
  ["admin", "Administrators"],
] as const;

function usersPage(
  r: PageRequest,
  kit: PageKit,
  code: number,
  extra: { errors?: FormErrors; values?: Record<string, string> } = {},
): Response {
  const ctx = requireContext(r);
  const viewer = viewerOf(r);
  const q = r.url.searchParams.get("q") ?? "";
  const state = r.url.searchParams.get("state") ?? "";
  const filter = validated<S.ListUsersQuery>(
    S.ListUsersQuery,
    { ...(q !== "" ? { q } : {}), ...(state !== "" ? { state } : {}), limit: 500 },
    "query",
  );
  const users = listUsers(ctx, filter).items;
  const errors = extra.errors ?? {};
  const v = extra.values ?? {};
  const base = `${r.prefix}/admin/users`;
  const rowActions = (u: S.UserView): Html => {
    const self = u.name === viewer.account;
    const act = (action: string, label: string, danger = false, confirm?: string) =>
      actionButton({
        action: `${base}/${enc(u.name)}/${action}`,
        label,
        viewer,
        danger,
        accessibleLabel: `${label} ${u.name}`,
        ...(confirm ? { confirm } : {}),
      });
    if (self) return html`<span class="muted">you</span>`;
    return html`${u.is_enabled ? act("disable", "Disable") : act("enable", u.is_pending_approval ? "Approve" : "Enable")}
${u.is_admin ? act("demote", "Demote") : act("promote", "Make admin")}
${act("delete", "Delete", true, `Delete ${u.name}? Their tokens and grants go too; the name stays retired.`)}`;
  };
  const body = html`<h1>Users</h1>
<form class="filters" method="get" action="${base}" role="search">
${field({ label: "Name contains", name: "q", type: "search", value: q, maxlength: 64 })}
${selectField({ label: "State", name: "state", choices: USER_STATES, value: state })}
<div class="field"><button type="submit" class="secondary">Filter</button></div>
</form>
${
  users.length === 0
    ? emptyState(q || state ? "No user matches these filters." : "No users yet besides you. Add one below.")
    : table(
        ["Name", "State", "Role", "Created", "Last login", "Actions"],
        users.map((u) => [
          u.name,
          u.is_enabled
            ? "enabled"
            : u.is_pending_approval
              ? html`<span class="badge">awaiting approval</span>`
              : "disabled",
          u.is_admin ? "administrator" : "user",
          when(u.created_at),
          when(u.last_login_at),
          html`<span class="actions">${rowActions(u)}</span>`,
        ]),
        "People (robot accounts are on their own page)",
      )
}
<form class="panel" method="post" action="${base}" novalidate>
<h2>Add a user</h2>
${csrfField(viewer)}
${field({ label: "Name", name: "name", value: v.name ?? "", errors, required: true, maxlength: 64, hint: "Lowercase letters, digits, '.', '_' and '-'." })}
${field({ label: "Password", name: "password", type: "password", errors, required: true, autocomplete: "new-password", maxlength: 1024, hint: "At least 8 characters; tell it to them over a safe channel." })}
<fieldset><legend>Role</legend><label><input type="checkbox" name="admin" value="on"${v.admin === "on" ? html` checked` : ""}> Administrator</label></fieldset>
<button type="submit">Add user</button>
</form>`;
  return kit.page(r, code, { title: "Users", current: "/admin/users", body, notice: notice(r) });
}

const USER_UPDATES: Record<string, S.UpdateUserBody> = {
  enable: { enabled: true },
  disable: { enabled: false },
  promote: { admin: true },
  demote: { admin: false },
};

// ---- Groups ----

function groupsPage(
  r: PageRequest,
  kit: PageKit,
  code: number,
  extra: { errors?: FormErrors; values?: Record<string, string>; group?: string } = {},
): Response {
  const ctx = requireContext(r);
  const viewer = viewerOf(r);
  const groups = listGroups(ctx, { limit: 500 }).items;
  const errors = extra.errors ?? {};
  const base = `${r.prefix}/admin/groups`;
  const body = html`<h1>Groups</h1>
<p>Grant a group (<code>@devs</code>) on the Permissions page and every member has it.</p>
${
  groups.length === 0
    ? emptyState("No groups yet. Create one below, add members, then grant it a namespace.")
    : groups.map(
        (
          g,
        ) => html`<section class="panel" aria-labelledby="group-${g.name}"><h2 id="group-${g.name}">@${g.name}</h2>
${
  g.members.length === 0
    ? html`<p class="muted">No members yet.</p>`
    : html`<ul>${g.members.map(
        (m) =>
          html`<li>${m} ${actionButton({ action: `${base}/${enc(g.name)}/members/remove`, label: "Remove", viewer, fields: { user: m }, accessibleLabel: `Remove ${m} from ${g.name}` })}</li>`,
      )}</ul>`
}
<form method="post" action="${base}/${enc(g.name)}/members" novalidate>${csrfField(viewer)}
${field({ label: `Add a member to ${g.name}`, name: "user", errors: extra.group === g.name ? errors : {}, maxlength: 160 })}
<button type="submit" class="secondary">Add member</button></form>
<p>${actionButton({ action: `${base}/${enc(g.name)}/delete`, label: "Delete group", viewer, danger: true, confirm: `Delete the group ${g.name} and its grants?`, accessibleLabel: `Delete group ${g.name}` })}</p>
</section>`,
      )
}
<form class="panel" method="post" action="${base}" novalidate>
<h2>Create a group</h2>
${csrfField(viewer)}
${field({ label: "Name", name: "name", value: extra.group === undefined ? (extra.values?.name ?? "") : "", errors: extra.group === undefined ? errors : {}, required: true, maxlength: 64 })}
<button type="submit">Create group</button>
</form>`;
  return kit.page(r, code, { title: "Groups", current: "/admin/groups", body, notice: notice(r) });
}

// ---- Robots ----

function robotsPage(
  r: PageRequest,
  kit: PageKit,
  code: number,
  extra: { errors?: FormErrors; values?: Record<string, string> } = {},
): Response {
  const ctx = requireContext(r);
  const viewer = viewerOf(r);
  const robots = listRobots(ctx, { limit: 500 }).items;
  const errors = extra.errors ?? {};
  const v = extra.values ?? {};
  const owners: [string, string][] = [
    ...(viewer.isAdmin ? ([["", "the registry (regauth+NAME)"]] as [string, string][]) : []),
    ...viewer.adminNamespaces.map((ns): [string, string] => [ns, `${ns} (${ns}+NAME)`]),
  ];
  const body = html`<h1>Robot accounts</h1>
<p>Robots are accounts for CI: no password, only access tokens, with their own grants. A namespace's robots can be granted only inside that namespace.</p>
${
  robots.length === 0
    ? emptyState("No robot accounts yet. Create one for your CI job below, then give it a token and a grant.")
    : table(
        ["Name", "Owner", "Description", "Created", "Last login", ""],
        robots.map((b) => [
          html`<a href="${r.prefix}/robots/${enc(b.name)}">${b.name}</a>`,
          b.owner_namespace ?? "the registry",
          b.description,
          when(b.created_at),
          when(b.last_login_at),
          actionButton({
            action: `${r.prefix}/robots/${enc(b.name)}/delete`,
            label: "Delete",
            viewer,
            danger: true,
            confirm: `Delete ${b.name} with its tokens and grants?`,
            accessibleLabel: `Delete robot ${b.name}`,
          }),
        ]),
        "Robot accounts",
      )
}
${
  owners.length > 0
    ? html`<form class="panel" method="post" action="${r.prefix}/robots" novalidate>
<h2>Create a robot account</h2>
${csrfField(viewer)}
${field({ label: "Name", name: "name", value: v.name ?? "", errors, required: true, maxlength: 64, hint: "e.g. ci; the account is called OWNER+ci." })}
${selectField({ label: "Owner", name: "namespace", choices: owners, value: v.namespace ?? owners[0]?.[0] ?? "", errors })}
${field({ label: "Description", name: "description", value: v.description ?? "", errors, maxlength: 256 })}
<button type="submit">Create robot</button>
</form>`
    : ""
}`;
  return kit.page(r, code, { title: "Robot accounts", current: "/robots", body, notice: notice(r) });
}

function robotPage(
  r: PageRequest,
  kit: PageKit,
  code: number,
  extra: {
    created?: S.CreatedAccessTokenView;
    errors?: FormErrors;
    values?: Record<string, string>;
    scopes?: string[];
  } = {},
): Response {
  const ctx = requireContext(r);
  const viewer = viewerOf(r);
  const robot = getRobot(ctx, r.params.name ?? "");
  const tokens = listAccessTokens(ctx, { owner: robot.name, limit: 500 }).items;
  const base = `${r.prefix}/robots/${enc(robot.name)}`;
  const body = html`<h1>Robot ${robot.name}</h1>
<p><a href="${r.prefix}/robots">All robot accounts</a></p>
<dl class="facts"><dt>Owner</dt><dd>${robot.owner_namespace ?? "the registry"}</dd><dt>Description</dt><dd>${robot.description || "none"}</dd><dt>Created</dt><dd>${when(robot.created_at)}</dd></dl>
${extra.created ? secretPanel({ secret: extra.created.secret, tokenName: extra.created.name, account: robot.name, registryHost: kit.options.registryHost }) : ""}
<h2>Tokens</h2>
${
  tokens.length === 0
    ? emptyState(
        html`This robot has no tokens yet. Create one below, then grant <strong>${robot.name}</strong> on the <a href="${r.prefix}/permissions">Permissions</a> page.`,
      )
    : tokenTable(tokens, viewer, (id) => `${base}/tokens/${id}/revoke`, `Tokens of ${robot.name}`)
}
${tokenForm({ action: `${base}/tokens`, viewer, scopes: ["pull", "push", "delete"], values: extra.values ?? {}, chosenScopes: extra.scopes ?? ["pull", "push"], errors: extra.errors ?? {}, maxLifetimeDays: ctx.config.maxTokenLifetimeDays })}`;
  return kit.page(r, code, { title: robot.name, current: "/robots", body, notice: notice(r) });
}

// ---- Audit ----

/** `datetime-local` (no zone, labelled UTC) to RFC 3339. */
function utcTime(value: string, field: string): string | undefined {
  if (value === "") return undefined;
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(value))
    throw new FieldError(field, "Enter a date and time.");
  return `${value.length === 16 ? `${value}:00` : value}Z`;
}

function auditPage(r: PageRequest, kit: PageKit): Response {
  const ctx = requireContext(r);
  const params = r.url.searchParams;
  const allowed = ["kind", "actor", "repository", "since", "until", "cursor"];
  for (const key of params.keys())
    if (!allowed.includes(key)) throw new BadRequest(`${key.slice(0, 64)}: unknown filter`);
  const v = Object.fromEntries(allowed.map((key) => [key, params.get(key) ?? ""]));
  let errors: FormErrors = {};
  let page: S.Page<S.AuditEventView> = { items: [], next_cursor: null };
  try {
    const query = validated<S.AuditQuery>(
      S.AuditQuery,
      {
        ...(v.kind ? { kind: v.kind } : {}),
        ...(v.actor ? { actor: v.actor } : {}),
        ...(v.repository ? { repository: v.repository } : {}),
        ...(v.since ? { since: utcTime(v.since ?? "", "since") } : {}),
        ...(v.until ? { until: utcTime(v.until ?? "", "until") } : {}),
        ...(v.cursor ? { cursor: v.cursor } : {}),
        limit: 100,
      },
      "query",
    );
    page = queryAudit(ctx, query);
  } catch (error) {
    // A bad filter is shown next to it; a refusal (403) is the page's answer.
    if (!(error instanceof FieldError || error instanceof BadRequest)) throw error;
    errors = formErrorsOf(
      error,
      {
        since: "since",
        until: "until",
        actor: "actor",
        repository: "repository",
        kind: "kind",
        cursor: "kind",
      },
      "kind",
    );
  }
  const next = new URLSearchParams(
    Object.entries(v).filter(([key, value]) => value !== "" && key !== "cursor"),
  );
  if (page.next_cursor) next.set("cursor", page.next_cursor);
  const filtered = Object.entries(v).some(([key, value]) => key !== "cursor" && value !== "");
  const body = html`<h1>Audit log</h1>
<p>Sign-ins, token decisions, token use and every change, oldest first. Times are UTC.</p>
<form class="filters" method="get" action="${r.prefix}/admin/audit" role="search">
${selectField({ label: "Kind", name: "kind", choices: [["", "All"], ...AUDIT_KINDS.map((k): [string, string] => [k, k])], value: v.kind ?? "", errors })}
${field({ label: "Actor", name: "actor", value: v.actor ?? "", errors, maxlength: 160 })}
${field({ label: "Repository", name: "repository", value: v.repository ?? "", errors, maxlength: 256 })}
${field({ label: "From (UTC)", name: "since", type: "datetime-local", value: v.since ?? "", errors })}
${field({ label: "Until (UTC)", name: "until", type: "datetime-local", value: v.until ?? "", errors })}
<div class="field"><button type="submit" class="secondary">Filter</button></div>
</form>
${
  page.items.length === 0
    ? emptyState(
        filtered
          ? "No event matches these filters."
          : "Nothing recorded yet. Sign-ins, pushes and changes appear here.",
      )
    : table(
        ["When", "Kind", "Actor", "Address", "Repository", "Outcome", "Details"],
        page.items.map((e) => [
          `${e.at.slice(0, 19).replace("T", " ")}`,
          e.kind,
          e.actor,
          e.ip,
          e.repository ?? "",
          e.outcome,
          html`<code>${JSON.stringify(e.details).slice(0, 300)}</code>`,
        ]),
        "Audit events",
        { wide: true },
      )
}
<nav class="pager" aria-label="Pages">${page.next_cursor ? html`<a href="${r.prefix}/admin/audit?${next.toString()}">Next page</a>` : ""}${v.cursor ? html`<a href="${r.prefix}/admin/audit">First page</a>` : ""}</nav>`;
  return kit.page(r, Object.keys(errors).length > 0 ? 400 : 200, {
    title: "Audit log",
    current: "/admin/audit",
    body,
  });
}

const USER_FIELDS: Record<string, string> = { name: "name", password: "password", user: "name" };

export const ADMIN_ROUTES: readonly PageRoute[] = [
  { method: "GET", path: "/admin/users", needsSession: true, handle: (r, kit) => usersPage(r, kit, 200) },
  {
    method: "POST",
    path: "/admin/users",
    needsSession: true,
    async handle(r, kit) {
      const ctx = requireContext(r);
      const { one } = formFields(r.form ?? new URLSearchParams(), ["name", "password", "admin"]);
      try {
        if (one.admin !== undefined && one.admin !== "on")
          throw new FieldError("name", "admin: expected on or nothing");
        const body = validated<S.CreateUserRequest>(
          S.CreateUserRequest,
          {
            name: one.name ?? "",
            password: one.password ?? "",
            ...(one.admin === "on" ? { admin: true } : {}),
          },
          "body",
        );
        await createUser(ctx, body);
      } catch (error) {
        const { password: _password, ...values } = one;
        return usersPage(r, kit, status(error), { errors: formErrorsOf(error, USER_FIELDS, "name"), values });
      }
      return kit.redirect(`${r.prefix}/admin/users?notice=user-created`);
    },
  },
  {
    method: "POST",
    path: "/admin/users/:name/:action",
    needsSession: true,
    handle(r, kit) {
      const ctx = requireContext(r);
      formFields(r.form ?? new URLSearchParams(), []);
      const name = validated<{ name: string }>(S.NameParam, { name: r.params.name ?? "" }, "params").name;
      const action = r.params.action ?? "";
      if (action === "delete") {
        deleteUser(ctx, name);
        return kit.redirect(`${r.prefix}/admin/users?notice=user-deleted`);
      }
      const change = Object.hasOwn(USER_UPDATES, action) ? USER_UPDATES[action] : undefined;
      if (!change) throw new BadRequest(`unknown action ${JSON.stringify(action.slice(0, 32))}`);
      updateUser(ctx, { ...change, name });
      return kit.redirect(`${r.prefix}/admin/users?notice=user-updated`);
    },
  },
  { method: "GET", path: "/admin/groups", needsSession: true, handle: (r, kit) => groupsPage(r, kit, 200) },
  {
    method: "POST",
    path: "/admin/groups",
    needsSession: true,
    handle(r, kit) {
      const ctx = requireContext(r);
      const { one } = formFields(r.form ?? new URLSearchParams(), ["name"]);
      try {
        createGroup(
          ctx,
          validated<S.CreateGroupRequest>(S.CreateGroupRequest, { name: one.name ?? "" }, "body"),
        );
      } catch (error) {
        return groupsPage(r, kit, status(error), {
          errors: formErrorsOf(error, { name: "name", group: "name" }, "name"),
          values: one,
        });
      }
      return kit.redirect(`${r.prefix}/admin/groups?notice=group-created`);
    },
  },
  {
    method: "POST",
    path: "/admin/groups/:name/delete",
    needsSession: true,
    handle(r, kit) {
      const ctx = requireContext(r);
      formFields(r.form ?? new URLSearchParams(), []);
      deleteGroup(
        ctx,
        validated<{ name: string }>(S.NameParam, { name: r.params.name ?? "" }, "params").name,
      );
      return kit.redirect(`${r.prefix}/admin/groups?notice=group-deleted`);
    },
  },
  {
    method: "POST",
    path: "/admin/groups/:name/members",
    needsSession: true,
    handle(r, kit) {
      const ctx = requireContext(r);
      const { one } = formFields(r.form ?? new URLSearchParams(), ["user"]);
      const group = r.params.name ?? "";
      try {
        const params = validated<{ name: string; user: string }>(
          S.MemberParams,
          { name: group, user: one.user ?? "" },
          "body",
        );
        addMember(ctx, { group: params.name, user: params.user });
      } catch (error) {
        return groupsPage(r, kit, status(error), {
          errors: formErrorsOf(error, { user: "user", member: "user", name: "user" }, "user"),
          group,
        });
      }
      return kit.redirect(`${r.prefix}/admin/groups?notice=member-added`);
    },
  },
  {
    method: "POST",
    path: "/admin/groups/:name/members/remove",
    needsSession: true,
    handle(r, kit) {
      const ctx = requireContext(r);
      const { one } = formFields(r.form ?? new URLSearchParams(), ["user"]);
      const params = validated<{ name: string; user: string }>(
        S.MemberParams,
        { name: r.params.name ?? "", user: one.user ?? "" },
        "body",
      );
      removeMember(ctx, { group: params.name, user: params.user });
      return kit.redirect(`${r.prefix}/admin/groups?notice=member-removed`);
    },
  },
  { method: "GET", path: "/robots", needsSession: true, handle: (r, kit) => robotsPage(r, kit, 200) },
  {
    method: "POST",
    path: "/robots",
    needsSession: true,
    handle(r, kit) {
      const ctx = requireContext(r);
      const { one } = formFields(r.form ?? new URLSearchParams(), ["name", "namespace", "description"]);
      let name: string;
      try {
        const body = validated<S.CreateRobotRequest>(
          S.CreateRobotRequest,
          {
            name: one.name ?? "",
            namespace: one.namespace ? one.namespace : null,
            ...(one.description ? { description: one.description } : {}),
          },
          "body",
        );
        name = createRobot(ctx, body).name;
      } catch (error) {
        return robotsPage(r, kit, status(error), {
          errors: formErrorsOf(
            error,
            {
              name: "name",
              namespace: "namespace",
              description: "description",
              administer: "namespace",
              registry: "namespace",
            },
            "name",
          ),
          values: one,
        });
      }
      return kit.redirect(`${r.prefix}/robots/${enc(name)}?notice=robot-created`);
    },
  },
  { method: "GET", path: "/robots/:name", needsSession: true, handle: (r, kit) => robotPage(r, kit, 200) },
  {
    method: "POST",
    path: "/robots/:name/delete",
    needsSession: true,
    handle(r, kit) {
      const ctx = requireContext(r);
      formFields(r.form ?? new URLSearchParams(), []);
      deleteRobot(
        ctx,
        validated<{ name: string }>(S.RobotParam, { name: r.params.name ?? "" }, "params").name,
      );
      return kit.redirect(`${r.prefix}/robots?notice=robot-deleted`);
    },
  },
  {
    method: "POST",
    path: "/robots/:name/tokens",
    needsSession: true,
    handle(r, kit) {
      const ctx = requireContext(r);
      const robot = validated<{ name: string }>(S.RobotParam, { name: r.params.name ?? "" }, "params").name;
      let parsed: ReturnType<typeof tokenRequestFrom> | undefined;
      try {
        parsed = tokenRequestFrom(r.form ?? new URLSearchParams(), r.nowUnix);
        const created = createRobotToken(ctx, { ...parsed.body, robot });
        return robotPage(r, kit, 201, { created });
      } catch (error) {
        if ((error as { status?: number }).status === 404) throw error;
        return robotPage(r, kit, status(error), {
          errors: formErrorsOf(error, TOKEN_FIELDS, "name"),
          values: parsed?.values ?? {},
          scopes: parsed?.scopes ?? [],
        });
      }
    },
  },
  {
    method: "POST",
    path: "/robots/:name/tokens/:id/revoke",
    needsSession: true,
    handle(r, kit) {
      const ctx = requireContext(r);
      formFields(r.form ?? new URLSearchParams(), []);
      const robot = validated<{ name: string }>(S.RobotParam, { name: r.params.name ?? "" }, "params").name;
      const id = validated<{ id: number }>(
        S.IdParam,
        { id: /^[1-9]\d{0,14}$/.test(r.params.id ?? "") ? Number(r.params.id) : r.params.id },
        "params",
      ).id;
      revokeAccessToken(ctx, id);
      return kit.redirect(`${r.prefix}/robots/${enc(robot)}?notice=token-revoked`);
    },
  },
  { method: "GET", path: "/admin/audit", needsSession: true, handle: (r, kit) => auditPage(r, kit) },
];
