/**
 * The database authorizer: read/write/admin grants from src/accounts/permissions.ts, asked after
 * the config ACL. It only ever adds: when no grant covers the resource it answers null (no
 * opinion), so the next authorizer is asked and, at the end of the chain, nothing is granted.
 * A config ACL rule that matches (even with `actions: []`) decides before it.
 *
 * Whose rights: database-derived rights (administrator, personal namespace, grants to the user
 * and to the groups the user is a member of) belong to the database account, so they apply only
 * to principals the database vouched for: its own authenticator, registration by `docker login`,
 * and refresh tokens of database users (src/token/refresh-token.ts redeems them with
 * authenticator "database"). A config user, hook user or LDAP user who happens to share a
 * database account's name gets none of them: `regauth serve` creates the database user `admin`,
 * and a docker_auth config's own `admin`, limited by its ACL, must not become an administrator.
 * Public grants, and grants to groups named by labels (`accounts.group_labels`), apply to every
 * principal.
 */
import type { Database } from "bun:sqlite";
import { type AccessSubject, effectiveLevel, LEVEL_ACTIONS } from "../accounts/permissions.ts";
import { findUser } from "../accounts/users.ts";
import { type Authorizer, DATABASE_AUTHORIZER } from "./authorizer.ts";

/**
 * Authenticators whose principals are database accounts (see the header). An access token's
 * principal is its owner's account (src/access-tokens/authenticator.ts); what the owner may do is
 * then cut down to the token's scope by src/authz/authorizer.ts.
 */
const DATABASE_ACCOUNT_AUTHENTICATORS: ReadonlySet<string> = new Set([
  "database",
  "registration",
  "access-token",
]);

export function databasePermissionsAuthorizer(
  db: Database,
  options: { personalNamespaces: boolean; groupLabels: readonly string[] },
): Authorizer {
  return {
    name: DATABASE_AUTHORIZER,
    authorize(request, principal): string[] | null {
      const isDatabaseAccount =
        !principal.isAnonymous && DATABASE_ACCOUNT_AUTHENTICATORS.has(principal.authenticator);
      const user = isDatabaseAccount ? findUser(db, request.account) : null;
      // A database account disabled since its token request began gets nothing from the database.
      // Robots never own a personal namespace and are never administrators (issue 10 item 4).
      const subject: AccessSubject =
        user?.isEnabled === true
          ? user.kind === "robot"
            ? { userId: user.id, userName: null, isAdmin: false }
            : { userId: user.id, userName: user.name, isAdmin: user.isAdmin }
          : { userId: null, userName: null, isAdmin: false };
      // accounts.group_labels: label values (LDAP groups, hook or config labels) name database
      // groups, so a directory user gets the grants of the matching @group. Not for a disabled
      // database account, and never for anonymous requests.
      if (!principal.isAnonymous && request.account !== "" && (user === null || user.isEnabled)) {
        const names = options.groupLabels.flatMap((key) =>
          Object.hasOwn(request.labels, key) ? (request.labels[key] ?? []) : [],
        );
        if (names.length > 0) subject.groupNames = names;
      }
      if (request.type === "registry") {
        // registry:catalog:* lists every repository: administrators only.
        return request.name === "catalog" && subject.isAdmin ? ["*"] : null;
      }
      if (request.type !== "repository") return null;
      const level = effectiveLevel(db, subject, request.name, options.personalNamespaces);
      return level === null ? null : [...LEVEL_ACTIONS[level]];
    },
  };
}
