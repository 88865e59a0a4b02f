/**
 * Registration by `docker login` (config `registration.mode`): when no authenticator knows the
 * name, `open` creates the account with the given password and `approval` creates it disabled
 * until an admin runs `regauth user enable NAME`.
 *
 * Concurrency: the name is UNIQUE and the insert runs under BEGIN IMMEDIATE, so of any number
 * of simultaneous registrations of one name exactly one creates the account; the others come
 * back as "taken" and the caller treats them as ordinary logins against the winner's hash.
 */
import type { Database } from "bun:sqlite";
import type { Credentials } from "../authn/authenticator.ts";
import type { PasswordVerifier } from "../authn/password-verifier.ts";
import { withLockRetries, withoutBusyWait } from "../db/lock-retries.ts";
import { storeUnavailable } from "../db/store-errors.ts";
import { Conflict } from "../errors.ts";
import { isNamespaceInUse } from "./permissions.ts";
import { BUILT_IN_RESERVED_NAMES, type ReservedNames } from "./reserved-names.ts";
import { createUser, hashNewPassword, passwordProblem, retiredName, usernameProblem } from "./users.ts";

export type RegistrationMode = "off" | "open" | "approval";

export type RegistrationOutcome =
  | { kind: "created"; enabled: boolean }
  /** Someone else registered (or created) the name first. */
  | { kind: "taken" }
  /** The name or password breaks the rules; `reason` is for the client. */
  | { kind: "refused"; reason: string };

/** Why the transaction gave up: the name became unavailable between the first check and the insert. */
class NameUnavailable extends Error {}

/** The refusal for a name that is reserved or a namespace in use: it does not say which. */
export const NAME_NOT_AVAILABLE = "this name is not available";

export interface Registrar {
  mode: Exclude<RegistrationMode, "off">;
  register(credentials: Credentials, nowUnix: number): Promise<RegistrationOutcome>;
}

export function databaseRegistrar(
  db: Database,
  verifier: PasswordVerifier,
  mode: Exclude<RegistrationMode, "off">,
  /** Computed once at startup (src/accounts/reserved-names.ts reservedNamesForRegistration). */
  reservedNames: ReservedNames = BUILT_IN_RESERVED_NAMES,
): Registrar {
  return {
    mode,
    register: (credentials, nowUnix) => register(db, verifier, mode, credentials, nowUnix, reservedNames),
  };
}

export async function register(
  db: Database,
  verifier: PasswordVerifier,
  mode: Exclude<RegistrationMode, "off">,
  { username, password }: Credentials,
  nowUnix: number,
  reservedNames: ReservedNames = BUILT_IN_RESERVED_NAMES,
): Promise<RegistrationOutcome> {
  const nameProblem = usernameProblem(username);
  if (nameProblem)
    return { kind: "refused", reason: `cannot register ${JSON.stringify(username)}: ${nameProblem}` };
  // The password rules first (review L7): checked after the name's availability, a short
  // password answered "not available" for reserved names and "too short" for free ones, which
  // listed the reserved names without creating anything.
  const problem = passwordProblem(password);
  if (problem) return { kind: "refused", reason: `cannot register ${username}: ${problem}` };
  const notAvailable: RegistrationOutcome = {
    kind: "refused",
    reason: `cannot register ${username}: ${NAME_NOT_AVAILABLE}`,
  };
  // Registering "team" would give a stranger admin on team/* (their personal namespace) while
  // the config ACL or database grants hand team/* to others, and registering "deploy" would
  // take the rights an ACL rule wrote for that account (src/accounts/reserved-names.ts).
  // A retired name (a deleted user's, issue 8 M1) would hand over the images left in NAME/*.
  const unavailable = () =>
    BUILT_IN_RESERVED_NAMES.has(username) ||
    reservedNames.has(username) ||
    isNamespaceInUse(db, username) ||
    retiredName(db, username) !== null;
  if (unavailable()) return notAvailable;
  // Hash outside the transaction (it is slow), under the verifier's concurrency limit.
  const passwordHash = await verifier.limited(() => hashNewPassword(password));
  const enabled = mode === "open";
  try {
    await withLockRetries(() =>
      withoutBusyWait(db, () =>
        db
          .transaction(() => {
            // Again under the write lock: while the password was hashed, the user may have been
            // deleted (the name retired), a grant on NAME/* made, or an acl_xorm reload may have named it.
            if (unavailable()) throw new NameUnavailable();
            createUser(db, { name: username, passwordHash, isPendingApproval: !enabled, nowUnix });
          })
          .immediate(),
      ),
    );
  } catch (error) {
    if (error instanceof NameUnavailable) return notAvailable;
    if (error instanceof Conflict) return { kind: "taken" };
    // Review finding 9: a lock held by another process (the CLI, a backup) is answered 503 at
    // once, and the attempt keeps its throttle charge: refunded, back-to-back registrations
    // were free, and each one waited the busy timeout on the event loop, stalling every request.
    throw storeUnavailable(error, db.filename, { keepsThrottleCharge: true }) ?? error;
  }
  return { kind: "created", enabled };
}
