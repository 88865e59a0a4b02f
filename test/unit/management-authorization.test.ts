/**
 * The pure authorization table (src/management/authorization.ts) and the offline CLI's path into
 * the management layer (actor local-admin, no HTTP).
 */
import { describe, expect, it } from "bun:test";
import { AuditLog } from "../../src/audit/audit-log.ts";
import { ensureAccessTokenKey } from "../../src/access-tokens/index.ts";
import { type Action, type Caller, decide, isInsideNamespace } from "../../src/management/authorization.ts";
import type { ManagementContext } from "../../src/management/context.ts";
import { createAccessToken, listAccessTokens } from "../../src/management/tokens.ts";
import { createUser, me, updateUser } from "../../src/management/users.ts";
import { grant, listPermissions } from "../../src/management/permissions.ts";
import { tempDatabase } from "../accounts-helpers.ts";

const person = (overrides: Partial<Caller> = {}): Caller => ({
  kind: "account",
  name: "alice",
  isAdmin: false,
  isRobot: false,
  via: "password",
  tokenScopes: null,
  adminNamespaces: [],
  ...overrides,
});
const admin = person({ name: "root", isAdmin: true });
const nsAdmin = person({ name: "tessa", adminNamespaces: ["team"] });
const robot = person({ name: "team+ci", isRobot: true });
const local: Caller = { ...person(), kind: "local-admin", name: "local-admin", isAdmin: true, via: "local" };

const cases: [string, Caller, Action, 200 | 403 | 404][] = [
  ["admin lists users", admin, { op: "listUsers" }, 200],
  ["local-admin lists users", local, { op: "listUsers" }, 200],
  ["person lists users", person(), { op: "listUsers" }, 403],
  ["robot reads me", robot, { op: "me" }, 403],
  ["person reads self", person(), { op: "getUser", target: "alice" }, 200],
  ["person reads other", person(), { op: "getUser", target: "bob" }, 404],
  [
    "admin own password without current",
    admin,
    { op: "setPassword", target: "root", hasCurrentPassword: false },
    403,
  ],
  ["admin other's password", admin, { op: "setPassword", target: "bob", hasCurrentPassword: false }, 200],
  ["local-admin any password", local, { op: "setPassword", target: "root", hasCurrentPassword: false }, 200],
  ["admin deletes self", admin, { op: "deleteUser", target: "root" }, 403],
  [
    "ns admin grants write inside",
    nsAdmin,
    {
      op: "grant",
      grantee: { kind: "user", name: "bob" },
      pattern: "team/app",
      level: "write",
      existingLevel: null,
    },
    200,
  ],
  [
    "ns admin grants on team itself",
    nsAdmin,
    {
      op: "grant",
      grantee: { kind: "user", name: "bob" },
      pattern: "team",
      level: "read",
      existingLevel: null,
    },
    403,
  ],
  [
    "ns admin grants on team/",
    nsAdmin,
    {
      op: "grant",
      grantee: { kind: "user", name: "bob" },
      pattern: "team/",
      level: "read",
      existingLevel: null,
    },
    403,
  ],
  [
    "ns admin grants admin",
    nsAdmin,
    {
      op: "grant",
      grantee: { kind: "user", name: "bob" },
      pattern: "team/*",
      level: "admin",
      existingLevel: null,
    },
    403,
  ],
  [
    "ns admin grants own robot",
    nsAdmin,
    {
      op: "grant",
      grantee: { kind: "robot", name: "team+ci", ownerNamespace: "team" },
      pattern: "team/*",
      level: "write",
      existingLevel: null,
    },
    200,
  ],
  [
    "ns admin grants registry robot",
    nsAdmin,
    {
      op: "grant",
      grantee: { kind: "robot", name: "regauth+x", ownerNamespace: null },
      pattern: "team/*",
      level: "read",
      existingLevel: null,
    },
    403,
  ],
  ["ns admin revokes admin grant", nsAdmin, { op: "revoke", pattern: "team/*", existingLevel: "admin" }, 403],
  [
    "person creates own token",
    person(),
    { op: "createToken", owner: { kind: "person", name: "alice" }, scopes: ["push"] },
    200,
  ],
  [
    "push token mints an api token",
    person({ via: "access-token", tokenScopes: ["push"] }),
    { op: "createToken", owner: { kind: "person", name: "alice" }, scopes: ["api"] },
    403,
  ],
  [
    "api token mints an api token",
    person({ via: "access-token", tokenScopes: ["api"] }),
    { op: "createToken", owner: { kind: "person", name: "alice" }, scopes: ["api"] },
    200,
  ],
  [
    "admin mints robot api token",
    admin,
    { op: "createToken", owner: { kind: "robot", name: "regauth+x", ownerNamespace: null }, scopes: ["api"] },
    403,
  ],
  ["ns admin reads other ns robot", nsAdmin, { op: "readRobot", namespace: "other" }, 404],
  ["ns admin creates registry robot", nsAdmin, { op: "createRobot", namespace: null }, 403],
  ["person queries audit", person(), { op: "queryAudit" }, 403],
  // Webhooks (issue 11): as grants, inside an administered namespace only.
  ["admin lists webhooks", admin, { op: "listWebhooks" }, 200],
  ["ns admin lists webhooks", nsAdmin, { op: "listWebhooks" }, 200],
  ["person lists webhooks", person(), { op: "listWebhooks" }, 403],
  ["robot lists webhooks", robot, { op: "listWebhooks" }, 403],
  ["admin creates a webhook for *", admin, { op: "createWebhook", patterns: ["*"] }, 200],
  ["ns admin creates inside", nsAdmin, { op: "createWebhook", patterns: ["team/*", "team/app"] }, 200],
  ["ns admin creates for *", nsAdmin, { op: "createWebhook", patterns: ["*"] }, 403],
  ["ns admin creates half outside", nsAdmin, { op: "createWebhook", patterns: ["team/*", "teams/x"] }, 403],
  [
    "ns admin creates for the namespace name alone",
    nsAdmin,
    { op: "createWebhook", patterns: ["team"] },
    403,
  ],
  ["person creates a webhook", person(), { op: "createWebhook", patterns: ["alice/*"] }, 403],
  ["robot creates a webhook", robot, { op: "createWebhook", patterns: ["team/*"] }, 403],
  ["ns admin reads inside", nsAdmin, { op: "readWebhook", patterns: ["team/app"] }, 200],
  ["ns admin reads outside", nsAdmin, { op: "readWebhook", patterns: ["other/*"] }, 404],
  ["person reads a webhook", person(), { op: "readWebhook", patterns: ["alice/*"] }, 404],
  [
    "ns admin widens their webhook",
    nsAdmin,
    { op: "changeWebhook", patterns: ["team/*"], newPatterns: ["*"] },
    403,
  ],
  [
    "ns admin changes another's webhook",
    nsAdmin,
    { op: "changeWebhook", patterns: ["*"], newPatterns: ["team/*"] },
    404,
  ],
  ["local-admin changes any", local, { op: "changeWebhook", patterns: ["*"], newPatterns: ["*"] }, 200],
];

