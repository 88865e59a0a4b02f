/**
 * Who may do what in the management API (issue 10 item 2, design §3): one table, pure. The
 * operations gather the facts (who the caller is, which namespaces they administer, who owns the
 * target) and ask `decide`; nothing here reads the database, so the matrix test can cover it all.
 *
 * Refusals come in two kinds, as the design asks: 404 when the caller may not even know the
 * object exists (another user's token by id, another namespace's robot: Harbor CVE-2022-31667
 * was an IDOR of exactly this kind), 403 when they can see it but not change it (their own admin
 * flag) or when the whole family is closed to them (groups, audit, other users).
 */
import type { Level } from "../accounts/permissions.ts";
import type { TokenScope } from "./schemas.ts";

export interface Caller {
  kind: "local-admin" | "account";
  name: string;
  isAdmin: boolean;
  isRobot: boolean;
  via: "local" | "password" | "access-token";
  /** The calling token's scopes (via access-token). */
  tokenScopes: readonly TokenScope[] | null;
  /** Namespaces `ns` where the caller holds `admin` on `ns/*` through a database grant. */
  adminNamespaces: readonly string[];
}

/** A grantee as far as authorization cares: robots carry their owning namespace. */
export type GranteeFacts =
  | { kind: "user"; name: string }
  | { kind: "robot"; name: string; ownerNamespace: string | null }
  | { kind: "group"; name: string }
  | { kind: "public" };

/** The owner of a token. */
export type OwnerFacts =
  | { kind: "person"; name: string }
  | { kind: "robot"; name: string; ownerNamespace: string | null };

export type Action =
  | { op: "me" }
  | { op: "listUsers" }
  | { op: "getUser"; target: string }
  | { op: "createUser" }
  | { op: "setPassword"; target: string; hasCurrentPassword: boolean }
  | { op: "updateUser"; target: string }
  | { op: "deleteUser"; target: string }
  | { op: "releaseName" }
  | { op: "readGroups" }
  | { op: "changeGroups" }
  | { op: "grant"; grantee: GranteeFacts; pattern: string; level: Level; existingLevel: Level | null }
  | { op: "revoke"; pattern: string; existingLevel: Level }
  | { op: "readTokens"; owner: OwnerFacts }
  | { op: "createToken"; owner: OwnerFacts; scopes: readonly TokenScope[] }
  | { op: "revokeToken"; owner: OwnerFacts }
  | { op: "listRobots"; namespace: string | null | undefined }
  | { op: "createRobot"; namespace: string | null }
  | { op: "readRobot"; namespace: string | null }
  | { op: "deleteRobot"; namespace: string | null }
  | { op: "queryAudit" }
  // Webhooks (issue 11 item 4): like grants, a namespace administrator manages those whose every
  // repository pattern lies inside a namespace they administer.
  | { op: "listWebhooks" }
  | { op: "createWebhook"; patterns: readonly string[] }
  | { op: "readWebhook"; patterns: readonly string[] }
  | { op: "changeWebhook"; patterns: readonly string[]; newPatterns: readonly string[] }
  // The image index (issue 11): browsing shows what the caller may pull (src/management/repositories.ts).
  | { op: "readCatalog" }
  | { op: "readAllRepositories" }
  | { op: "syncRepositories" };

export type Verdict = { allowed: true } | { allowed: false; status: 403 | 404; reason: string };

const ALLOW: Verdict = { allowed: true };
const forbidden = (reason: string): Verdict => ({ allowed: false, status: 403, reason });
const hidden = (reason: string): Verdict => ({ allowed: false, status: 404, reason });

/** Whether `pattern` names only repositories inside `namespace/` (`ns/*`, `ns/app`, `ns/sub/*`). */
export function isInsideNamespace(pattern: string, namespace: string): boolean {
  return pattern.startsWith(`${namespace}/`) && pattern.length > namespace.length + 1;
}

/** The namespace (of those the caller administers) that contains `pattern`, or null. */
export function administeredNamespaceOf(caller: Caller, pattern: string): string | null {
  return caller.adminNamespaces.find((ns) => isInsideNamespace(pattern, ns)) ?? null;
}

function administers(caller: Caller, namespace: string | null): boolean {
  return namespace !== null && caller.adminNamespaces.includes(namespace);
}

function isPrivileged(caller: Caller): boolean {
  return caller.kind === "local-admin" || caller.isAdmin;
}

/** Every pattern names only repositories inside a namespace the caller administers. */
function allInsideAdministered(caller: Caller, patterns: readonly string[]): boolean {
  return patterns.length > 0 && patterns.every((p) => administeredNamespaceOf(caller, p) !== null);
}

function webhookScopeReason(caller: Caller): string {
  return caller.adminNamespaces.length === 0
    ? "only an administrator or a namespace administrator can manage webhooks"
    : `a webhook's repository patterns must all lie inside ${caller.adminNamespaces.map((ns) => `${ns}/`).join(", ")}`;
}

