/**
 * The database authorizer: read/write/admin grants from src/accounts/permissions.ts, asked after
 * the config ACL. It only ever adds: when no grant covers the resource it answers null (no
 * opinion), so the next authorizer is asked and, at the end of the chain, nothing is granted.
 * A config ACL rule that matches (even with `actions: []`) decides before it.
 *
 * Which account: the token's account name. A name that exists both in the config `users` and in
 * the database is one account for authorization (the config user authenticates, the database
 * grants apply); do not reuse names across the two.
 */
import type { Database } from "bun:sqlite";
import { type AccessSubject, effectiveLevel, LEVEL_ACTIONS } from "../accounts/permissions.ts";
import { findUser } from "../accounts/users.ts";
import { type Authorizer, DATABASE_AUTHORIZER } from "./authorizer.ts";

export function databasePermissionsAuthorizer(
  db: Database,
  options: { personalNamespaces: boolean; groupLabels: readonly string[] },
): Authorizer {
  return {
    name: DATABASE_AUTHORIZER,
    authorize(request): string[] | null {
      const user = request.account === "" ? null : findUser(db, request.account);
      // A disabled user's tokens get nothing from the database (they cannot log in anyway,
      // but a config user of the same name must not inherit a disabled account's grants).
      const subject: AccessSubject =
        user?.isEnabled === true
          ? { userId: user.id, userName: user.name, isAdmin: user.isAdmin }
          : { userId: null, userName: null, isAdmin: false };
      // accounts.group_labels: label values (LDAP groups, hook or config labels) name database
      // groups, so a directory user gets the grants of the matching @group. Not for a disabled
      // database account, and never for anonymous requests.
      if (request.account !== "" && (user === null || user.isEnabled)) {
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
