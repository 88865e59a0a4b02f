/**
 * Users from the config file's `users` section (docker_auth authn/static_auth.go): exact,
 * case-sensitive names; bcrypt hashes; labels. The user "" with no password is the anonymous user.
 */
import type { Labels } from "../acl.ts";
import type { UserConfig } from "../config/schema.ts";
import { type Authenticator, type AuthnOutcome, DENY, NO_MATCH } from "./authenticator.ts";
import type { PasswordVerifier } from "./password-verifier.ts";

export function staticUsersAuthenticator(
  users: Record<string, UserConfig>,
  verifier: PasswordVerifier,
): Authenticator {
  const byName = new Map(Object.entries(users));
  return {
    name: "users",
    async authenticate({ username, password }, context): Promise<AuthnOutcome> {
      const user = byName.get(username);
      if (!user) return NO_MATCH;
      const labels: Labels = user.labels ?? {};
      // Only the anonymous user may lack a password; config validation refuses it for anyone else.
      if (user.password === undefined) return password === "" ? { kind: "allow", labels } : DENY;
      return (await verifier.verify(username, password, user.password, context))
        ? { kind: "allow", labels }
        : DENY;
    },
  };
}