export function decide(caller: Caller, action: Action): Verdict {
  // Robots have no business in the management API (design §3); their tokens never carry `api`.
  if (caller.isRobot) return forbidden("robot accounts cannot use the management API");

  // Rules that bind administrators too come first.
  switch (action.op) {
    case "setPassword":
      // A stolen token or an unattended session must not be enough to take over the account
      // for good: changing one's own password takes the current one (ASVS V2.1.6).
      if (caller.kind === "account" && action.target === caller.name && !action.hasCurrentPassword)
        return forbidden("changing your own password requires current_password");
      break;
    case "createToken":
      if (action.owner.kind === "robot" && action.scopes.includes("api"))
        return forbidden("robot tokens cannot have the api scope");
      // A token must not mint a credential it could not use itself (Harbor #18636).
      if (
        action.scopes.includes("api") &&
        caller.via === "access-token" &&
        !(caller.tokenScopes ?? []).includes("api")
      )
        return forbidden("an api token can only be created with a password or another api token");
      break;
    case "deleteUser":
      if (caller.kind === "account" && action.target === caller.name)
        return forbidden("you cannot delete your own account");
      break;
  }

  if (isPrivileged(caller)) return ALLOW;
  const self = caller.name;

  switch (action.op) {
    case "me":
      return ALLOW;
    case "getUser":
      return action.target === self ? ALLOW : hidden(`no user ${JSON.stringify(action.target)}`);
    case "setPassword":
      return action.target === self ? ALLOW : hidden(`no user ${JSON.stringify(action.target)}`);
    case "updateUser":
    case "deleteUser":
      return action.target === self
        ? forbidden("only an administrator can change this account's flags or delete it")
        : hidden(`no user ${JSON.stringify(action.target)}`);
    case "listUsers":
    case "createUser":
    case "releaseName":
      return forbidden("only an administrator can manage users");
    case "readGroups":
    case "changeGroups":
      return forbidden("only an administrator can manage groups");
    case "queryAudit":
      return forbidden("only an administrator can read the audit log");
    case "readCatalog":
      // What is shown is then cut down to what the caller may pull, by the token path's authorizers.
      return ALLOW;
    case "readAllRepositories":
      return forbidden("only an administrator sees every repository");
    case "syncRepositories":
      return forbidden("only an administrator can sync the image index");
    case "grant": {
      const namespace = administeredNamespaceOf(caller, action.pattern);
      if (namespace === null)
        return forbidden(
          caller.adminNamespaces.length === 0
            ? "only an administrator or a namespace administrator can grant permissions"
            : `you may grant only inside ${caller.adminNamespaces.map((ns) => `${ns}/`).join(", ")}`,
        );
      if (action.level === "admin")
        return forbidden("a namespace administrator can grant read and write, never admin");
      // Re-granting write over an admin grant would demote a fellow namespace administrator.
      if (action.existingLevel === "admin")
        return forbidden("a namespace administrator cannot change admin grants");
      if (action.grantee.kind === "public")
        return forbidden("only an administrator can make repositories public");
      if (action.grantee.kind === "robot" && action.grantee.ownerNamespace !== namespace)
        return forbidden(`only robots of ${namespace} can be granted permissions inside ${namespace}/`);
      return ALLOW;
    }
    case "revoke": {
      const namespace = administeredNamespaceOf(caller, action.pattern);
      if (namespace === null)
        return forbidden(
          caller.adminNamespaces.length === 0
            ? "only an administrator or a namespace administrator can revoke permissions"
            : `you may revoke only inside ${caller.adminNamespaces.map((ns) => `${ns}/`).join(", ")}`,
        );
      if (action.existingLevel === "admin")
        return forbidden("a namespace administrator cannot revoke admin grants");
      return ALLOW;
    }
    case "readTokens":
    case "revokeToken":
    case "createToken": {
      const owner = action.owner;
      if (owner.kind === "person")
        return owner.name === self ? ALLOW : hidden(`no user ${JSON.stringify(owner.name)}`);
      return administers(caller, owner.ownerNamespace)
        ? ALLOW
        : hidden(`no robot ${JSON.stringify(owner.name)}`);
    }
    case "listRobots":
      if (action.namespace === undefined)
        return caller.adminNamespaces.length > 0
          ? ALLOW
          : forbidden("only an administrator or a namespace administrator can list robots");
      return administers(caller, action.namespace)
        ? ALLOW
        : forbidden(`you do not administer the namespace ${JSON.stringify(action.namespace)}`);
    case "createRobot":
      return administers(caller, action.namespace)
        ? ALLOW
        : forbidden(
            action.namespace === null
              ? "only an administrator can create registry robots"
              : `you do not administer the namespace ${JSON.stringify(action.namespace)}`,
          );
    case "readRobot":
    case "deleteRobot":
      return administers(caller, action.namespace) ? ALLOW : hidden("no such robot");
    case "listWebhooks":
      return caller.adminNamespaces.length > 0
        ? ALLOW
        : forbidden("only an administrator or a namespace administrator can manage webhooks");
    case "createWebhook":
      return allInsideAdministered(caller, action.patterns) ? ALLOW : forbidden(webhookScopeReason(caller));
    case "readWebhook":
      return allInsideAdministered(caller, action.patterns) ? ALLOW : hidden("no such webhook");
    case "changeWebhook":
      if (!allInsideAdministered(caller, action.patterns)) return hidden("no such webhook");
      return allInsideAdministered(caller, action.newPatterns)
        ? ALLOW
        : forbidden(webhookScopeReason(caller));
  }
}