describe("decide", () => {
  for (const [what, caller, action, status] of cases) {
    it(`${what} → ${status}`, () => {
      const verdict = decide(caller, action);
      expect(verdict.allowed ? 200 : verdict.status).toBe(status);
    });
  }
  it("isInsideNamespace never matches a look-alike prefix", () => {
    expect(isInsideNamespace("team/app", "team")).toBe(true);
    expect(isInsideNamespace("teamx/app", "team")).toBe(false);
    expect(isInsideNamespace("team", "team")).toBe(false);
    expect(isInsideNamespace("team/", "team")).toBe(false);
    expect(isInsideNamespace("*", "team")).toBe(false);
  });
});

describe("the offline CLI (local-admin) through the same operations", () => {
  const { db, dataDir } = tempDatabase();
  const ctx: ManagementContext = {
    db,
    actor: { kind: "local-admin" },
    ip: "",
    audit: new AuditLog(db, null, { enabled: true, retentionDays: 0, maxEvents: 0 }),
    accessTokenKey: ensureAccessTokenKey(dataDir),
    config: { personalNamespaces: true, maxTokenLifetimeDays: null },
    nowUnix: Math.floor(Date.now() / 1000),
  };

  it("creates, promotes, grants and mints tokens, each audited as local-admin", async () => {
    expect(me(ctx)).toEqual({
      user: null,
      authenticated_by: "local",
      token_scopes: null,
      admin_namespaces: [],
    });
    await createUser(ctx, { name: "bob", password: "bob-password" });
    expect(updateUser(ctx, { name: "bob", admin: true }).is_admin).toBe(true);
    expect(grant(ctx, { grantee: "bob", pattern: "team/*", level: "write" }).level).toBe("write");
    expect(listPermissions(ctx).items).toHaveLength(1);
    const created = createAccessToken(ctx, {
      owner: "bob",
      name: "ci",
      scopes: ["push"],
      repository_patterns: ["team/*"],
    });
    expect(created.secret).toStartWith("regauth_pat_");
    expect(created.scopes).toEqual(["pull", "push"]);
    expect(listAccessTokens(ctx).items.map((t) => t.name)).toEqual(["ci"]);
    expect(() => createAccessToken(ctx, { name: "x", scopes: ["pull"], repository_patterns: ["*"] })).toThrow(
      /name the token's owner/,
    );
    const events = ctx.audit.query({ limit: 100 });
    expect(events.map((e) => e.kind)).toEqual([
      "user.created",
      "user.updated",
      "permission.granted",
      "access-token.created",
    ]);
    expect(events.every((e) => e.actor === "local-admin")).toBe(true);
    expect(JSON.stringify(events)).not.toContain(created.secret);
    expect(JSON.stringify(events)).not.toContain("bob-password");
  });
});
